"""What a ward scanner typed: wristband, unit-dose label, nominative dose label, manufacturer's box;
garbage, truncated and expired codes refused."""

from __future__ import annotations

from datetime import date

import pytest

from naho.medication.barcodes import ExpiredLot, NotAMedicinePack
from naho.medication.scan import (
    DoseScan,
    NotADose,
    NotAWristband,
    ScanKind,
    UnreadableScan,
    Wristband,
    read_dose,
    read_scan,
    read_wristband,
)
from tests.medication.test_barcodes import CIP, datamatrix

TODAY = date(2026, 11, 25)


def test_a_wristband_carries_the_ipp() -> None:
    assert read_scan("P01000123\r\n", TODAY) == Wristband("01000123")


def test_a_unit_dose_label_names_the_product_with_or_without_lot_and_expiry() -> None:
    assert read_scan("MPARA500CP/L2345/271231", TODAY) == DoseScan(
        ScanKind.UNIT_DOSE, "MPARA500CP/L2345/271231", product_code="PARA500CP", lot="L2345",
        expiry=date(2027, 12, 31))
    plain = read_scan("MPARA500CP", TODAY)
    assert isinstance(plain, DoseScan) and (plain.product_code, plain.lot, plain.expiry) == ("PARA500CP", None, None)


def test_a_nominative_dose_label_is_d_and_ten_digits() -> None:
    scan = read_scan("D0000004711", TODAY)
    assert isinstance(scan, DoseScan) and scan.kind is ScanKind.DISPENSED_DOSE
    assert scan.dispense_number == "0000004711"


def test_a_manufacturers_box_is_read_as_gs1_and_gives_its_cip13_and_lot() -> None:
    scan = read_scan(datamatrix(expiry="280131", lot="L2401A"), TODAY)
    assert isinstance(scan, DoseScan) and scan.kind is ScanKind.PACK
    assert (scan.cip13, scan.lot, scan.expiry) == (CIP, "L2401A", date(2028, 1, 31))


@pytest.mark.parametrize("text", ["", "   ", "hello", "P0100012", "P010001234", "X01000123", "M", "Mpara500cp",
                                  "MPARA500CP/L2345", "MPARA500CP/L2345/2712", "MPARA500CP/L2345/271399",
                                  "D12345", "D00000047110", "]d2", "010340093000000"])
def test_garbage_and_truncated_scans_are_refused(text: str) -> None:
    with pytest.raises(UnreadableScan):
        read_scan(text, TODAY)


def test_an_expired_unit_dose_is_refused_and_the_last_day_is_still_usable() -> None:
    assert isinstance(read_scan("MPARA500CP/L1/261125", TODAY), DoseScan)
    with pytest.raises(ExpiredLot) as refused:
        read_scan("MPARA500CP/L1/261124", TODAY)
    assert refused.value.extra == {"lot": "L1", "expiry": "2026-11-24"}


def test_an_expired_box_is_refused() -> None:
    with pytest.raises(ExpiredLot):
        read_scan(datamatrix(expiry="261031"), TODAY)


def test_a_gs1_code_that_is_not_a_medicine_is_refused() -> None:
    with pytest.raises(NotAMedicinePack):
        read_scan("]d20104012345678901172801311012", TODAY)


def test_the_bedside_expects_the_wristband_then_the_dose() -> None:
    assert read_wristband("P01000123", TODAY).ipp == "01000123"
    with pytest.raises(NotAWristband):
        read_wristband("MPARA500CP", TODAY)
    assert read_dose("MPARA500CP", TODAY).product_code == "PARA500CP"
    with pytest.raises(NotADose):
        read_dose("P01000123", TODAY)
