"""Use cases of scheduling: schedules and their slots, booking, cancelling, rescheduling, the
waiting list and its offers, reminders.

Each use case goes through the one door (platform.access) with the patient concerned, applies
the pure rules (scheduling.rules), writes, audits, in one transaction. A slot is taken by one
conditional UPDATE (`status = 'free'` → `'booked'`); whoever updates no row lost the race and
gets `SlotTaken` (409). The partial unique index on live appointments backs it up.

Who books: an admission clerk (secretariat) on any schedule; a physician on their own
schedules; the patient (or a parent acting for a child) on the portal, within the online
cut-offs. The portal hands in its own care-relationship port (it knows patient accounts).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.platform import audit, outbox
from naho.platform.access import CareRelationshipPort, Grant, Purpose, access_patient
from naho.platform.errors import Conflict, DomainError, Forbidden, NotFound
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.scheduling import rules
from naho.scheduling.models import (
    BLOCKED,
    BOOKED,
    CANCELLED,
    FREE,
    HELD,
    LIVE,
    Appointment,
    OpeningRule,
    Schedule,
    ScheduleClosure,
    Slot,
    WaitingEntry,
)
from naho.sites import service as sites

ZONE = ZoneInfo("Europe/Paris")
#: Outbox topic of the patient's appointment mails (reminder, offer): no health data inside.
REMINDER_TOPIC = "mail.reminder"
#: Who manages schedules (creates them, opens and closes them).
MANAGERS = frozenset({Role.ADMISSION_CLERK, Role.IT_ADMIN})


TAKEN = "this slot has just been booked by someone else: choose another one"


class SlotTaken(Conflict):
    """Someone else booked the slot first (or it is held for a waiting patient, or closed)."""

    title = "Slot taken"


class SlotNotFound(NotFound):
    """No such slot."""


class ScheduleNotFound(NotFound):
    """No such schedule."""


class AppointmentNotFound(NotFound):
    """No such appointment, or not one this person may see: the same answer."""


class OfferNotFound(NotFound):
    """No running offer of that id for this patient."""


class NotYourSchedule(Forbidden):
    """A physician books, moves and cancels on their own schedules only."""


class BookingRuleBroken(DomainError):
    """A scheduling rule refused the request; `rule` names it (TooLateForPatient, ...)."""

    status = 422
    title = "Scheduling rule"


class AlreadyWaiting(Conflict):
    """The patient already waits for this."""


def _rule(exc: rules.SchedulingRuleError) -> BookingRuleBroken:
    return BookingRuleBroken(str(exc), rule=type(exc).__name__)


@dataclass(frozen=True)
class ScheduleView:
    id: uuid.UUID
    name: str
    specialty: str
    establishment_code: str
    establishment_name: str
    place: str
    practitioner_account_id: uuid.UUID | None


@dataclass(frozen=True)
class SlotView:
    id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    consultation_type: str
    status: str
    schedule: ScheduleView


@dataclass(frozen=True)
class AppointmentView:
    id: uuid.UUID
    patient_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    consultation_type: str
    status: str
    booked_via: str
    schedule: ScheduleView
    patient_name: str = ""
    slot_id: uuid.UUID | None = None


@dataclass(frozen=True)
class OfferView:
    entry_id: uuid.UUID
    expires_at: datetime
    slot: SlotView


# --- schedules and slots ----------------------------------------------------------------------

def _establishment_names(session: Session) -> dict[str, str]:
    return {e.code: e.name for e in sites.establishment_choices(session)}


def _schedule_view(row: Schedule, names: dict[str, str]) -> ScheduleView:
    return ScheduleView(row.id, row.name, row.specialty, row.establishment_code,
                        names.get(row.establishment_code, row.establishment_code), row.place,
                        row.practitioner_account_id)


def _may_manage(actor: Actor, schedule: Schedule | None = None) -> bool:
    if actor.has_any(*MANAGERS):
        return True
    own = schedule is not None and schedule.practitioner_account_id == actor.account_id
    return own and Role.PHYSICIAN in actor.roles


def create_schedule(uow: UnitOfWork, actor: Actor, *, name: str, specialty: str, establishment_code: str,
                    place: str, openings: list[rules.Opening],
                    practitioner_account_id: uuid.UUID | None = None) -> uuid.UUID:
    """Open an agenda in an establishment with its weekly opening rules."""
    if not actor.has_any(*MANAGERS) and not (Role.PHYSICIAN in actor.roles
                                             and practitioner_account_id == actor.account_id):
        raise NotYourSchedule("only the secretariat, or the practitioner for themselves, opens a schedule")
    for opening in openings:
        try:
            opening.check()
        except rules.SchedulingRuleError as exc:
            raise _rule(exc) from exc
    if not name.strip() or not specialty.strip() or not place.strip():
        raise BookingRuleBroken("a schedule needs a name, a specialty and a place", rule="IncompleteSchedule")
    with uow:
        s = uow.session
        now = uow.clock.now()
        sites.get_establishment(s, establishment_code)  # NotFound for an unknown establishment
        row = Schedule(name=name.strip(), specialty=specialty.strip().lower(), establishment_code=establishment_code,
                       place=place.strip(), practitioner_account_id=practitioner_account_id, created_at=now)
        s.add(row)
        s.flush()
        for o in openings:
            s.add(OpeningRule(schedule_id=row.id, weekday=o.weekday, start_minute=o.start.hour * 60 + o.start.minute,
                              end_minute=o.end.hour * 60 + o.end.minute, consultation_type=str(o.consultation_type),
                              minutes=o.minutes, valid_from=o.valid_from, valid_until=o.valid_until))
        audit.record(s, actor, "scheduling:schedule:create", at=now, target=str(row.id),
                     details={"establishment": establishment_code, "specialty": row.specialty})
        uow.commit()
        return row.id


def _openings(session: Session, schedule_id: uuid.UUID) -> list[rules.Opening]:
    return [rules.Opening(o.weekday, time(o.start_minute // 60, o.start_minute % 60),
                          time(o.end_minute // 60, o.end_minute % 60), rules.ConsultationType(o.consultation_type),
                          o.minutes, o.valid_from, o.valid_until)
            for o in session.scalars(select(OpeningRule).where(OpeningRule.schedule_id == schedule_id))]


def _closures(session: Session, schedule_id: uuid.UUID) -> list[rules.Closure]:
    return [rules.Closure(c.starts_at, c.ends_at)
            for c in session.scalars(select(ScheduleClosure).where(ScheduleClosure.schedule_id == schedule_id))]


def generate_slots(uow: UnitOfWork, actor: Actor, schedule_id: uuid.UUID, first_day: date, last_day: date) -> int:
    """Create the slots the rules give between two days; existing slots are kept. Returns how
    many were added."""
    with uow:
        s = uow.session
        schedule = s.get(Schedule, schedule_id)
        if schedule is None:
            raise ScheduleNotFound("no such schedule")
        if not _may_manage(actor, schedule):
            raise NotYourSchedule("this schedule is not yours to open")
        specs = rules.generate_slots(_openings(s, schedule_id), first_day, last_day, ZONE,
                                     closures=_closures(s, schedule_id))
        existing = set(s.scalars(select(Slot.starts_at).where(
            Slot.schedule_id == schedule_id, Slot.starts_at >= datetime.combine(first_day, time(), ZONE),
            Slot.starts_at < datetime.combine(last_day + timedelta(days=1), time(), ZONE))))
        added = [Slot(schedule_id=schedule_id, starts_at=spec.starts_at, ends_at=spec.ends_at,
                      consultation_type=str(spec.consultation_type), status=FREE)
                 for spec in specs if spec.starts_at not in existing]
        s.add_all(added)
        now = uow.clock.now()
        audit.record(s, actor, "scheduling:slots:generate", at=now, target=str(schedule_id),
                     details={"from": first_day.isoformat(), "to": last_day.isoformat(), "added": len(added)})
        uow.commit()
        return len(added)


def close_schedule(uow: UnitOfWork, actor: Actor, schedule_id: uuid.UUID, starts_at: datetime, ends_at: datetime,
                   reason: str) -> int:
    """An exception (leave, training, a broken scanner): free slots in the period are blocked.
    Booked appointments are left to the secretariat, who calls the patients. Returns how many
    slots were blocked."""
    if ends_at <= starts_at:
        raise BookingRuleBroken("a closure ends after it starts", rule="InvalidClosure")
    with uow:
        s = uow.session
        schedule = s.get(Schedule, schedule_id)
        if schedule is None:
            raise ScheduleNotFound("no such schedule")
        if not _may_manage(actor, schedule):
            raise NotYourSchedule("this schedule is not yours to close")
        now = uow.clock.now()
        s.add(ScheduleClosure(schedule_id=schedule_id, starts_at=starts_at, ends_at=ends_at,
                              reason=reason.strip()[:300] or "-"))
        blocked = getattr(s.execute(update(Slot).where(
            Slot.schedule_id == schedule_id, Slot.status == FREE, Slot.starts_at < ends_at, Slot.ends_at > starts_at,
        ).values(status=BLOCKED)), "rowcount", 0)
        audit.record(s, actor, "scheduling:schedule:close", at=now, target=str(schedule_id),
                     details={"from": starts_at.isoformat(), "to": ends_at.isoformat(), "blocked": blocked})
        uow.commit()
        return int(blocked)


def list_schedules(session: Session, *, establishment_code: str | None = None, specialty: str | None = None,
                   practitioner_account_id: uuid.UUID | None = None) -> list[ScheduleView]:
    query = select(Schedule).where(Schedule.active.is_(True))
    if establishment_code:
        query = query.where(Schedule.establishment_code == establishment_code)
    if specialty:
        query = query.where(Schedule.specialty == specialty.lower())
    if practitioner_account_id:
        query = query.where(Schedule.practitioner_account_id == practitioner_account_id)
    names = _establishment_names(session)
    return [_schedule_view(r, names) for r in session.scalars(query.order_by(Schedule.specialty, Schedule.name))]


def specialties(session: Session) -> list[str]:
    return list(session.scalars(select(Schedule.specialty).where(Schedule.active.is_(True))
                                .distinct().order_by(Schedule.specialty)))


def search_slots(session: Session, *, now: datetime, specialty: str | None = None,
                 schedule_id: uuid.UUID | None = None, establishment_code: str | None = None,
                 consultation_type: str | None = None, not_before: datetime | None = None,
                 limit: int = 20) -> list[SlotView]:
    """Free slots, soonest first. No patient data: anyone signed in may search."""
    query = (select(Slot, Schedule).join(Schedule, Slot.schedule_id == Schedule.id)
             .where(Slot.status == FREE, Slot.starts_at > max(now, not_before or now), Schedule.active.is_(True)))
    if specialty:
        query = query.where(Schedule.specialty == specialty.lower())
    if schedule_id:
        query = query.where(Schedule.id == schedule_id)
    if establishment_code:
        query = query.where(Schedule.establishment_code == establishment_code)
    if consultation_type:
        query = query.where(Slot.consultation_type == consultation_type)
    names = _establishment_names(session)
    rows = session.execute(query.order_by(Slot.starts_at, Slot.id).limit(max(1, min(limit, 200)))).all()
    return [SlotView(slot.id, slot.starts_at, slot.ends_at, slot.consultation_type, slot.status,
                     _schedule_view(schedule, names)) for slot, schedule in rows]


def get_slot(session: Session, slot_id: uuid.UUID) -> SlotView:
    slot, schedule = _load_slot(session, slot_id)
    return SlotView(slot.id, slot.starts_at, slot.ends_at, slot.consultation_type, slot.status,
                    _schedule_view(schedule, _establishment_names(session)))


# --- booking ----------------------------------------------------------------------------------

def _purpose(actor: Actor) -> Purpose:
    return Purpose.SELF if Role.PATIENT in actor.roles else Purpose.ADMINISTRATION


def _via(actor: Actor) -> str:
    if Role.PATIENT in actor.roles:
        return "portal"
    return "api" if actor.via == "token" else "staff"


def _door(session: Session, actor: Actor, patient_id: uuid.UUID, now: datetime, port: CareRelationshipPort,
          action: str, target: str | None = None) -> Grant:
    return access_patient(session, actor, patient_id, _purpose(actor), now=now, port=port, action=action,
                          target=target)


def _check_timing(actor: Actor, schedule: Schedule, starts_at: datetime, now: datetime, *, cancelling: bool) -> None:
    """Patients act within the online cut-offs; physicians on their own schedules; clerks anywhere."""
    try:
        if Role.PATIENT in actor.roles:
            if cancelling:
                rules.check_patient_may_cancel(starts_at, now)
            else:
                rules.check_patient_may_book(starts_at, now)
            return
        rules.check_staff_may_change(starts_at, now)
    except rules.SchedulingRuleError as exc:
        raise _rule(exc) from exc
    if not actor.has_any(Role.ADMISSION_CLERK, Role.INTERFACE) and schedule.practitioner_account_id != actor.account_id:
        raise NotYourSchedule("a physician books on their own schedules only")


def _take(session: Session, actor: Actor, slot: Slot, schedule: Schedule, patient_id: uuid.UUID, now: datetime,
          *, held_for: uuid.UUID | None = None, replaces: uuid.UUID | None = None) -> Appointment:
    """Take the slot in one conditional UPDATE, then insert the appointment (unique per live slot)."""
    condition = and_(Slot.status == HELD, Slot.held_for == held_for) if held_for else Slot.status == FREE
    taken = getattr(session.execute(update(Slot).where(Slot.id == slot.id, condition)
                            .values(status=BOOKED, held_for=None, held_until=None)
                            .execution_options(synchronize_session=False)), "rowcount", 0)
    if taken != 1:
        raise SlotTaken(TAKEN)
    row = Appointment(slot_id=slot.id, schedule_id=schedule.id, patient_id=patient_id, starts_at=slot.starts_at,
                      ends_at=slot.ends_at, consultation_type=slot.consultation_type, status=LIVE,
                      booked_via=_via(actor), booked_by=actor.label, booked_at=now, replaces_id=replaces)
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # the database's own guard: never two live appointments on a slot
        raise SlotTaken(TAKEN) from exc
    return row


def _load_slot(session: Session, slot_id: uuid.UUID) -> tuple[Slot, Schedule]:
    row = session.execute(select(Slot, Schedule).join(Schedule, Slot.schedule_id == Schedule.id)
                          .where(Slot.id == slot_id)).first()
    if row is None:
        raise SlotNotFound("no such slot")
    return row[0], row[1]


def _appointment_view(row: Appointment, schedule: Schedule, names: dict[str, str],
                      patient_name: str = "") -> AppointmentView:
    return AppointmentView(row.id, row.patient_id, row.starts_at, row.ends_at, row.consultation_type, row.status,
                           row.booked_via, _schedule_view(schedule, names), patient_name, row.slot_id)


def book(uow: UnitOfWork, actor: Actor, slot_id: uuid.UUID, patient_id: uuid.UUID,
         port: CareRelationshipPort) -> AppointmentView:
    """Book a free slot for a patient. Raises SlotTaken (409) to whoever loses the race."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        slot, schedule = _load_slot(s, slot_id)
        if slot.status != FREE:
            # Already gone: answer at once, without queueing for the audit chain. A slot seen
            # free here may still be lost: the conditional UPDATE in _take has the last word.
            raise SlotTaken(TAKEN)
        _door(s, actor, patient_id, now, port, "patient:appointment:book", str(slot_id))
        _check_timing(actor, schedule, slot.starts_at, now, cancelling=False)
        row = _take(s, actor, slot, schedule, patient_id, now)
        view = _appointment_view(row, schedule, _establishment_names(s))
        uow.commit()
        return view


