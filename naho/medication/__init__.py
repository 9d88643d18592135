"""Medication circuit: the formulary (livret thérapeutique), ANSM interactions, the safety checks run
when a prescriber orders, and the packaging barcodes scanned at dispensing and administration.

`rules` is pure (values in, alerts out); `catalogue` reads the reference files shipped in
`data/`; `barcodes` reads GS1 DataMatrix strings.
"""
