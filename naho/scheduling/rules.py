"""Pure scheduling rules: consultation types, French public holidays, slot generation, booking
cut-offs, the waiting list's order, the reminder's calendar file.

No I/O, no clock (STYLE.md R1, R2): `now` comes in, aware and in UTC. Opening hours are wall
times of the establishment's zone (Europe/Paris): 08:30 stays 08:30 across daylight saving.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class ConsultationType(StrEnum):
    FIRST_VISIT = "first_visit"
    FOLLOW_UP = "follow_up"
    TELECONSULTATION = "teleconsultation"
    IMAGING = "imaging"
    LAB_DRAW = "lab_draw"


#: Usual length of each consultation type, in minutes (a rule may set its own).
DEFAULT_MINUTES: dict[ConsultationType, int] = {
    ConsultationType.FIRST_VISIT: 30,
    ConsultationType.FOLLOW_UP: 20,
    ConsultationType.TELECONSULTATION: 20,
    ConsultationType.IMAGING: 15,
    ConsultationType.LAB_DRAW: 10,
}

#: A patient may not cancel or move an appointment online closer than this to its start.
PATIENT_CUTOFF = timedelta(hours=24)
#: A patient may not book online closer than this to the start (the secretary still can).
PATIENT_MIN_LEAD = timedelta(hours=2)
#: How long a waiting patient has to accept a freed slot.
OFFER_WINDOW = timedelta(hours=12)
#: When the reminder leaves, before the appointment.
REMINDER_LEAD = timedelta(hours=48)


class SchedulingRuleError(ValueError):
    """A scheduling rule was broken; the subclass names it."""


class InvalidOpening(SchedulingRuleError):
    """An opening rule is malformed (end before start, unknown weekday, bad duration)."""


class TooLateForPatient(SchedulingRuleError):
    """The patient acts online after the cut-off: the secretary must do it."""


class SlotInThePast(SchedulingRuleError):
    """The slot has started or is over."""


def easter_sunday(year: int) -> date:
    """Gregorian Easter (the anonymous algorithm of Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def french_public_holidays(year: int) -> frozenset[date]:
    """The eleven public holidays of metropolitan France (Code du travail, L.3133-1), except the
    local ones of Alsace-Moselle, which the Artois group does not observe."""
    easter = easter_sunday(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    moving = [easter + timedelta(days=1), easter + timedelta(days=39), easter + timedelta(days=50)]
    return frozenset([date(year, m, d) for m, d in fixed] + moving)


@dataclass(frozen=True)
class Opening:
    """Every `weekday` (0 = Monday) from `start` to `end`, slots of `minutes` of one type."""

    weekday: int
    start: time
    end: time
    consultation_type: ConsultationType
    minutes: int
    valid_from: date | None = None
    valid_until: date | None = None

    def check(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise InvalidOpening(f"weekday {self.weekday} is not 0 (Monday) to 6 (Sunday)")
        if self.end <= self.start:
            raise InvalidOpening("an opening ends after it starts")
        if not 5 <= self.minutes <= 240:
            raise InvalidOpening("a slot lasts 5 to 240 minutes")
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise InvalidOpening("the validity ends before it starts")

    def applies(self, day: date) -> bool:
        return (day.weekday() == self.weekday and (self.valid_from is None or day >= self.valid_from)
                and (self.valid_until is None or day <= self.valid_until))


@dataclass(frozen=True)
class Closure:
    """An exception: the schedule is closed from `starts_at` to `ends_at` (UTC)."""

    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class SlotSpec:
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC
    consultation_type: ConsultationType


def _wall_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime | None:
    """A wall time of the zone in UTC, or None when it does not exist (the spring-forward gap)."""
    local = datetime.combine(day, at, tzinfo=zone)
    there_and_back = local.astimezone(UTC).astimezone(zone)
    if there_and_back.replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return local.astimezone(UTC)


def generate_slots(openings: Iterable[Opening], first_day: date, last_day: date, zone: ZoneInfo, *,
                   closures: Sequence[Closure] = (), holidays: frozenset[date] | None = None) -> list[SlotSpec]:
    """Slots of the openings between two days (inclusive), wall times of `zone`, in UTC.

    Public holidays are closed (French ones of each year unless `holidays` is given); closures
    remove every slot they overlap; a slot whose wall start does not exist (the night of the
    spring-forward change) is skipped; a slot lasts its minutes of real time; slots never cross
    the opening's end."""
    if last_day < first_day:
        return []
    openings = list(openings)
    for opening in openings:
        opening.check()
    years = range(first_day.year, last_day.year + 1)
    closed_days = holidays if holidays is not None else frozenset().union(*(french_public_holidays(y) for y in years))
    slots: list[SlotSpec] = []
    day = first_day
    while day <= last_day:
        if day not in closed_days:
            for opening in openings:
                if not opening.applies(day):
                    continue
                step = timedelta(minutes=opening.minutes)
                wall = datetime.combine(day, opening.start)
                end_wall = datetime.combine(day, opening.end)
                while wall + step <= end_wall:
                    start = _wall_to_utc(day, wall.time(), zone)
                    # A slot lasts its minutes of real time, even when the clocks change during it.
                    end = start + step if start is not None else None
                    if start is not None and end is not None and not any(
                            c.starts_at < end and start < c.ends_at for c in closures):
                        slots.append(SlotSpec(start, end, opening.consultation_type))
                    wall += step
        day += timedelta(days=1)
    return sorted(slots, key=lambda s: (s.starts_at, s.consultation_type))


def check_patient_may_book(starts_at: datetime, now: datetime) -> None:
    """Online, a patient books at least PATIENT_MIN_LEAD ahead (the day's planning is printed)."""
    if starts_at <= now:
        raise SlotInThePast("this slot has already started")
    if starts_at - now < PATIENT_MIN_LEAD:
        raise TooLateForPatient("this slot is too close to book online: call the secretariat")


def check_patient_may_cancel(starts_at: datetime, now: datetime) -> None:
    """Online, a patient cancels or moves an appointment up to PATIENT_CUTOFF before it."""
    if starts_at <= now:
        raise SlotInThePast("this appointment has already started")
    if starts_at - now < PATIENT_CUTOFF:
        raise TooLateForPatient("less than 24 hours before the appointment: call the secretariat")


def check_staff_may_change(starts_at: datetime, now: datetime) -> None:
    """Staff may book, cancel or move anything that has not started."""
    if starts_at <= now:
        raise SlotInThePast("this slot has already started")


@dataclass(frozen=True)
class Waiting:
    """A patient on the waiting list: what they wait for, since when."""

    id: uuid.UUID
    since: datetime
    schedule_id: uuid.UUID | None
    specialty: str | None
    establishment_code: str | None
    consultation_type: ConsultationType
    not_before: datetime | None = None
    not_after: datetime | None = None


@dataclass(frozen=True)
class FreedSlot:
    schedule_id: uuid.UUID
    specialty: str
    establishment_code: str
    consultation_type: ConsultationType
    starts_at: datetime


def wants(entry: Waiting, slot: FreedSlot) -> bool:
    """Does this waiting patient want this slot?"""
    return (entry.consultation_type == slot.consultation_type
            and (entry.schedule_id is None or entry.schedule_id == slot.schedule_id)
            and (entry.specialty is None or entry.specialty == slot.specialty)
            and (entry.establishment_code is None or entry.establishment_code == slot.establishment_code)
            and (entry.not_before is None or slot.starts_at >= entry.not_before)
            and (entry.not_after is None or slot.starts_at <= entry.not_after))


def first_in_line(entries: Iterable[Waiting], slot: FreedSlot, now: datetime) -> Waiting | None:
    """The patient waiting longest who wants the slot: first come, first served (ties by id,
    so the answer never depends on the order rows come back). A slot starting within the offer
    window is offered to no one: it could not be accepted in time."""
    if slot.starts_at - now < OFFER_WINDOW:
        return None
    candidates = [e for e in entries if wants(e, slot)]
    return min(candidates, key=lambda e: (e.since, str(e.id)), default=None)


def offer_expires_at(slot_starts_at: datetime, now: datetime) -> datetime:
    """The offer lasts OFFER_WINDOW, and ends PATIENT_MIN_LEAD before the slot at the latest."""
    return min(now + OFFER_WINDOW, slot_starts_at - PATIENT_MIN_LEAD)


def reminder_due(starts_at: datetime, now: datetime) -> bool:
    """The reminder leaves once the appointment is less than REMINDER_LEAD away (and not past)."""
    return now < starts_at <= now + REMINDER_LEAD


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def calendar_file(uid: str, starts_at: datetime, ends_at: datetime, now: datetime, *, summary: str,
                  location: str, url: str) -> str:
    """An iCalendar (RFC 5545) event. Only what the patient needs to get there: no specialty,
    no reason, no name of practitioner (a calendar is often shared or synchronised)."""
    def stamp(value: datetime) -> str:
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//naho//scheduling//FR", "METHOD:PUBLISH",
        "BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{stamp(now)}", f"DTSTART:{stamp(starts_at)}",
        f"DTEND:{stamp(ends_at)}", f"SUMMARY:{_ics_text(summary)}", f"LOCATION:{_ics_text(location)}",
        f"URL:{url}", "END:VEVENT", "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"