def _load_appointment(session: Session, appointment_id: uuid.UUID) -> tuple[Appointment, Schedule]:
    row = session.execute(select(Appointment, Schedule).join(Schedule, Appointment.schedule_id == Schedule.id)
                          .where(Appointment.id == appointment_id)).first()
    if row is None:
        raise AppointmentNotFound("no such appointment")
    return row[0], row[1]


def _release(session: Session, uow: UnitOfWork, appointment: Appointment, schedule: Schedule, actor: Actor,
             now: datetime) -> None:
    """Cancel the appointment and free its slot: offered first to the waiting list."""
    done = getattr(session.execute(
        update(Appointment).where(Appointment.id == appointment.id, Appointment.status == LIVE)
        .values(status=CANCELLED, cancelled_at=now, cancelled_by=actor.label)
        .execution_options(synchronize_session=False)), "rowcount", 0)
    if done != 1:
        raise AppointmentNotFound("this appointment is already cancelled")
    appointment.status = CANCELLED
    session.execute(update(Slot).where(Slot.id == appointment.slot_id, Slot.status == BOOKED)
                    .values(status=FREE).execution_options(synchronize_session=False))
    _offer(session, uow, appointment.slot_id, schedule, now)


def _live_appointment(session: Session, actor: Actor, appointment_id: uuid.UUID, now: datetime,
                      port: CareRelationshipPort, action: str) -> tuple[Appointment, Schedule]:
    """A live appointment this actor may cancel or move now (door, status, cut-off)."""
    row, schedule = _load_appointment(session, appointment_id)
    try:
        _door(session, actor, row.patient_id, now, port, action, str(appointment_id))
    except NotFound as exc:
        raise AppointmentNotFound("no such appointment") from exc
    if row.status != LIVE:
        raise AppointmentNotFound("this appointment is already cancelled")
    _check_timing(actor, schedule, row.starts_at, now, cancelling=True)
    return row, schedule


