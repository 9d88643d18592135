"""Pure scheduling rules: public holidays, slots across daylight saving, cut-offs, the waiting
list's order, the reminder's calendar file."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from naho.scheduling import rules
from naho.scheduling.rules import ConsultationType as T

PARIS = ZoneInfo("Europe/Paris")


def test_easter_and_the_moving_holidays_are_right_for_known_years() -> None:
    assert rules.easter_sunday(2024) == date(2024, 3, 31)
    assert rules.easter_sunday(2025) == date(2025, 4, 20)
    assert rules.easter_sunday(2026) == date(2026, 4, 5)
    assert rules.easter_sunday(2038) == date(2038, 4, 25)
    days = rules.french_public_holidays(2026)
    assert len(days) == 11
    assert {date(2026, 4, 6), date(2026, 5, 14), date(2026, 5, 25)} <= days  # Monday, Ascension, Whit Monday
    assert {date(2026, 7, 14), date(2026, 11, 11), date(2026, 12, 25)} <= days


def _monday_mornings(minutes: int = 30) -> rules.Opening:
    return rules.Opening(0, time(8, 30), time(10, 0), T.FIRST_VISIT, minutes)


def test_slots_follow_the_wall_clock_across_the_autumn_change() -> None:
    # 26/10/2026 is the Monday after the change (25/10): 08:30 Paris is 07:30 UTC, not 06:30.
    before = rules.generate_slots([_monday_mornings()], date(2026, 10, 19), date(2026, 10, 19), PARIS)
    after = rules.generate_slots([_monday_mornings()], date(2026, 10, 26), date(2026, 10, 26), PARIS)
    summer = [(6, 30), (7, 0), (7, 30)]
    winter = [(7, 30), (8, 0), (8, 30)]
    assert [s.starts_at for s in before] == [datetime(2026, 10, 19, h, m, tzinfo=UTC) for h, m in summer]
    assert [s.starts_at for s in after] == [datetime(2026, 10, 26, h, m, tzinfo=UTC) for h, m in winter]
    assert all(s.ends_at - s.starts_at == timedelta(minutes=30) for s in before + after)


def test_a_night_opening_skips_the_hour_that_does_not_exist_in_spring() -> None:
    # Sunday 29/03/2026: Paris jumps from 02:00 to 03:00.
    night = rules.Opening(6, time(1, 0), time(4, 0), T.LAB_DRAW, 60)
    slots = rules.generate_slots([night], date(2026, 3, 29), date(2026, 3, 29), PARIS)
    starts = [s.starts_at.astimezone(PARIS).time() for s in slots]
    assert time(2, 0) not in starts
    assert starts == [time(1, 0), time(3, 0)]
    assert all(s.ends_at > s.starts_at for s in slots)


def test_public_holidays_and_closures_have_no_slot() -> None:
    # Easter Monday 06/04/2026 is closed; the following Monday a closure takes 09:00-10:00.
    closure = rules.Closure(datetime(2026, 4, 13, 7, 0, tzinfo=UTC), datetime(2026, 4, 13, 8, 0, tzinfo=UTC))
    slots = rules.generate_slots([_monday_mornings()], date(2026, 4, 6), date(2026, 4, 13), PARIS, closures=[closure])
    assert {s.starts_at.date() for s in slots} == {date(2026, 4, 13)}
    assert [s.starts_at.astimezone(PARIS).time() for s in slots] == [time(8, 30)]


def test_a_slot_never_crosses_the_end_of_its_opening() -> None:
    slots = rules.generate_slots([rules.Opening(0, time(8, 0), time(9, 0), T.FIRST_VISIT, 25)],
                                 date(2026, 11, 30), date(2026, 11, 30), PARIS)
    assert len(slots) == 2  # 08:00, 08:25; 08:50 would end at 09:15


@pytest.mark.parametrize("opening", [
    rules.Opening(7, time(8, 0), time(9, 0), T.FOLLOW_UP, 20),
    rules.Opening(0, time(9, 0), time(8, 0), T.FOLLOW_UP, 20),
    rules.Opening(0, time(8, 0), time(9, 0), T.FOLLOW_UP, 0),
])
def test_a_malformed_opening_is_refused(opening: rules.Opening) -> None:
    with pytest.raises(rules.InvalidOpening):
        rules.generate_slots([opening], date(2026, 11, 30), date(2026, 11, 30), PARIS)


NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def test_a_patient_cancels_online_up_to_24_hours_before_and_staff_until_the_start() -> None:
    rules.check_patient_may_cancel(NOW + timedelta(hours=24, minutes=1), NOW)
    with pytest.raises(rules.TooLateForPatient):
        rules.check_patient_may_cancel(NOW + timedelta(hours=23, minutes=59), NOW)
    rules.check_staff_may_change(NOW + timedelta(minutes=1), NOW)
    with pytest.raises(rules.SlotInThePast):
        rules.check_staff_may_change(NOW, NOW)


def test_a_patient_books_online_at_least_two_hours_ahead() -> None:
    rules.check_patient_may_book(NOW + timedelta(hours=2), NOW)
    with pytest.raises(rules.TooLateForPatient):
        rules.check_patient_may_book(NOW + timedelta(minutes=90), NOW)
    with pytest.raises(rules.SlotInThePast):
        rules.check_patient_may_book(NOW - timedelta(minutes=1), NOW)


def _entry(minutes_ago: int, **kw: object) -> rules.Waiting:
    base: dict[str, object] = {"schedule_id": None, "specialty": "cardiology", "establishment_code": None,
                               "consultation_type": T.FIRST_VISIT}
    base.update(kw)
    return rules.Waiting(uuid.uuid4(), NOW - timedelta(minutes=minutes_ago), **base)  # type: ignore[arg-type]


def test_the_freed_slot_goes_to_the_patient_waiting_longest_who_wants_it() -> None:
    schedule = uuid.uuid4()
    slot = rules.FreedSlot(schedule, "cardiology", "LENS", T.FIRST_VISIT, NOW + timedelta(days=3))
    oldest_elsewhere = _entry(500, establishment_code="BETHUNE")
    other_type = _entry(400, consultation_type=T.FOLLOW_UP)
    too_late_for_them = _entry(300, not_before=NOW + timedelta(days=10))
    first = _entry(200)
    second = _entry(100, schedule_id=schedule)
    chosen = rules.first_in_line([second, too_late_for_them, first, other_type, oldest_elsewhere], slot, NOW)
    assert chosen == first
    assert rules.first_in_line([second], slot, NOW) == second
    # A slot too close to be accepted in time is offered to no one.
    soon = rules.FreedSlot(schedule, "cardiology", "LENS", T.FIRST_VISIT, NOW + timedelta(hours=5))
    assert rules.first_in_line([first], soon, NOW) is None


def test_an_offer_ends_two_hours_before_the_slot_at_the_latest() -> None:
    assert rules.offer_expires_at(NOW + timedelta(days=5), NOW) == NOW + rules.OFFER_WINDOW
    assert rules.offer_expires_at(NOW + timedelta(hours=13), NOW) == NOW + timedelta(hours=11)


def test_the_calendar_file_says_when_and_where_and_nothing_medical() -> None:
    ics = rules.calendar_file("a1@naho", NOW + timedelta(days=2), NOW + timedelta(days=2, minutes=30), NOW,
                              summary="Rendez-vous", location="Centre hospitalier de Lens, bâtiment B; 2e", url="https://x/portail")
    assert "DTSTART:20261127T093000Z" in ics and "DTEND:20261127T100000Z" in ics
    assert "LOCATION:Centre hospitalier de Lens\\, bâtiment B\\; 2e" in ics
    assert ics.endswith("END:VCALENDAR\r\n")


def test_the_reminder_is_due_within_48_hours() -> None:
    assert rules.reminder_due(NOW + timedelta(hours=47), NOW)
    assert not rules.reminder_due(NOW + timedelta(hours=49), NOW)
    assert not rules.reminder_due(NOW - timedelta(hours=1), NOW)
