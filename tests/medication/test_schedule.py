"""The plan of care: when an order's doses fall due, and how many units one dose takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from naho.medication.catalogue import load_catalogue
from naho.medication.rules import Frequency, Order, PatientContext, Quantity, presentations_per_dose
from naho.medication.schedule import WARD_TZ, BadWindow, DueKind, daily_hours, due_between

CATALOGUE = load_catalogue()
START = datetime(2026, 3, 27, 6, 30, tzinfo=UTC)  # 7 h 30 in Paris, the Friday before summer time


def test_three_a_day_follow_the_ward_hours_in_paris_across_the_change_to_summer_time() -> None:
    due = due_between(Frequency.times_a_day(3), START, None, START, START + timedelta(days=3))
    local = [d.at.astimezone(WARD_TZ).strftime("%d %H:%M") for d in due]
    assert local == ["27 08:00", "27 12:00", "27 18:00", "28 08:00", "28 12:00", "28 18:00",
                     "29 08:00", "29 12:00", "29 18:00", "30 08:00"]  # the window ends at 8 h 30
    assert due[0].at == datetime(2026, 3, 27, 7, 0, tzinfo=UTC)  # UTC+1 before the change
    assert due[6].at == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # UTC+2 after it
    assert [d.sequence for d in due] == list(range(1, 11))


def test_a_later_window_keeps_the_doses_sequence_numbers() -> None:
    window = START + timedelta(days=1, hours=12)
    due = due_between(Frequency.times_a_day(2), START, None, window, window + timedelta(days=1))
    assert [d.sequence for d in due] == [4, 5, 6]  # 20 h on the 28th, 8 h and 20 h on the 29th


def test_intervals_count_from_the_start_and_stop_at_the_end() -> None:
    frequency = Frequency.every(8)
    due = due_between(frequency, START, START + timedelta(hours=24), START + timedelta(hours=1),
                      START + timedelta(days=2))
    assert [d.at - START for d in due] == [timedelta(hours=8), timedelta(hours=16)]
    assert [d.sequence for d in due] == [2, 3]


def test_once_continuous_and_if_needed() -> None:
    end = START + timedelta(hours=6)
    assert [d.kind for d in due_between(Frequency.once(), START, None, START, end)] == [DueKind.DOSE]
    assert [d.kind for d in due_between(Frequency.continuous(), START, None, START, end)] == [DueKind.INFUSION_START]
    assert due_between(Frequency.if_needed(4, 6), START, None, START, end) == []
    assert due_between(Frequency.once(), START, None, START + timedelta(minutes=1), end) == []


def test_nothing_is_due_before_the_start_or_after_the_end() -> None:
    assert due_between(Frequency.times_a_day(4), START, START + timedelta(hours=1), START + timedelta(hours=2),
                       START + timedelta(hours=20)) == []
    late_start = START + timedelta(days=2)
    assert due_between(Frequency.times_a_day(4), late_start, None, START, START + timedelta(days=1)) == []


def test_unusual_counts_are_spread_from_eight_oclock() -> None:
    assert [t.hour for t in daily_hours(6)] == [0, 4, 8, 12, 16, 20]
    assert [t.hour for t in daily_hours(4)] == [0, 6, 12, 18]


@pytest.mark.parametrize(("start", "end"), [
    (START, START), (START + timedelta(hours=1), START), (START, START + timedelta(days=9)),
    (START.replace(tzinfo=None), START + timedelta(hours=1)),
])
def test_bad_windows_are_refused(start: datetime, end: datetime) -> None:
    with pytest.raises(BadWindow):
        due_between(Frequency.once(), START, None, start, end)


def test_units_per_dose() -> None:
    adult = PatientContext(age_years=40, weight_kg=70, height_cm=175)
    child = PatientContext(age_years=3, weight_kg=14, height_cm=95)

    def units(product: str, value: float, unit: str, patient: PatientContext = adult) -> float | None:
        order = Order(product, Quantity(value, unit), "PO", Frequency.times_a_day(3))
        return presentations_per_dose(order, CATALOGUE.product(product), patient)

    assert units("PARA500CP", 1, "g") == pytest.approx(2)
    assert units("PARA1GCP", 1, "pres") == pytest.approx(1)
    assert units("PARA24SB", 15, "mg/kg", child) == pytest.approx(15 * 14 / 24)  # mL of suspension
    assert units("PARA24SB", 15, "mg/kg", PatientContext(age_years=3, weight_kg=None, height_cm=None)) is None
    infusion = Order("PARA1GINJ", Quantity(1, "g/h"), "IV", Frequency.continuous())
    assert presentations_per_dose(infusion, CATALOGUE.product("PARA1GINJ"), adult) is None