def cancel(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID, port: CareRelationshipPort) -> None:
    """Cancel an appointment; online, the patient cancels up to 24 hours before."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        row, schedule = _live_appointment(s, actor, appointment_id, now, port, "patient:appointment:cancel")
        _release(s, uow, row, schedule, actor, now)
        uow.commit()


def reschedule(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID, new_slot_id: uuid.UUID,
               port: CareRelationshipPort) -> AppointmentView:
    """Move an appointment to another slot, all or nothing: if the new slot is taken, the old
    appointment stands."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        row, schedule = _live_appointment(s, actor, appointment_id, now, port, "patient:appointment:reschedule")
        slot, new_schedule = _load_slot(s, new_slot_id)
        _check_timing(actor, new_schedule, slot.starts_at, now, cancelling=False)
        new = _take(s, actor, slot, new_schedule, row.patient_id, now, replaces=row.id)
        _release(s, uow, row, schedule, actor, now)
        view = _appointment_view(new, new_schedule, _establishment_names(s))
        uow.commit()
        return view


def patient_appointments(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort, *,
                         include_past: bool = False) -> list[AppointmentView]:
    """A patient's appointments, soonest first (live ones; past ones on demand)."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        _door(s, actor, patient_id, now, port, "patient:appointment:list")
        query = (select(Appointment, Schedule).join(Schedule, Appointment.schedule_id == Schedule.id)
                 .where(Appointment.patient_id == patient_id, Appointment.status == LIVE))
        if not include_past:
            query = query.where(Appointment.ends_at > now)
        names = _establishment_names(s)
        views = [_appointment_view(a, sc, names) for a, sc in s.execute(query.order_by(Appointment.starts_at))]
        uow.commit()
        return views


def agenda(uow: UnitOfWork, actor: Actor, schedule_id: uuid.UUID, day: date,
           port: CareRelationshipPort) -> tuple[ScheduleView, list[SlotView], list[AppointmentView]]:
    """A schedule's day for the secretariat or its practitioner: slots and appointments. Each
    patient shown is opened through the door (audited)."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        schedule = s.get(Schedule, schedule_id)
        if schedule is None:
            raise ScheduleNotFound("no such schedule")
        if not _may_manage(actor, schedule) and not actor.has_any(Role.ADMISSION_CLERK):
            raise NotYourSchedule("this schedule is not yours")
        start = datetime.combine(day, time(), ZONE)
        end = start + timedelta(days=1)
        names = _establishment_names(s)
        view = _schedule_view(schedule, names)
        slots = [SlotView(x.id, x.starts_at, x.ends_at, x.consultation_type, x.status, view)
                 for x in s.scalars(select(Slot).where(Slot.schedule_id == schedule_id, Slot.starts_at >= start,
                                                      Slot.starts_at < end).order_by(Slot.starts_at))]
        rows = list(s.scalars(select(Appointment).where(Appointment.schedule_id == schedule_id,
                                                        Appointment.status == LIVE, Appointment.starts_at >= start,
                                                        Appointment.starts_at < end).order_by(Appointment.starts_at)))
        people = identity.summaries(s, [a.patient_id for a in rows])
        appointments = []
        for a in rows:
            _door(s, actor, a.patient_id, now, port, "patient:appointment:agenda", str(schedule_id))
            p = people.get(a.patient_id)
            label = f"{p.used_name or p.birth_name} {p.used_first_name or p.first_names.split(' ')[0]}" if p else "?"
            appointments.append(_appointment_view(a, schedule, names, label))
        uow.commit()
        return view, slots, appointments


