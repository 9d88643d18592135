"""What a string typed by a ward scanner is: a wristband, a pharmacy unit-dose label, a nominative
dose label or a manufacturer's box (GS1 DataMatrix).

Pure. The contents are fixed (docs/adr/0008-printed-barcodes.md): a wristband is `P` + the 8-digit
IPP; a unit-dose label repackaged by the pharmacy is `M` + the formulary product code, optionally
`/` + lot + `/` + expiry YYMMDD; a nominatively dispensed dose is `D` + 10 digits; anything else
is read as a GS1 code (`barcodes.read_pack`), whose lot must not be expired. The day is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from naho.medication.barcodes import ExpiredLot, UnreadableBarcode, read_pack
from naho.medication.rules import MedicationRuleError

_WRISTBAND = re.compile(r"P(\d{8})")
_UNIT_DOSE = re.compile(r"M([A-Z0-9][A-Z0-9_-]{0,59})(?:/([A-Za-z0-9._-]{1,40})/(\d{6}))?")
_DISPENSED = re.compile(r"D(\d{10})")
#: A GS1 scan starts with its symbology identifier or with an application identifier's digits.
_GS1_START = re.compile(r"(\]d2|\]C1|\]Q3|\d)")


class UnreadableScan(MedicationRuleError):
    """Not a code naho prints or reads (garbage, truncated scan, impossible date)."""


class NotAWristband(UnreadableScan):
    """A dose was scanned where the patient's wristband was expected."""


class NotADose(UnreadableScan):
    """A wristband was scanned where the dose was expected."""


class ScanKind(StrEnum):
    WRISTBAND = "P"
    UNIT_DOSE = "M"
    DISPENSED_DOSE = "D"
    PACK = "GS1"


@dataclass(frozen=True, slots=True)
class Wristband:
    """A patient's wristband: the IPP it carries."""

    ipp: str
    kind: ScanKind = ScanKind.WRISTBAND


@dataclass(frozen=True, slots=True)
class DoseScan:
    """A dose's label or box: what it names (a product code, a CIP13 or a dispensing number), its
    lot and expiry when printed. `raw` is the text as scanned, kept in the trail."""

    kind: ScanKind
    raw: str
    product_code: str | None = None
    cip13: str | None = None
    dispense_number: str | None = None
    lot: str | None = None
    expiry: date | None = None


def _expiry(yymmdd: str) -> date:
    try:
        return date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    except ValueError:
        raise UnreadableScan(f"the expiry {yymmdd} is not a date (YYMMDD)") from None


def read_scan(text: str, on: date) -> Wristband | DoseScan:
    """The meaning of a scanned string; an expired lot (`barcodes.ExpiredLot`) or an unreadable
    code (`UnreadableScan`, `barcodes.BarcodeError`) is refused."""
    value = text.strip("\r\n\t ")
    if not value:
        raise UnreadableScan("the scan is empty")
    if match := _WRISTBAND.fullmatch(value):
        return Wristband(match.group(1))
    if match := _UNIT_DOSE.fullmatch(value):
        product, lot, expiry_text = match.groups()
        expiry = _expiry(expiry_text) if expiry_text else None
        if expiry is not None and on > expiry:
            raise ExpiredLot(f"lot {lot} expired on {expiry.isoformat()}: do not use it", lot=lot,
                             expiry=expiry.isoformat())
        return DoseScan(ScanKind.UNIT_DOSE, value, product_code=product, lot=lot, expiry=expiry)
    if match := _DISPENSED.fullmatch(value):
        return DoseScan(ScanKind.DISPENSED_DOSE, value, dispense_number=match.group(1))
    if value[0] in "PMD" or not _GS1_START.match(value):
        raise UnreadableScan(f"not a code naho reads: {value[:60]!r}")
    try:
        pack = read_pack(value, on)
    except UnreadableBarcode as exc:
        raise UnreadableScan(str(exc)) from exc
    return DoseScan(ScanKind.PACK, value, cip13=pack.cip13, lot=pack.lot, expiry=pack.expiry)


def read_wristband(text: str, on: date) -> Wristband:
    """A scan that must be a wristband (the first scan at the bedside)."""
    scan = read_scan(text, on)
    if not isinstance(scan, Wristband):
        raise NotAWristband("scan the patient's wristband first")
    return scan


def read_dose(text: str, on: date) -> DoseScan:
    """A scan that must be a dose (the second scan at the bedside)."""
    scan = read_scan(text, on)
    if not isinstance(scan, DoseScan):
        raise NotADose("this is a wristband: scan the dose's label")
    return scan
