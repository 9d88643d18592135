"""Pure rules of stays (venues) and their movements, after IHE PAM national extension France 2.11.1.

A stay is the fold of its active movements: status, class and location are derived by replaying
them, so cancelling the last movement (ZBE-4 = CANCEL) restores exactly the state before it.
Cancelled movements are kept, flagged, because PAM FR forbids reusing a movement id (§5.4.1).

Choices the standard leaves to us, in one place:

* Inter-establishment transfer = discharge (A03) from one stay + admission (A01/A04) into a new
  stay of the other establishment, at the same instant (`transfer_to_establishment`). A mutation
  (A02) is "même hôpital" (ZFM-1/ZFM-2 code 6), a transfer to another hospital is a discharge
  with mode 7; and the NDA (PID-18) and the PMSI are per establishment. A stay of < 48 h on
  another establishment's technical platform is a leave (A21/A22), not a transfer (§5.1.4).
* Leave (A21) keeps the bed by default: the patient comes back to it, and the absence is
  notified for bed and meal management (CP-ITI-FR-2011-41). `occupancies(keep_bed_on_leave=False)`
  releases it instead.
* A movement may be dated up to `FUTURE_TOLERANCE` after `now` (clocks of wards and servers
  drift, a nurse types a transfer she is doing); only a pre-admission is planned further ahead.
* Only the last active movement may be cancelled; a historic error is undone in reverse order
  (§5.3.5 "annulés dans l'ordre inverse de leur création"), we never send ZBE-5 = Y cancels.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from naho.platform.errors import DomainError

FUTURE_TOLERANCE = timedelta(minutes=5)


class EncounterClass(StrEnum):
    """Kind of venue (PV1-2, HL7 table 0004 as restricted by PAM FR §6.10.1).

    Pre-admission is a status (`EncounterStatus.PLANNED`), not a class: an A05 carries the class
    the patient will have (PV1-2 = I or O, §5.3.5).
    """

    EMERGENCY = "emergency"  # passage aux urgences
    INPATIENT = "inpatient"  # hospitalisation complète
    DAY_HOSPITAL = "day_hospital"  # hospitalisation partielle (de jour, de nuit)
    SESSION = "session"  # séances: dialysis, chemotherapy, radiotherapy
    OUTPATIENT = "outpatient"  # actes et consultations externes


# The only HL7 patient-class strings in naho. Table 0004 puts partial hospitalisation under I.
_PV1_CLASS: dict[EncounterClass, str] = {
    EncounterClass.EMERGENCY: "E",
    EncounterClass.INPATIENT: "I",
    EncounterClass.DAY_HOSPITAL: "I",
    EncounterClass.SESSION: "R",
    EncounterClass.OUTPATIENT: "O",
}

# The A06/A07 matrix of §5.3.5 reads by destination: a change towards hospitalisation (full or
# partial, PV1-2 I or R) is an A06, towards emergency or outpatient (E or O) an A07 — so
# outpatient → emergency is an A07 too.
_HOSPITALISED = frozenset({"I", "R"})

# Arrivals notified as "Register outpatient" (A04) rather than "Admit inpatient" (A01), §5.3.2.
_REGISTERED_CLASSES = frozenset({EncounterClass.EMERGENCY, EncounterClass.OUTPATIENT})


class EncounterStatus(StrEnum):
    """Where a stay stands; derived from its last active movement (PAM FR §5.1.3, §5.1.4)."""

    PLANNED = "planned"  # pre-admitted (A05)
    IN_PROGRESS = "in_progress"
    ON_LEAVE = "on_leave"  # absence provisoire / permission (A21), the stay goes on
    FINISHED = "finished"  # sortie définitive (A03)
    CANCELLED = "cancelled"  # every movement cancelled (A11 or A38)


class MovementKind(StrEnum):
    """What a movement does (PAM FR §5.1.4). A cancellation is not a movement: it flags one."""

    PRE_ADMISSION = "pre_admission"
    ADMISSION = "admission"  # inpatient, day hospital, sessions
    REGISTRATION = "registration"  # emergency and outpatient arrivals
    TRANSFER = "transfer"  # mutation: unit and/or bed, within one establishment
    CLASS_TO_INPATIENT = "class_to_inpatient"  # bascule A06
    CLASS_TO_OUTPATIENT = "class_to_outpatient"  # bascule A07
    LEAVE_START = "leave_start"
    LEAVE_END = "leave_end"
    DISCHARGE = "discharge"


# The only trigger-event strings in naho: (insert, cancel), PAM FR §2.2 and §5.3.2.
# A06 and A07 cancel each other (§5.3.5). A44 (move account) touches no movement, hence absent.
_TRIGGERS: dict[MovementKind, tuple[str, str]] = {
    MovementKind.PRE_ADMISSION: ("A05", "A38"),
    MovementKind.ADMISSION: ("A01", "A11"),
    MovementKind.REGISTRATION: ("A04", "A11"),
    MovementKind.TRANSFER: ("A02", "A12"),
    MovementKind.CLASS_TO_INPATIENT: ("A06", "A07"),
    MovementKind.CLASS_TO_OUTPATIENT: ("A07", "A06"),
    MovementKind.LEAVE_START: ("A21", "A52"),
    MovementKind.LEAVE_END: ("A22", "A53"),
    MovementKind.DISCHARGE: ("A03", "A13"),
}

_STATUS_AFTER: dict[MovementKind, EncounterStatus] = {
    MovementKind.PRE_ADMISSION: EncounterStatus.PLANNED,
    MovementKind.ADMISSION: EncounterStatus.IN_PROGRESS,
    MovementKind.REGISTRATION: EncounterStatus.IN_PROGRESS,
    MovementKind.TRANSFER: EncounterStatus.IN_PROGRESS,
    MovementKind.CLASS_TO_INPATIENT: EncounterStatus.IN_PROGRESS,
    MovementKind.CLASS_TO_OUTPATIENT: EncounterStatus.IN_PROGRESS,
    MovementKind.LEAVE_START: EncounterStatus.ON_LEAVE,
    MovementKind.LEAVE_END: EncounterStatus.IN_PROGRESS,
    MovementKind.DISCHARGE: EncounterStatus.FINISHED,
}


def pv1_class(encounter_class: EncounterClass) -> str:
    """PV1-2 patient class of an encounter class (PAM FR §6.10.1, HL7 table 0004)."""
    return _PV1_CLASS[encounter_class]


def trigger_event(kind: MovementKind) -> str:
    """Trigger event notifying a movement of this kind (PAM FR §5.3.2, column "insert")."""
    return _TRIGGERS[kind][0]


def cancel_trigger(kind: MovementKind) -> str:
    """Trigger event cancelling a movement of this kind (PAM FR §5.3.2, column "cancel")."""
    return _TRIGGERS[kind][1]


# --- errors, each named after the rule it enforces -------------------------------------------


class StayRuleError(DomainError):
    """A stay or movement rule refused the request."""


class TimeNotAware(StayRuleError):
    """Times are aware datetimes (STYLE R2); a naive one would be read in an unknown zone."""


class UnitRequired(StayRuleError):
    """Every movement names its unit (UF d'hébergement, PV1-3, mandatory per PAM FR §5.1.1)."""


class BedOutsideUnit(StayRuleError):
    """The bed does not belong to the unit the patient is placed in."""


class MovementInTheFuture(StayRuleError):
    """A movement records what happened: at most FUTURE_TOLERANCE after now (A05 excepted)."""


class MovementBeforePrevious(StayRuleError):
    """Movements cut a stay into contiguous periods (§5.1.4): none may start before the last one."""


class SameKindAtSameTime(StayRuleError):
    """Two movements of the same nature cannot share a date/time in one stay (PAM FR §5.3.4)."""


class MovementIdAlreadyUsed(StayRuleError):
    """Movement ids are unique and never reused, not even after a cancellation (§5.4.1)."""


class StayCancelled(StayRuleError):
    """A cancelled stay takes no movement; its venue number is not reused (§5.4.1)."""


class StayAlreadyFinished(StayRuleError):
    """A discharged stay takes no movement; cancel the discharge (A13) first."""


class StayNotStarted(StayRuleError):
    """A pre-admitted stay must be admitted before anything else happens to it."""


class StayAlreadyStarted(StayRuleError):
    """Only a pre-admitted stay can be admitted."""


class EmergencyIsNeverPlanned(StayRuleError):
    """An emergency visit cannot be pre-admitted."""


class PatientOnLeave(StayRuleError):
    """The patient is absent (A21): record the return (A22) before moving them."""


class AlreadyOnLeave(StayRuleError):
    """A leave starts only when the patient is present."""


class NotOnLeave(StayRuleError):
    """A return from leave (A22) follows a leave (A21)."""


class TransferToSameLocation(StayRuleError):
    """A transfer (A02) changes the unit or the bed."""


class TransferLeavesEstablishment(StayRuleError):
    """A mutation (A02) stays in one establishment; use transfer_to_establishment."""


class TransferWithinEstablishment(StayRuleError):
    """An inter-establishment transfer goes to another establishment; use transfer."""


class ClassUnchanged(StayRuleError):
    """A class change (A06/A07) changes the patient class (PV1-2)."""


class OnlyLastMovementCanBeCancelled(StayRuleError):
    """Only the most recent active movement may be cancelled (PAM FR §5.3.5: reverse order)."""


class NothingToCancel(StayRuleError):
    """Every movement of the stay is already cancelled."""


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Movement:
    """A dated change of the patient's situation (PAM FR §5.1.4; ZBE-1 id, ZBE-2 date).

    `encounter_class` is the class in force from this movement on (PV1-2 travels with every
    movement); it is what lets a cancelled class change give the previous class back.
    Leave, return, class change (unless it moves the patient) and discharge repeat the location.
    """

    id: str
    kind: MovementKind
    at: datetime
    unit_code: str
    bed_code: str | None
    cancelled: bool
    encounter_class: EncounterClass


@dataclass(frozen=True, slots=True)
class Stay:
    """A venue (PV1-19) in one establishment, with every movement in the order it was recorded.

    `status` and `encounter_class` must be those derived from the active movements; build a
    stay with `rebuild_stay` (or the state functions below) rather than by hand.
    """

    id: str
    establishment_code: str
    encounter_class: EncounterClass
    status: EncounterStatus
    movements: tuple[Movement, ...]

    def __post_init__(self) -> None:
        if not self.movements:
            raise ValueError("a stay starts with a movement (A05, A01 or A04)")
        derived = _derive(self.movements)
        if (self.encounter_class, self.status) != derived:
            raise ValueError(f"stay {self.id}: class and status must be {derived}, derived from its movements")

    @property
    def active_movements(self) -> tuple[Movement, ...]:
        """Movements not cancelled (ZBE-4 = CANCEL), in order: they alone make the state (§5.1.4)."""
        return tuple(m for m in self.movements if not m.cancelled)


@dataclass(frozen=True, slots=True)
class Occupancy:
    """A bed held by a stay over [start, end); `end=None` means still held."""

    bed_code: str
    stay_id: str
    start: datetime
    end: datetime | None

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise ValueError("an occupancy cannot end before it starts")


def _derive(movements: tuple[Movement, ...]) -> tuple[EncounterClass, EncounterStatus]:
    active = [m for m in movements if not m.cancelled]
    if not active:
        return movements[0].encounter_class, EncounterStatus.CANCELLED
    return active[-1].encounter_class, _STATUS_AFTER[active[-1].kind]


def rebuild_stay(stay_id: str, establishment_code: str, movements: Iterable[Movement]) -> Stay:
    """The stay its movements describe: status and class of the last active one (PAM FR §5.1.4)."""
    recorded = tuple(movements)
    if not recorded:
        raise ValueError("a stay starts with a movement (A05, A01 or A04)")
    encounter_class, status = _derive(recorded)
    return Stay(stay_id, establishment_code, encounter_class, status, recorded)


def current_location(stay: Stay) -> tuple[str, str | None] | None:
    """(unit_code, bed_code) the stay holds now: PV1-3 of its last active movement (PAM FR §6.10.2).

    None before admission and after discharge or cancellation. During a leave the location is
    kept (the unit stays responsible and, by default, the bed waits for the patient).
    """
    if stay.status not in (EncounterStatus.IN_PROGRESS, EncounterStatus.ON_LEAVE):
        return None
    last = stay.active_movements[-1]
    return last.unit_code, last.bed_code


# --- checks shared by the state functions --------------------------------------------------------


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise TimeNotAware(f"{name} must be an aware datetime (UTC), got {value!r}")
    return value.astimezone(UTC)


def _check_location(unit_code: str, bed_code: str | None, unit_beds: Collection[str]) -> None:
    if not unit_code.strip():
        raise UnitRequired("a movement needs a unit (UF)")
    if bed_code is not None and bed_code not in unit_beds:
        raise BedOutsideUnit(f"bed {bed_code} is not in unit {unit_code}")


def _check_time(kind: MovementKind, at: datetime, now: datetime, previous: Iterable[Movement] = ()) -> None:
    if kind is not MovementKind.PRE_ADMISSION and at > now + FUTURE_TOLERANCE:
        raise MovementInTheFuture(f"{kind} at {at:%Y-%m-%d %H:%M} is after now ({now:%Y-%m-%d %H:%M})")
    # A pre-admission's date is a plan, not an event: an admission may come before it.
    dated = [m for m in previous if not m.cancelled and m.kind is not MovementKind.PRE_ADMISSION]
    if not dated:
        return
    last = dated[-1]
    if at < last.at:
        raise MovementBeforePrevious(f"{kind} at {at:%Y-%m-%d %H:%M} is before the {last.kind} at {last.at:%H:%M}")
    if at == last.at and kind is last.kind:
        raise SameKindAtSameTime(f"a {kind} is already recorded at {at:%Y-%m-%d %H:%M}")


def _refuse_status(stay: Stay, action: str) -> StayRuleError:
    status = stay.status
    if status is EncounterStatus.CANCELLED:
        return StayCancelled(f"stay {stay.id} is cancelled: cannot {action}")
    if status is EncounterStatus.FINISHED:
        return StayAlreadyFinished(f"stay {stay.id} is finished: cannot {action}")
    if status is EncounterStatus.PLANNED:
        return StayNotStarted(f"stay {stay.id} is only pre-admitted: cannot {action}")
    if status is EncounterStatus.ON_LEAVE:
        return PatientOnLeave(f"the patient of stay {stay.id} is on leave: cannot {action}")
    raise AssertionError(f"stay {stay.id} is in progress: nothing refuses {action}")


def _append(stay: Stay, movement_id: str, kind: MovementKind, at: datetime, now: datetime,
            location: tuple[str, str | None], encounter_class: EncounterClass | None = None) -> Stay:
    at, now = _utc(at, "at"), _utc(now, "now")
    if any(m.id == movement_id for m in stay.movements):
        raise MovementIdAlreadyUsed(f"movement id {movement_id} is already used in stay {stay.id}")
    _check_time(kind, at, now, stay.movements)
    movement = Movement(movement_id, kind, at, location[0], location[1], False,
                        encounter_class or stay.encounter_class)
    return rebuild_stay(stay.id, stay.establishment_code, (*stay.movements, movement))


def _here(stay: Stay) -> tuple[str, str | None]:
    location = current_location(stay)
    assert location is not None  # callers checked the status first
    return location


# --- state functions ---------------------------------------------------------------------------------


def pre_admit(stay_id: str, establishment_code: str, encounter_class: EncounterClass, *, movement_id: str,
              at: datetime, unit_code: str, bed_code: str | None = None, unit_beds: Collection[str] = (),
              now: datetime) -> Stay:
    """Open a planned stay (A05 "pre-admit patient", PAM FR §5.3.2); `at` is the planned arrival.

    The planned bed, if any, is not an occupancy: reserving it is the scheduler's business.
    """
    if encounter_class is EncounterClass.EMERGENCY:
        raise EmergencyIsNeverPlanned("an emergency visit cannot be pre-admitted")
    _check_location(unit_code, bed_code, unit_beds)
    at = _utc(at, "at")
    _utc(now, "now")
    movement = Movement(movement_id, MovementKind.PRE_ADMISSION, at, unit_code, bed_code, False, encounter_class)
    return rebuild_stay(stay_id, establishment_code, (movement,))


def admit(stay_id: str, establishment_code: str, encounter_class: EncounterClass, *, movement_id: str,
          at: datetime, unit_code: str, bed_code: str | None = None, unit_beds: Collection[str] = (),
          now: datetime) -> Stay:
    """Open a stay with its arrival: A01 "admit inpatient" or A04 "register outpatient" for an
    emergency or outpatient venue (PAM FR §5.3.2). `unit_beds` are the unit's beds, for `bed_code`.
    """
    _check_location(unit_code, bed_code, unit_beds)
    at, now = _utc(at, "at"), _utc(now, "now")
    kind = MovementKind.REGISTRATION if encounter_class in _REGISTERED_CLASSES else MovementKind.ADMISSION
    _check_time(kind, at, now)
    movement = Movement(movement_id, kind, at, unit_code, bed_code, False, encounter_class)
    return rebuild_stay(stay_id, establishment_code, (movement,))


def admit_planned(stay: Stay, *, movement_id: str, at: datetime, unit_code: str, bed_code: str | None = None,
                  unit_beds: Collection[str] = (), now: datetime) -> Stay:
    """Admit a pre-admitted stay (A05 then A01/A04, PAM FR §5.4.1): same venue, class of the A05.

    The arrival may come before the planned date: a plan is not a movement to keep order with.
    """
    if stay.status in (EncounterStatus.IN_PROGRESS, EncounterStatus.ON_LEAVE):
        raise StayAlreadyStarted(f"stay {stay.id} is already admitted")
    if stay.status is not EncounterStatus.PLANNED:
        raise _refuse_status(stay, "admit")
    _check_location(unit_code, bed_code, unit_beds)
    kind = MovementKind.REGISTRATION if stay.encounter_class in _REGISTERED_CLASSES else MovementKind.ADMISSION
    return _append(stay, movement_id, kind, at, now, (unit_code, bed_code))


def transfer(stay: Stay, *, movement_id: str, at: datetime, unit_code: str, bed_code: str | None = None,
             unit_beds: Collection[str] = (), establishment_code: str | None = None, now: datetime) -> Stay:
    """Move the patient to another unit and/or bed of the same establishment (A02 "mutation",
    PAM FR §2.2 remark 1, ZFM-2 code 6 "même hôpital"). `establishment_code` is the new unit's,
    when the caller knows it: another establishment means `transfer_to_establishment`.
    """
    if stay.status is not EncounterStatus.IN_PROGRESS:
        raise _refuse_status(stay, "transfer")
    if establishment_code is not None and establishment_code != stay.establishment_code:
        raise TransferLeavesEstablishment(
            f"unit {unit_code} is in {establishment_code}, not {stay.establishment_code}: "
            "discharge and admit into a new stay (transfer_to_establishment)")
    _check_location(unit_code, bed_code, unit_beds)
    if (unit_code, bed_code) == _here(stay):
        raise TransferToSameLocation(f"the patient is already in {unit_code} {bed_code or ''}".rstrip())
    return _append(stay, movement_id, MovementKind.TRANSFER, at, now, (unit_code, bed_code))


def transfer_to_establishment(stay: Stay, *, new_stay_id: str, establishment_code: str,
                              discharge_movement_id: str, admission_movement_id: str, at: datetime,
                              unit_code: str, bed_code: str | None = None, unit_beds: Collection[str] = (),
                              encounter_class: EncounterClass | None = None,
                              now: datetime) -> tuple[Stay, Stay]:
    """Transfer to another establishment of the group: discharge (A03, ZFM-2 mode 7 "transfert")
    and admission into a new stay (A01/A04, ZFM-1 mode 7) at the same instant (PAM FR §6.17).

    A new stay, because the NDA (PID-18) and the PMSI belong to one establishment; A02 is a
    mutation "même hôpital". Returns (closed stay, opened stay).
    """
    if stay.status is not EncounterStatus.IN_PROGRESS:
        raise _refuse_status(stay, "transfer")
    if establishment_code == stay.establishment_code:
        raise TransferWithinEstablishment(f"stay {stay.id} is already in {establishment_code}: use a mutation (A02)")
    _check_location(unit_code, bed_code, unit_beds)
    closed = discharge(stay, movement_id=discharge_movement_id, at=at, now=now)
    opened = admit(new_stay_id, establishment_code, encounter_class or stay.encounter_class,
                   movement_id=admission_movement_id, at=at, unit_code=unit_code, bed_code=bed_code,
                   unit_beds=unit_beds, now=now)
    return closed, opened


def start_leave(stay: Stay, *, movement_id: str, at: datetime, now: datetime) -> Stay:
    """The patient leaves for a while without ending the stay (A21: permission, or < 48 h on
    another establishment's technical platform), PAM FR §5.1.3, §5.1.4. The location is kept.
    """
    if stay.status is EncounterStatus.ON_LEAVE:
        raise AlreadyOnLeave(f"the patient of stay {stay.id} is already on leave")
    if stay.status is not EncounterStatus.IN_PROGRESS:
        raise _refuse_status(stay, "start a leave")
    return _append(stay, movement_id, MovementKind.LEAVE_START, at, now, _here(stay))


def end_leave(stay: Stay, *, movement_id: str, at: datetime, now: datetime) -> Stay:
    """The patient is back from leave, in the location kept (A22, PAM FR §5.3.2); a new bed is a
    transfer afterwards.
    """
    if stay.status is EncounterStatus.IN_PROGRESS:
        raise NotOnLeave(f"the patient of stay {stay.id} is not on leave")
    if stay.status is not EncounterStatus.ON_LEAVE:
        raise _refuse_status(stay, "end a leave")
    return _append(stay, movement_id, MovementKind.LEAVE_END, at, now, _here(stay))


def discharge(stay: Stay, *, movement_id: str, at: datetime, now: datetime) -> Stay:
    """End the stay (A03 "sortie définitive", PAM FR §5.3.2) from its current unit.

    Allowed during a leave: a patient may not come back (death, discharge from permission).
    """
    if stay.status not in (EncounterStatus.IN_PROGRESS, EncounterStatus.ON_LEAVE):
        raise _refuse_status(stay, "discharge")
    return _append(stay, movement_id, MovementKind.DISCHARGE, at, now, _here(stay))


def change_class(stay: Stay, new_class: EncounterClass, *, movement_id: str, at: datetime,
                 unit_code: str | None = None, bed_code: str | None = None, unit_beds: Collection[str] = (),
                 now: datetime) -> Stay:
    """Switch the stay's class (bascule A06/A07, PAM FR §5.3.5), e.g. emergency → inpatient,
    optionally into a new unit and bed. A06 towards hospitalisation, A07 towards E or O.

    Inpatient ↔ day hospital keeps PV1-2 = I: that is a mutation (A02) to the other unit.
    """
    if stay.status is not EncounterStatus.IN_PROGRESS:
        raise _refuse_status(stay, "change the class")
    if pv1_class(new_class) == pv1_class(stay.encounter_class):
        raise ClassUnchanged(f"{stay.encounter_class} → {new_class} keeps patient class {pv1_class(new_class)}")
    location = _here(stay)
    if unit_code is not None:
        _check_location(unit_code, bed_code, unit_beds)
        location = (unit_code, bed_code)
    return _append(stay, movement_id, class_change_kind(stay.encounter_class, new_class), at, now, location,
                   new_class)


def class_change_kind(old_class: EncounterClass, new_class: EncounterClass) -> MovementKind:
    """A06 towards hospitalisation (I, R), A07 towards emergency or outpatient (E, O), whatever the
    class left: the matrix of PAM FR §5.3.5 depends on the destination only."""
    if pv1_class(new_class) in _HOSPITALISED:
        return MovementKind.CLASS_TO_INPATIENT
    return MovementKind.CLASS_TO_OUTPATIENT


def cancel_last(stay: Stay, kind: MovementKind, *, now: datetime, movement_id: str | None = None) -> Stay:
    """Cancel the last active movement (A11, A12, A13, A38, A52, A53, or A07/A06 for a class
    change; ZBE-4 = CANCEL) and return to the state before it (PAM FR §5.3.2, §5.3.5, §5.4.1).

    `kind` (and `movement_id`, ZBE-1, when given) must name that last movement. Cancelling a
    discharge reopens the stay at its last location; cancelling the admission of a pre-admitted
    stay leaves it pre-admitted (§5.4.1), of any other stay cancels it. `now` is checked only.
    """
    _utc(now, "now")
    active = stay.active_movements
    if not active:
        raise NothingToCancel(f"stay {stay.id} has no active movement")
    last = active[-1]
    if last.kind is not kind or (movement_id is not None and movement_id != last.id):
        named = f"{kind} {movement_id}" if movement_id else str(kind)
        raise OnlyLastMovementCanBeCancelled(
            f"the last movement of stay {stay.id} is {last.kind} {last.id}, not {named}")
    flagged = tuple(
        Movement(m.id, m.kind, m.at, m.unit_code, m.bed_code, True, m.encounter_class) if m is last else m
        for m in stay.movements)
    return rebuild_stay(stay.id, stay.establishment_code, flagged)


# --- beds --------------------------------------------------------------------------------------------


def occupancies(stay: Stay, *, keep_bed_on_leave: bool = True) -> list[Occupancy]:
    """Beds the stay holds, from its active movements: each movement starts a period that the
    next one ends (PAM FR §5.1.4); discharge ends the last. Pre-admission holds nothing.

    A leave (A21) keeps the bed unless `keep_bed_on_leave` is False. Contiguous periods in one
    bed are merged; empty ones (two movements at the same instant) are dropped.
    """
    dated = [m for m in stay.active_movements if m.kind is not MovementKind.PRE_ADMISSION]
    result: list[Occupancy] = []
    for index, movement in enumerate(dated):
        if movement.kind is MovementKind.DISCHARGE:
            break
        released = movement.kind is MovementKind.LEAVE_START and not keep_bed_on_leave
        end = dated[index + 1].at if index + 1 < len(dated) else None
        if movement.bed_code is None or released or end == movement.at:
            continue
        if result and result[-1].bed_code == movement.bed_code and result[-1].end == movement.at:
            result[-1] = Occupancy(movement.bed_code, stay.id, result[-1].start, end)
        else:
            result.append(Occupancy(movement.bed_code, stay.id, movement.at, end))
    return result


def _overlap(a: Occupancy, b: Occupancy) -> bool:
    def empty(o: Occupancy) -> bool:
        return o.end is not None and o.end <= o.start

    if empty(a) or empty(b):
        return False
    return (a.end is None or b.start < a.end) and (b.end is None or a.start < b.end)


def bed_conflicts(candidate: Occupancy, others: Iterable[Occupancy]) -> list[Occupancy]:
    """Occupancies of other stays holding the candidate's bed over part of its period.

    Periods are half-open [start, end), so a bed freed at 10:00 can be taken at 10:00; an open
    end means the bed is still held. A stay never conflicts with itself. Bed management is the
    reason PAM FR notifies leaves and returns (CP-ITI-FR-2011-41).
    """
    return [o for o in others
            if o.bed_code == candidate.bed_code and o.stay_id != candidate.stay_id and _overlap(candidate, o)]


# --- the clinical chart: vital signs, codes --------------------------------------------------------

@dataclass(frozen=True, slots=True)
class VitalSign:
    """A vital sign naho records: LOINC code, UCUM unit, and the range a measure must lie in to be
    plausible (outside it is a typing error, not a patient: refused, not alerted)."""

    loinc: str
    key: str
    unit: str
    low: float
    high: float


#: LOINC codes of the vital-signs panel (LOINC 85353-1) that NEWS2 and the chart use.
VITAL_SIGNS: dict[str, VitalSign] = {v.key: v for v in (
    VitalSign("8867-4", "heart_rate", "/min", 10, 300),
    VitalSign("9279-1", "respiratory_rate", "/min", 2, 80),
    VitalSign("59408-5", "spo2", "%", 40, 100),
    VitalSign("8310-5", "temperature", "Cel", 25, 45),
    VitalSign("8480-6", "systolic_bp", "mm[Hg]", 30, 300),
    VitalSign("8462-4", "diastolic_bp", "mm[Hg]", 10, 200),
    VitalSign("29463-7", "weight", "kg", 0.3, 400),
    VitalSign("8302-2", "height", "cm", 20, 250),
)}
VITAL_BY_LOINC = {v.loinc: v for v in VITAL_SIGNS.values()}
#: Laboratory results other domains read from the chart (serum creatinine for the renal dose checks).
LAB_RESULTS: dict[str, VitalSign] = {v.key: v for v in (
    VitalSign("14682-9", "creatinine", "umol/L", 5, 3000),
)}

_ICD10 = re.compile(r"^[A-Z]\d{2}(?:\.?[0-9A-Z]{1,4})?$")
_SUBSTANCE = re.compile(r"^(ATC|FOOD|ENV|OTHER):[A-Za-z0-9_.-]{1,50}$")


class ImplausibleMeasure(StayRuleError):
    """A vital sign outside the physiologically possible range: surely a typing error."""


class UnknownVitalSign(StayRuleError):
    """naho does not record this vital sign (no LOINC code known for it)."""


class BadCode(StayRuleError):
    """An ICD-10 or substance code that does not have the expected form."""


def check_vital(key: str, value: float) -> VitalSign:
    """The vital sign (or laboratory result, LAB_RESULTS) of this key, if `value` is plausible for it."""
    sign = VITAL_SIGNS.get(key) or LAB_RESULTS.get(key)
    if sign is None:
        raise UnknownVitalSign(f"unknown vital sign {key!r}")
    if not sign.low <= value <= sign.high:
        raise ImplausibleMeasure(f"{key} = {value} {sign.unit} is outside {sign.low}-{sign.high}")
    return sign


def check_icd10(code: str) -> str:
    """An ICD-10 (CIM-10) code in its normal form: letter, two digits, optional subdivision (I21.4)."""
    normal = code.strip().upper()
    if not _ICD10.match(normal):
        raise BadCode(f"{code!r} is not an ICD-10 code")
    if len(normal) > 3 and normal[3] != ".":
        normal = normal[:3] + "." + normal[3:]
    return normal


def check_substance(code: str) -> str:
    """A substance code usable by the medication checks: ATC (class or substance) or another
    namespace for non-drug allergens (FOOD:peanut, ENV:latex)."""
    normal = code.strip()
    if not _SUBSTANCE.match(normal):
        raise BadCode(f"{code!r} is not a substance code such as ATC:J01C or FOOD:peanut")
    return normal


MAX_DOCUMENT_BYTES = 10 * 1024 * 1024


class DocumentRefused(StayRuleError):
    """Not a PDF or UTF-8 text document, empty, or too large."""


def document_media_type(content: bytes) -> str:
    """The media type naho accepts for a chart document, judged on the content, not the name."""
    if not content:
        raise DocumentRefused("the document is empty")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise DocumentRefused(f"the document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB")
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentRefused("only PDF and UTF-8 text documents are accepted") from exc
    if "\x00" in text:
        raise DocumentRefused("only PDF and UTF-8 text documents are accepted")
    return "text/plain; charset=utf-8"