# --- waiting list -------------------------------------------------------------------------------

def join_waiting_list(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort, *,
                      consultation_type: str, specialty: str | None = None, schedule_id: uuid.UUID | None = None,
                      establishment_code: str | None = None, not_before: datetime | None = None,
                      not_after: datetime | None = None) -> uuid.UUID:
    """Put a patient on the waiting list: a freed slot that fits is offered to them in turn."""
    try:
        kind = rules.ConsultationType(consultation_type)
    except ValueError as exc:
        raise BookingRuleBroken(f"unknown consultation type {consultation_type!r}", rule="UnknownType") from exc
    if not (specialty or schedule_id):
        raise BookingRuleBroken("wait for a specialty or a schedule", rule="NothingToWaitFor")
    with uow:
        s = uow.session
        now = uow.clock.now()
        _door(s, actor, patient_id, now, port, "patient:waiting-list:join")
        twin = s.scalars(select(WaitingEntry.id).where(
            WaitingEntry.patient_id == patient_id, WaitingEntry.status.in_(("waiting", "offered")),
            WaitingEntry.consultation_type == str(kind), WaitingEntry.schedule_id == schedule_id,
            WaitingEntry.specialty == (specialty.lower() if specialty else None))).first()
        if twin:
            raise AlreadyWaiting("the patient already waits for this")
        row = WaitingEntry(patient_id=patient_id, schedule_id=schedule_id, consultation_type=str(kind),
                           specialty=specialty.lower() if specialty else None, establishment_code=establishment_code,
                           not_before=not_before, not_after=not_after, since=now, status="waiting",
                           created_by=actor.label)
        s.add(row)
        s.flush()
        uow.commit()
        return row.id


