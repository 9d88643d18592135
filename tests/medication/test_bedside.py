"""The five rights at the bedside: each check refusing, and its legitimate twin passing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from naho.medication.bedside import (
    Attempt,
    DoseStatus,
    NotGivenReason,
    OrderFacts,
    Outcome,
    Right,
    blocked,
    check_administration,
    check_rate,
    dose_rate_from_pump,
    dose_status,
    same_medicine,
)
from naho.medication.catalogue import load_catalogue
from naho.medication.rules import Frequency, Order, PatientContext, Quantity

CATALOGUE = load_catalogue()
DUE = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)  # 8 h in Paris
PATIENT = PatientContext(age_years=69, weight_kg=72, height_cm=175)
#: Paracetamol 1 g three times a day by mouth: two 500 mg tablets a dose.
ORDER = Order("PARA500CP", Quantity(1, "g"), "PO", Frequency.times_a_day(3))
FACTS = OrderFacts(ORDER, CATALOGUE.product("PARA500CP"), "active", "validated", "01000123")
RIGHT = Attempt(Outcome.GIVEN, DUE + timedelta(minutes=10), route="PO", product=CATALOGUE.product("PARA500CP"),
                amount=2, due_at=DUE, wristband_ipp="01000123")


def _checks(facts: OrderFacts = FACTS, **changes: object) -> dict[Right, tuple[bool, bool, str]]:
    found = check_administration(facts, replace(RIGHT, **changes), PATIENT)  # type: ignore[arg-type]
    return {c.right: (c.passed, c.blocking, c.text()) for c in found}


def _refused(checks: dict[Right, tuple[bool, bool, str]], right: Right) -> str:
    passed, blocking, text = checks[right]
    assert not passed and blocking, text
    return text


def test_the_right_dose_at_the_right_time_passes_every_check() -> None:
    checks = check_administration(FACTS, RIGHT, PATIENT)
    assert not blocked(checks)
    assert {c.right for c in checks} == {Right.PATIENT, Right.ORDER, Right.DRUG, Right.DOSE, Right.ROUTE, Right.TIME}
    assert all(c.passed for c in checks)


def test_another_patients_wristband_is_refused() -> None:
    text = _refused(_checks(wristband_ipp="01000999"), Right.PATIENT)
    assert "01000999" in text and "01000123" in text


def test_without_a_wristband_scan_a_reason_is_needed_and_traced() -> None:
    _refused(_checks(wristband_ipp=None), Right.PATIENT)
    passed, blocking, text = _checks(wristband_ipp=None, no_scan_reason="bracelet illisible")[Right.PATIENT]
    assert not passed and not blocking and "bracelet illisible" in text


def test_another_drug_is_refused() -> None:
    _refused(_checks(product=CATALOGUE.product("AMOX500GEL")), Right.DRUG)


def test_a_generic_with_the_same_substances_and_strengths_is_accepted() -> None:
    gelule = CATALOGUE.product("PARA500GEL")
    assert same_medicine(FACTS.product, gelule)
    passed, blocking, _ = _checks(product=gelule)[Right.DRUG]
    assert passed and not blocking


def test_the_same_substance_at_another_strength_is_not_a_generic() -> None:
    _refused(_checks(product=CATALOGUE.product("PARA1GCP"), amount=1), Right.DRUG)


def test_a_generic_that_cannot_be_given_by_the_ordered_route_is_refused() -> None:
    iv = OrderFacts(Order("PARA1GINJ", Quantity(1, "g"), "IV", Frequency.times_a_day(3)),
                    CATALOGUE.product("PARA1GINJ"), "active", "validated", "01000123")
    same = replace(CATALOGUE.product("PARA1GINJ"), code="PARA1GINJB", routes=frozenset({"PO"}))
    assert same_medicine(iv.product, same)
    _refused(_checks(iv, product=same, amount=1, route="IV"), Right.DRUG)


def test_ten_times_the_dose_is_refused() -> None:
    text = _refused(_checks(amount=20), Right.DOSE)
    assert "20" in text and "2" in text


def test_less_than_the_dose_is_refused_unless_recorded_as_partly_given_with_its_reason() -> None:
    _refused(_checks(amount=1), Right.DOSE)
    _refused(_checks(amount=1, outcome=Outcome.PARTLY_GIVEN), Right.DOSE)
    passed, blocking, text = _checks(amount=1, outcome=Outcome.PARTLY_GIVEN, reason="a vomi")[Right.DOSE]
    assert not passed and not blocking and "a vomi" in text


def test_more_than_the_dose_is_refused_even_as_a_partial_dose() -> None:
    _refused(_checks(amount=3, outcome=Outcome.PARTLY_GIVEN, reason="?"), Right.DOSE)


def test_another_route_is_refused() -> None:
    _refused(_checks(route="IV"), Right.ROUTE)
    assert _checks(route="PO")[Right.ROUTE][0]


def test_too_early_is_refused_and_within_the_tolerance_passes() -> None:
    _refused(_checks(at=DUE - timedelta(minutes=61)), Right.TIME)
    assert _checks(at=DUE - timedelta(minutes=59))[Right.TIME][0]


def test_late_needs_a_reason_and_is_then_recorded_with_it() -> None:
    _refused(_checks(at=DUE + timedelta(hours=2)), Right.TIME)
    passed, blocking, text = _checks(at=DUE + timedelta(hours=2), reason="patient au bloc")[Right.TIME]
    assert not passed and not blocking and "patient au bloc" in text


IF_NEEDED = OrderFacts(Order("PARA500CP", Quantity(1, "g"), "PO", Frequency.if_needed(4, every_hours=6)),
                       CATALOGUE.product("PARA500CP"), "active", "validated", "01000123", "douleur EVA > 3")


def test_an_if_needed_dose_states_why_it_is_given() -> None:
    _refused(_checks(IF_NEEDED, due_at=None), Right.TIME)
    assert _checks(IF_NEEDED, due_at=None, reason="EVA 6")[Right.TIME][0]


def test_an_if_needed_dose_over_its_maximum_in_24_hours_is_refused() -> None:
    now = RIGHT.at
    four = tuple(now - timedelta(hours=h) for h in (23, 17, 11, 6.5))
    _refused(_checks(IF_NEEDED, due_at=None, reason="EVA 6", earlier_doses=four), Right.TIME)
    three = four[1:]  # the oldest is now more than 24 h ago
    three_in_day = tuple(t for t in (now - timedelta(hours=25), *three))
    assert _checks(IF_NEEDED, due_at=None, reason="EVA 6", earlier_doses=three_in_day)[Right.TIME][0]


def test_an_if_needed_dose_respects_its_minimum_interval() -> None:
    _refused(_checks(IF_NEEDED, due_at=None, reason="EVA 6", earlier_doses=(RIGHT.at - timedelta(hours=5),)),
             Right.TIME)
    assert _checks(IF_NEEDED, due_at=None, reason="EVA 6", earlier_doses=(RIGHT.at - timedelta(hours=6),))[
        Right.TIME][0]


@pytest.mark.parametrize("status", ["suspended", "stopped", "replaced"])
def test_an_order_not_active_is_not_given(status: str) -> None:
    _refused(_checks(replace(FACTS, status=status)), Right.ORDER)


def test_an_order_not_yet_reviewed_is_given_with_a_warning() -> None:
    checks = check_administration(replace(FACTS, review_status="pending"), RIGHT, PATIENT)
    assert not blocked(checks)
    [review] = [c for c in checks if c.right is Right.REVIEW]
    assert not review.passed and not review.blocking


def test_a_dose_not_given_says_why() -> None:
    _refused(_checks(outcome=Outcome.NOT_GIVEN, product=None, amount=None), Right.REASON)
    _refused(_checks(outcome=Outcome.NOT_GIVEN, reason_code=NotGivenReason.OTHER), Right.REASON)
    checks = _checks(outcome=Outcome.NOT_GIVEN, reason_code=NotGivenReason.PATIENT_REFUSED)
    assert checks[Right.REASON][0] and Right.DOSE not in checks


def test_a_dose_not_scanned_needs_a_reason() -> None:
    _refused(_checks(product=None), Right.DRUG)
    passed, blocking, _ = _checks(product=None, no_scan_reason="étiquette abîmée")[Right.DRUG]
    assert not passed and not blocking


def test_an_infusion_rate_stays_within_the_titration_range() -> None:
    assert check_rate(4, 2, "mg/h", (1, 5)).passed
    assert check_rate(6, 2, "mg/h", (1, 5)).blocking
    assert check_rate(0.5, 2, "mg/h", (1, 5)).blocking


def test_without_a_titration_range_only_the_rate_ordered_is_accepted() -> None:
    assert check_rate(2, 2, "mg/h", (None, None)).passed
    assert check_rate(3, 2, "mg/h", (None, None)).blocking


def test_the_pump_rate_gives_the_dose_rate_with_the_concentration() -> None:
    assert dose_rate_from_pump(4, 1, "mg/mL", "mg/h", None) == 4
    assert dose_rate_from_pump(6, 50, "µg/mL", "µg/kg/min", 75) == pytest.approx(300 / 60 / 75)
    assert dose_rate_from_pump(4, None, None, "mg/h", None) is None
    assert dose_rate_from_pump(4, 1, "mg/mL", "UI/h", None) is None


def test_the_timeline_status_of_a_due_dose() -> None:
    assert dose_status(DUE, DUE + timedelta(minutes=30), None) is DoseStatus.TO_GIVE
    assert dose_status(DUE, DUE + timedelta(minutes=61), None) is DoseStatus.LATE
    assert dose_status(DUE, DUE + timedelta(hours=3), "given") is DoseStatus.GIVEN
    assert dose_status(DUE, DUE, "partly_given") is DoseStatus.PARTLY_GIVEN
    assert dose_status(DUE, DUE, Outcome.NOT_GIVEN) is DoseStatus.NOT_GIVEN
