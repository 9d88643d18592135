"""When an order's doses fall due: the plan of care (plan de soins) both the nurses' timeline and
the pharmacy's nominative dispensing are drawn from.

Pure: an order's schedule (`rules.Frequency`), its start and end, a window of time → the due
administrations, in UTC. Daily schedules follow the ward's usual hours in Europe/Paris (8 h,
12 h, 18 h for three a day...), so a dose stays at 8 h local across the change to summer time;
intervals ("every 8 hours") count from the order's start. A continuous infusion is due once, at
its start (then it runs: its rate changes and bag changes are recorded as they happen); an "if
needed" order is never due, it is given when the indication arises, within its maximum per 24 h.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from naho.medication.rules import Frequency, FrequencyKind, MedicationRuleError

WARD_TZ = ZoneInfo("Europe/Paris")
#: The ward's usual hours for n doses a day (local time); other counts are spread from 8 h.
USUAL_HOURS: dict[int, tuple[int, ...]] = {1: (8,), 2: (8, 20), 3: (8, 12, 18), 4: (6, 12, 18, 0)}
FIRST_HOUR = 8
#: How far from its due time a scheduled dose may be given (the "right time" of the five rights).
TIME_TOLERANCE = timedelta(hours=1)
#: Longest window one call plans (a dispensing period is at most a week).
LONGEST_WINDOW = timedelta(days=8)


class BadWindow(MedicationRuleError):
    """The window is empty, reversed, naive or too long."""


class DueKind(StrEnum):
    DOSE = "dose"  # a discrete administration
    INFUSION_START = "infusion_start"  # a continuous infusion is started (then runs)


@dataclass(frozen=True, slots=True)
class Due:
    """One administration due at `at` (UTC), the n-th of its order since its start (`sequence`,
    stable whatever the window asked, so that a dose is named the same on every page)."""

    at: datetime
    kind: DueKind
    sequence: int

    def window(self, tolerance: timedelta = TIME_TOLERANCE) -> tuple[datetime, datetime]:
        return self.at - tolerance, self.at + tolerance


def daily_hours(times_per_day: int) -> tuple[time, ...]:
    """The local times of n doses a day, in the day's order."""
    if times_per_day in USUAL_HOURS:
        return tuple(sorted(time(h) for h in USUAL_HOURS[times_per_day]))
    step = 24 * 60 // times_per_day
    minutes = sorted((FIRST_HOUR * 60 + i * step) % (24 * 60) for i in range(times_per_day))
    return tuple(time(m // 60, m % 60) for m in minutes)


def _check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise BadWindow("the window's bounds carry their time zone")
    if end <= start:
        raise BadWindow("the window ends after it starts")
    if end - start > LONGEST_WINDOW:
        raise BadWindow("a window spans at most 8 days")


def _daily(frequency: Frequency, starts_at: datetime) -> Iterator[datetime]:
    """Every local time of the daily schedule from the order's start, in UTC, forever."""
    hours = daily_hours(frequency.times_per_day or 1)
    day: date = starts_at.astimezone(WARD_TZ).date()
    while True:
        for hour in hours:
            at = datetime.combine(day, hour, tzinfo=WARD_TZ).astimezone(starts_at.tzinfo)
            if at >= starts_at:
                yield at
        day += timedelta(days=1)


def due_between(frequency: Frequency, starts_at: datetime, ends_at: datetime | None,
                window_start: datetime, window_end: datetime) -> list[Due]:
    """The administrations of an order due in [window_start, window_end), none before its start
    nor at or after its end."""
    _check_window(window_start, window_end)
    if starts_at.tzinfo is None or (ends_at is not None and ends_at.tzinfo is None):
        raise BadWindow("an order's start and end carry their time zone")
    last = min(window_end, ends_at) if ends_at is not None else window_end
    if last <= window_start or last <= starts_at:
        return []

    def kept(at: datetime) -> bool:
        return window_start <= at < last

    match frequency.kind:
        case FrequencyKind.IF_NEEDED:
            return []
        case FrequencyKind.ONCE:
            return [Due(starts_at, DueKind.DOSE, 1)] if kept(starts_at) else []
        case FrequencyKind.CONTINUOUS:
            return [Due(starts_at, DueKind.INFUSION_START, 1)] if kept(starts_at) else []
        case FrequencyKind.EVERY_HOURS:
            step = timedelta(hours=frequency.every_hours or 24)
            # the first dose at or after the window's start, counted from the order's start
            skipped = max(0, -(-(window_start - starts_at) // step)) if window_start > starts_at else 0
            found, n = [], skipped
            while (at := starts_at + n * step) < last:
                found.append(Due(at, DueKind.DOSE, n + 1))
                n += 1
            return found
        case FrequencyKind.TIMES_PER_DAY:
            found = []
            for n, at in enumerate(_daily(frequency, starts_at), start=1):
                if at >= last:
                    break
                if at >= window_start:
                    found.append(Due(at, DueKind.DOSE, n))
            return found
    raise BadWindow(f"no schedule for {frequency.kind}")  # pragma: no cover - the match is exhaustive
