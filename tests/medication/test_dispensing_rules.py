"""What nominative dispensing prepares for an order over a period: units per due dose, infusion
bags, "if needed" reserves, unknown quantities said; who may be dispensed and what may replace
the ordered product."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from naho.medication import dispensing_rules as dr
from naho.medication.catalogue import load_catalogue
from naho.medication.rules import Frequency, Order, PatientContext, Quantity

CATALOGUE = load_catalogue()
ADULT = PatientContext(age_years=60, weight_kg=50, height_cm=170)
NO_WEIGHT = PatientContext(age_years=60, weight_kg=None, height_cm=None)
#: 25/11/2026 00:00 in Paris, for 24 hours.
DAY = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
LONG_AGO = DAY - timedelta(days=3)


def _needs(product: str, dose: float, unit: str, frequency: Frequency, patient: PatientContext = ADULT, *,
           route: str = "PO", starts_at: datetime = LONG_AGO, hours: int = 24) -> list[dr.Need]:
    order = Order(product, Quantity(dose, unit), route, frequency)
    return dr.needs(order, CATALOGUE.product(product), patient, starts_at=starts_at, ends_at=None,
                    window_start=DAY, window_end=DAY + timedelta(hours=hours))


def test_three_times_a_day_gives_three_doses_at_ward_hours_with_their_units() -> None:
    found = _needs("PARA500CP", 1, "g", Frequency.times_a_day(3))
    assert [n.due_at.astimezone(UTC).hour for n in found if n.due_at] == [7, 11, 17]  # 8 h, 12 h, 18 h in Paris
    assert [n.units for n in found] == [2, 2, 2] and {n.kind for n in found} == {dr.NeedKind.DOSE}
    assert len({n.sequence for n in found}) == 3


def test_every_six_hours_counts_from_the_start_of_the_order() -> None:
    found = _needs("PARA1GCP", 1, "g", Frequency.every(6), starts_at=DAY + timedelta(hours=2))
    assert [n.due_at for n in found] == [DAY + timedelta(hours=h) for h in (2, 8, 14, 20)]
    assert [n.units for n in found] == [1, 1, 1, 1]


def test_a_dose_per_kg_uses_the_weight_and_rounds_up_to_whole_units() -> None:
    found = _needs("PARA500CP", 15, "mg/kg", Frequency.times_a_day(1))  # 750 mg of 500 mg tablets
    assert [(n.units, n.exact_units) for n in found] == [(2, 1.5)]


def test_without_weight_the_quantity_is_said_unknown_never_guessed() -> None:
    [need] = _needs("PARA500CP", 15, "mg/kg", Frequency.times_a_day(1), NO_WEIGHT)
    assert need.units is None and need.exact_units is None and need.unknown and "Unknown quantity" in need.unknown
    [volume] = _needs("PARA1GCP", 5, "mL", Frequency.once(), starts_at=DAY + timedelta(hours=1))
    assert volume.units is None and volume.unknown  # millilitres of a tablet


def test_a_continuous_infusion_gets_the_bags_its_rate_uses_over_the_period() -> None:
    [saline] = _needs("NACL09P100", 25, "mL/h", Frequency.continuous(), route="IV")
    assert (saline.kind, saline.units, saline.exact_units) == (dr.NeedKind.INFUSION, 6, 6.0)  # 600 mL of 100 mL bags
    [half] = _needs("NACL09P100", 25, "mL/h", Frequency.continuous(), route="IV", starts_at=DAY + timedelta(hours=12))
    assert half.units == 3 and half.due_at == DAY + timedelta(hours=12)
    [morphine] = _needs("MORP50INJ", 2, "mg/h", Frequency.continuous(), route="IV", hours=48)
    assert morphine.units == 2  # 96 mg from 50 mg vials
    [unknown] = _needs("PARA1GCP", 10, "mL/h", Frequency.continuous(), route="IV")
    assert unknown.units is None and unknown.unknown


def test_an_if_needed_order_gets_its_maximum_per_24h_times_the_days() -> None:
    [reserve] = _needs("PARA1GCP", 1, "g", Frequency.if_needed(4), hours=48)
    assert (reserve.kind, reserve.due_at, reserve.units) == (dr.NeedKind.IF_NEEDED, None, 8)
    [capped] = _needs("PARA500CP", 1, "g", Frequency.if_needed(6, every_hours=8))  # 3 doses of 2 tablets
    assert capped.units == 6


def test_an_order_ended_before_the_period_needs_nothing() -> None:
    order = Order("PARA1GCP", Quantity(1, "g"), "PO", Frequency.if_needed(4))
    assert dr.needs(order, CATALOGUE.product("PARA1GCP"), ADULT, starts_at=LONG_AGO, ends_at=DAY - timedelta(hours=1),
                    window_start=DAY, window_end=DAY + timedelta(hours=24)) == []


@pytest.mark.parametrize(("exact", "units"), [(0.5, 1), (1.0, 1), (2.0000001, 2), (2.4, 3)])
def test_whole_units(exact: float, units: int) -> None:
    assert dr.whole_units(exact) == units


def test_only_validated_orders_are_dispensed() -> None:
    assert dr.dispensable("validated")
    assert not dr.dispensable("pending") and not dr.dispensable("refused")


def test_narcotics_are_flagged() -> None:
    assert dr.is_narcotic(CATALOGUE.product("MORP10INJ"), CATALOGUE)
    assert not dr.is_narcotic(CATALOGUE.product("PARA1GCP"), CATALOGUE)


def test_an_exact_generic_may_replace_the_ordered_product_and_nothing_else() -> None:
    tablet, capsule = CATALOGUE.product("PARA500CP"), CATALOGUE.product("PARA500GEL")
    assert dr.may_substitute(tablet, tablet, "PO")
    assert dr.may_substitute(tablet, capsule, "PO")  # same substance and strength
    assert not dr.may_substitute(tablet, CATALOGUE.product("PARA1GCP"), "PO")  # another strength
    assert not dr.may_substitute(tablet, CATALOGUE.product("PARA500INJ"), "PO")  # another route and volume
    assert not dr.may_substitute(CATALOGUE.product("MORP10LI"), CATALOGUE.product("OXYC10INJ"), "PO")