def _waiting(entry: WaitingEntry) -> rules.Waiting:
    return rules.Waiting(entry.id, entry.since, entry.schedule_id, entry.specialty, entry.establishment_code,
                         rules.ConsultationType(entry.consultation_type), entry.not_before, entry.not_after)


def _offer(session: Session, uow: UnitOfWork, slot_id: uuid.UUID, schedule: Schedule,
           now: datetime) -> uuid.UUID | None:
    """Offer a freed slot to the first waiting patient who wants it; the slot is held for them."""
    slot = session.get(Slot, slot_id)
    if slot is None or slot.status != FREE:
        return None
    freed = rules.FreedSlot(schedule.id, schedule.specialty, schedule.establishment_code,
                            rules.ConsultationType(slot.consultation_type), slot.starts_at)
    entries = session.scalars(select(WaitingEntry).where(
        WaitingEntry.status == "waiting", WaitingEntry.consultation_type == slot.consultation_type))
    chosen = rules.first_in_line([_waiting(e) for e in entries], freed, now)
    if chosen is None:
        return None
    expires = rules.offer_expires_at(slot.starts_at, now)
    held = getattr(session.execute(update(Slot).where(Slot.id == slot.id, Slot.status == FREE)
                           .values(status=HELD, held_for=chosen.id, held_until=expires)
                           .execution_options(synchronize_session=False)), "rowcount", 0)
    if held != 1:
        return None
    session.execute(update(WaitingEntry).where(WaitingEntry.id == chosen.id)
                    .values(status="offered", offered_slot_id=slot.id, offer_expires_at=expires)
                    .execution_options(synchronize_session=False))
    entry = session.get(WaitingEntry, chosen.id)
    assert entry is not None
    audit.record(session, None, "patient:waiting-list:offer", at=now, patient_id=entry.patient_id,
                 target=str(slot.id), details={"expires_at": expires.isoformat()})
    _mail(session, uow, "offer", entry.patient_id, slot.starts_at, slot.ends_at, schedule, now, str(entry.id))
    return chosen.id


