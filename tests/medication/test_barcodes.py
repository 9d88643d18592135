"""GS1 DataMatrix of medicine boxes: product, lot, expiry, serial; expired lots and garbage refused."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from naho.medication.barcodes import (
    ExpiredLot,
    ExpiryUnknown,
    NotAMedicinePack,
    PackScan,
    UnreadableBarcode,
    check_expiry,
    parse_pack,
    product_for,
    read_pack,
)
from naho.medication.rules import Catalogue, Component, Product, Quantity, Substance, UnknownProduct, is_valid_gtin13

GS = "\x1d"


def with_check_digit(twelve: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(twelve))
    return twelve + str((10 - total % 10) % 10)


CIP = with_check_digit("340093000000")  # 3400930000007


def datamatrix(cip: str = CIP, expiry: str = "280131", lot: str = "L2401A", serial: str = "8KX91Z20Q",
               prefix: str = "]d2") -> str:
    """A box's code as a scanner types it: AI 01 and 17 are fixed-length, 10 ends with GS."""
    return f"{prefix}010{cip}17{expiry}10{lot}{GS}21{serial}"


def test_a_medicine_box_is_read() -> None:
    scan = parse_pack(datamatrix())
    assert scan == PackScan(gtin="0" + CIP, cip13=CIP, lot="L2401A", expiry=date(2028, 1, 31), serial="8KX91Z20Q")


def test_the_fields_may_come_in_any_order_and_without_symbology_identifier() -> None:
    scan = parse_pack(f"21ABC123{GS}10LOT7{GS}010{CIP}17270630")
    assert (scan.cip13, scan.lot, scan.expiry, scan.serial) == (CIP, "LOT7", date(2027, 6, 30), "ABC123")


def test_day_00_means_the_last_day_of_the_month() -> None:
    assert parse_pack(datamatrix(expiry="280200")).expiry == date(2028, 2, 29)


def test_a_lot_is_usable_up_to_its_expiry_day_included() -> None:
    code = datamatrix(expiry="270630")
    assert read_pack(code, date(2027, 6, 30)).lot == "L2401A"
    with pytest.raises(ExpiredLot) as refused:
        read_pack(code, date(2027, 7, 1))
    assert "2027-06-30" in str(refused.value) and refused.value.extra["lot"] == "L2401A"


# two-digit years: GS1 resolves the century in a window around the current year (biip does so)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31)),
       st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31)))
def test_expiry_is_refused_exactly_after_the_expiry_date(expiry: date, today: date) -> None:
    code = datamatrix(expiry=expiry.strftime("%y%m%d"))
    scan = parse_pack(code)
    assert scan.expiry == expiry
    if today <= expiry:
        assert read_pack(code, today) == scan
    else:
        with pytest.raises(ExpiredLot):
            read_pack(code, today)


def test_a_code_without_expiry_cannot_be_checked() -> None:
    scan = parse_pack(f"010{CIP}10LOT1")
    assert scan.expiry is None
    with pytest.raises(ExpiryUnknown):
        check_expiry(scan, date(2026, 1, 1))


def test_an_old_linear_ean13_gives_the_product_only() -> None:
    scan = parse_pack(CIP)
    assert (scan.cip13, scan.lot, scan.expiry) == (CIP, None, None)
    with pytest.raises(ExpiryUnknown):
        read_pack(CIP, date(2026, 1, 1))


def test_a_gtin_that_is_not_a_french_medicine_is_refused() -> None:
    foreign = with_check_digit("400638133393")
    assert parse_pack(f"010{foreign}17280131").cip13 is None
    with pytest.raises(NotAMedicinePack):
        read_pack(f"010{foreign}17280131", date(2026, 1, 1))


@pytest.mark.parametrize("garbage", [
    "", "   ", "hello", "PATIENT:123456", "0103400930000008172801311020AB12",  # wrong check digit
    "010340093000000717280230",  # 30 February
    "01034009300000071728013",  # truncated
    "]", "]d",  # a truncated symbology identifier (biip raises IndexError on it)
])
def test_garbage_is_refused_clearly(garbage: str) -> None:
    with pytest.raises(UnreadableBarcode):
        parse_pack(garbage)


def test_a_gs1_code_without_product_number_is_not_a_medicine() -> None:
    with pytest.raises(NotAMedicinePack):
        parse_pack(f"10LOT1{GS}17280131")


@given(st.text(max_size=60))
def test_any_text_is_either_read_or_refused_with_a_barcode_error(text: str) -> None:
    try:
        scan = parse_pack(text)
    except (UnreadableBarcode, NotAMedicinePack):
        return
    assert len(scan.gtin) == 14 and scan.gtin.isdigit()


def test_the_product_is_found_by_its_cip13() -> None:
    product = Product("PARA1GCP", "Paracétamol 1 g comprimé", (Component("paracetamol", Quantity(1, "g")),),
                      "comprimé", frozenset({"PO"}), cip13=(CIP,))
    catalogue = Catalogue({"paracetamol": Substance("paracetamol", "paracétamol", "N02BE01")}, {"PARA1GCP": product})
    assert is_valid_gtin13(CIP)
    assert product_for(read_pack(datamatrix(), date(2026, 11, 25)), catalogue) is product
    other = with_check_digit("340093000001")
    with pytest.raises(UnknownProduct):
        product_for(parse_pack(datamatrix(cip=other)), catalogue)
