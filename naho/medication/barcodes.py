"""Packaging barcodes: the GS1 DataMatrix printed on medicine boxes, read with `biip`.

Since the Falsified Medicines Directive (EU 2016/161) every box carries a GS1 DataMatrix with the
product code (AI 01, a GTIN-14 that holds the CIP13), the expiry date (AI 17), the lot (AI 10)
and a serial number (AI 21). A scanner types it as a string, the variable-length fields ended by
the group separator (ASCII 29), often prefixed by the symbology identifier `]d2`. Parsing the
application identifiers, their formats, check digits and dates is done by biip, a library made
for it (see docs/adr/0006-medication-catalogue-and-checks.md); naho only says what it means for
a medicine: which product, which lot, and whether it may still be given on a given day.

The day is passed in. The one clock read is biip's: GS1 gives years in two digits and resolves
the century in a window of -49/+50 years around the current year (GS1 General Specifications
§7.12), which is harmless for expiry dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from biip import ParseError, parse

from naho.medication.rules import Catalogue, MedicationRuleError, Product, UnknownProduct

#: GS1 France prefix of the medicines' CIP13 codes.
CIP_PREFIX = "340"


class BarcodeError(MedicationRuleError):
    """A scanned code cannot be used for a medicine."""


class UnreadableBarcode(BarcodeError):
    """Not a GS1 code naho can read (garbage, truncated scan, wrong check digit)."""


class NotAMedicinePack(BarcodeError):
    """A GS1 code without a product code (GTIN), or whose GTIN is not a French medicine (CIP13)."""


class ExpiryUnknown(BarcodeError):
    """The code carries no expiry date: the box must be checked by eye."""


class ExpiredLot(BarcodeError):
    """The lot is past its expiry date: it must not be dispensed or given."""


@dataclass(frozen=True, slots=True)
class PackScan:
    """What a box's code says: its GTIN-14, the CIP13 inside it, lot, expiry and serial."""

    gtin: str
    cip13: str | None
    lot: str | None
    expiry: date | None
    serial: str | None


def parse_pack(text: str) -> PackScan:
    """Read a scanned GS1 DataMatrix (or a plain EAN-13 of an older box) into a `PackScan`."""
    value = text.strip("\r\n")
    if not value.strip():
        raise UnreadableBarcode("the scan is empty")
    try:
        result = parse(value)
    except ParseError as exc:
        raise UnreadableBarcode(f"not a GS1 barcode: {exc}") from exc
    except (IndexError, ValueError) as exc:  # biip 5.2 fails so on a lone "]" (truncated symbology id)
        raise UnreadableBarcode(f"not a GS1 barcode: {value!r}") from exc
    message = result.gs1_message
    if message is not None and message.element_strings:
        fields = {e.ai.ai: e for e in message.element_strings}
        product = fields.get("01")
        if product is None:
            raise NotAMedicinePack("the code has no product number (GS1 AI 01)")
        if product.gtin is None:
            raise UnreadableBarcode(f"the product number {product.value} is invalid: {product.gtin_error}")
        expiry = fields.get("17")
        return PackScan(
            gtin=product.gtin.value.zfill(14), cip13=_cip13(product.gtin.value),
            lot=fields["10"].value if "10" in fields else None,
            expiry=expiry.date if expiry is not None else None,
            serial=fields["21"].value if "21" in fields else None)
    if result.gtin is not None:  # a linear EAN-13 only: no lot, no expiry
        return PackScan(gtin=result.gtin.value.zfill(14), cip13=_cip13(result.gtin.value), lot=None,
                        expiry=None, serial=None)
    raise UnreadableBarcode(f"not a GS1 barcode: {result.gs1_message_error or result.gtin_error}")


def _cip13(gtin: str) -> str | None:
    """The CIP13 of a GTIN (GTIN-14 `0` + CIP13), or None if it is not a French medicine code."""
    thirteen = gtin.zfill(14)[1:] if gtin.zfill(14).startswith("0") else None
    return thirteen if thirteen is not None and thirteen.startswith(CIP_PREFIX) else None


def check_expiry(scan: PackScan, on: date) -> PackScan:
    """The scan if its lot may be used on `on`: a lot is usable up to and including its expiry day
    (GS1: a day `00` means the last day of the month, which biip resolves)."""
    if scan.expiry is None:
        raise ExpiryUnknown("the code carries no expiry date: check the box before use")
    if on > scan.expiry:
        raise ExpiredLot(f"lot {scan.lot or '?'} expired on {scan.expiry.isoformat()}: do not use it",
                         lot=scan.lot, expiry=scan.expiry.isoformat())
    return scan


def read_pack(text: str, on: date) -> PackScan:
    """Parse a scanned box and refuse it when its lot is expired on `on` or it is not a medicine."""
    scan = parse_pack(text)
    if scan.cip13 is None:
        raise NotAMedicinePack(f"GTIN {scan.gtin} is not a French medicine code (CIP13 starting {CIP_PREFIX})")
    return check_expiry(scan, on)


def product_for(scan: PackScan, catalogue: Catalogue) -> Product:
    """The formulary product whose CIP13 list holds the scanned one."""
    for product in catalogue.products.values():
        if scan.cip13 is not None and scan.cip13 in product.cip13:
            return product
    raise UnknownProduct(f"CIP13 {scan.cip13 or scan.gtin} is not in the formulary")