def offers_for(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort) -> list[OfferView]:
    with uow:
        s = uow.session
        now = uow.clock.now()
        _door(s, actor, patient_id, now, port, "patient:waiting-list:view")
        rows = s.execute(select(WaitingEntry, Slot, Schedule).join(Slot, WaitingEntry.offered_slot_id == Slot.id)
                         .join(Schedule, Slot.schedule_id == Schedule.id)
                         .where(WaitingEntry.patient_id == patient_id, WaitingEntry.status == "offered",
                                WaitingEntry.offer_expires_at > now)).all()
        names = _establishment_names(s)
        views = [OfferView(e.id, e.offer_expires_at, SlotView(sl.id, sl.starts_at, sl.ends_at, sl.consultation_type,
                                                               sl.status, _schedule_view(sc, names)))
                 for e, sl, sc in rows if e.offer_expires_at]
        uow.commit()
        return views


def accept_offer(uow: UnitOfWork, actor: Actor, entry_id: uuid.UUID, port: CareRelationshipPort) -> AppointmentView:
    """The waiting patient takes the slot held for them, before the offer expires."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        entry = s.get(WaitingEntry, entry_id)
        if entry is None:
            raise OfferNotFound("no such offer")
        try:
            _door(s, actor, entry.patient_id, now, port, "patient:waiting-list:accept", str(entry_id))
        except NotFound as exc:
            raise OfferNotFound("no such offer") from exc
        if entry.status != "offered" or entry.offered_slot_id is None or not entry.offer_expires_at \
                or entry.offer_expires_at <= now:
            raise OfferNotFound("this offer has expired")
        slot, schedule = _load_slot(s, entry.offered_slot_id)
        row = _take(s, actor, slot, schedule, entry.patient_id, now, held_for=entry.id)
        entry.status = "booked"
        view = _appointment_view(row, schedule, _establishment_names(s))
        uow.commit()
        return view


def expire_offers(uow: UnitOfWork) -> int:
    """Offers not accepted in time lapse (the patient leaves the list) and their slots go to
    the next patient in line, or back to everyone. Run by a background job."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        lapsed = list(s.scalars(select(WaitingEntry).where(WaitingEntry.status == "offered",
                                                           WaitingEntry.offer_expires_at <= now)))
        for entry in lapsed:
            entry.status = "lapsed"
            slot_id = entry.offered_slot_id
            if slot_id is None:
                continue
            s.execute(update(Slot).where(Slot.id == slot_id, Slot.status == HELD, Slot.held_for == entry.id)
                      .values(status=FREE, held_for=None, held_until=None).execution_options(synchronize_session=False))
            s.flush()
            slot, schedule = _load_slot(s, slot_id)
            _offer(s, uow, slot.id, schedule, now)
        uow.commit()
        return len(lapsed)


# --- reminders --------------------------------------------------------------------------------

def _mail(session: Session, uow: UnitOfWork, kind: str, patient_id: uuid.UUID, starts_at: datetime,
          ends_at: datetime, schedule: Schedule, now: datetime, reference: str) -> bool:
    """Queue a patient mail: when and where only — no specialty, reason or practitioner. The
    mail handler (portal) finds the patient's verified address at sending time."""
    if REMINDER_TOPIC not in uow.channels:
        return False
    establishment = _establishment_names(session).get(schedule.establishment_code, schedule.establishment_code)
    outbox.enqueue(session, REMINDER_TOPIC, {
        "kind": kind, "patient_id": str(patient_id), "reference": reference,
        "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(),
        "place": f"{establishment} — {schedule.place}",
    }, now=now)
    return True


def queue_due_reminders(uow: UnitOfWork) -> int:
    """Queue the reminder of every live appointment now less than 48 hours away. Run by a job."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        rows = s.execute(select(Appointment, Schedule).join(Schedule, Appointment.schedule_id == Schedule.id)
                         .where(Appointment.status == LIVE, Appointment.reminder_queued_at.is_(None),
                                Appointment.starts_at > now, Appointment.starts_at <= now + rules.REMINDER_LEAD)
                         .limit(500)).all()
        queued = 0
        for appointment, schedule in rows:
            if _mail(s, uow, "reminder", appointment.patient_id, appointment.starts_at, appointment.ends_at,
                     schedule, now, str(appointment.id)):
                appointment.reminder_queued_at = now
                queued += 1
        uow.commit()
        return queued


# --- reads for the FHIR facade -------------------------------------------------------------------

def get_schedule(session: Session, schedule_id: uuid.UUID) -> ScheduleView:
    row = session.get(Schedule, schedule_id)
    if row is None:
        raise ScheduleNotFound("no such schedule")
    return _schedule_view(row, _establishment_names(session))


def find_appointment(session: Session, appointment_id: uuid.UUID) -> AppointmentView:
    """One appointment, for a domain that opens the patient's door itself (teleconsultation)."""
    row, schedule = _load_appointment(session, appointment_id)
    return _appointment_view(row, schedule, _establishment_names(session))


def get_appointment(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID,
                    port: CareRelationshipPort) -> AppointmentView:
    """One appointment, through the door (the same answer for absent and forbidden)."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        row, schedule = _load_appointment(s, appointment_id)
        try:
            _door(s, actor, row.patient_id, now, port, "patient:appointment:view", str(appointment_id))
        except NotFound as exc:
            raise AppointmentNotFound("no such appointment") from exc
        view = _appointment_view(row, schedule, _establishment_names(s))
        uow.commit()
        return view
