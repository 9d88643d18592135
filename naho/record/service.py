"""Use cases of stays: admit, transfer, leave, discharge, cancel; the bed board; the care team.

Each use case: access (the one door) → load the stay's movements → pure rules (record.rules,
PAM FR) → write movements and bed occupancies → audit → events, in one transaction. The bed
occupancy table refuses two open occupancies of a bed, so concurrent admissions into one bed
cannot both succeed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.platform import audit, outbox
from naho.platform.access import Purpose, access_patient
from naho.platform.counters import next_number
from naho.platform.errors import Forbidden
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import rules
from naho.record.errors import (
    BedAlreadyOccupied,
    EncounterNotFound,
    LocationNotFound,
    MovementRefused,
    StayMoveRefused,
)
from naho.record.models import (
    Allergy,
    BedOccupancy,
    CareTeamMember,
    ClinicalDocument,
    ClinicalNote,
    Condition,
    Encounter,
    Movement,
    Observation,
)
from naho.record.schemas import (
    AdmissionCreate,
    ArrivalCreate,
    BedBoard,
    BedLine,
    ClassChange,
    EncounterPublic,
    MovementPublic,
    PreAdmissionCreate,
    TransferCreate,
)
from naho.sites import service as sites
from naho.staff import service as staff

#: A stay that ended less than this long ago still opens the chart to its unit's care team.
RECENT_STAY = timedelta(days=30)
#: The bed board lists pre-admitted stays planned up to this far ahead, and those a day overdue.
EXPECTED_AHEAD = timedelta(days=7)
EXPECTED_OVERDUE = timedelta(days=1)
#: Outbox topic of naho's own ADT messages (IHE PAM FR); interop.hl7_sender delivers it.
ADT_TOPIC = "hl7.adt"


# --- events (past tense, published after commit) -------------------------------------------------

@dataclass(frozen=True)
class PatientMoved:
    encounter_id: uuid.UUID
    patient_id: uuid.UUID
    kind: str
    trigger: str
    unit_code: str | None
    bed_code: str | None
    at: datetime


@dataclass(frozen=True)
class StayMoved:
    encounter_id: uuid.UUID
    from_patient_id: uuid.UUID
    to_patient_id: uuid.UUID


@dataclass(frozen=True)
class MovementCancelled:
    encounter_id: uuid.UUID
    patient_id: uuid.UUID
    kind: str
    trigger: str


# --- the care-relationship port of platform.access ---------------------------------------------

class RecordCareRelationship:
    """Care team = staff assigned to a unit the patient is in, or left less than 30 days ago,
    in any establishment of the group, plus the professionals named on a stay."""

    def patient_exists(self, session: Session, patient_id: uuid.UUID) -> bool:
        return identity.patient_exists(session, patient_id)

    def in_care_team(self, session: Session, actor: Actor, patient_id: uuid.UUID, now: datetime) -> bool:
        named = session.execute(
            select(CareTeamMember.id).join(Encounter, CareTeamMember.encounter_id == Encounter.id)
            .where(Encounter.patient_id == patient_id, CareTeamMember.account_id == actor.account_id,
                   or_(Encounter.ended_at.is_(None), Encounter.ended_at > now - RECENT_STAY))
            .limit(1)
        ).first()
        if named:
            return True
        my_units = {unit for _est, unit in staff.workplaces_of(session, actor.account_id)}
        if not my_units:
            return False
        recent = select(Encounter.id).where(
            Encounter.patient_id == patient_id, Encounter.status != str(rules.EncounterStatus.CANCELLED),
            or_(Encounter.ended_at.is_(None), Encounter.ended_at > now - RECENT_STAY),
        )
        hit = session.execute(
            select(Movement.id).where(Movement.encounter_id.in_(recent), Movement.cancelled.is_(False),
                                      Movement.unit_code.in_(my_units)).limit(1)
        ).first()
        return hit is not None

    def patient_account(self, session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
        return None  # the patient portal links accounts (a later issue)


CARE = RecordCareRelationship()


def establishments_of(session: Session, patient_id: uuid.UUID) -> set[str]:
    """The establishments that treated the patient: those of their stays (cancelled ones aside)."""
    return set(session.scalars(select(Encounter.establishment_code).where(
        Encounter.patient_id == patient_id, Encounter.status != str(rules.EncounterStatus.CANCELLED))))


# --- loading and saving a stay ---------------------------------------------------------------------

#: The order movements were recorded in. A pre-admission comes first even when its arrival is
#: recorded in the same instant (one message, a fast clerk) and dated before the planned date.
MOVEMENT_ORDER = (Movement.recorded_at,
                  case((Movement.kind == str(rules.MovementKind.PRE_ADMISSION), 0), else_=1), Movement.at)

def _to_rule(row: Movement) -> rules.Movement:
    return rules.Movement(id=str(row.id), kind=rules.MovementKind(row.kind), at=row.at,
                          unit_code=row.unit_code or "", bed_code=row.bed_code, cancelled=row.cancelled,
                          encounter_class=rules.EncounterClass(row.encounter_class))


def _load(session: Session, encounter_id: uuid.UUID) -> tuple[Encounter, list[Movement], rules.Stay]:
    encounter = session.get(Encounter, encounter_id)
    if encounter is None:
        raise EncounterNotFound("no such stay")
    rows = list(session.scalars(select(Movement).where(Movement.encounter_id == encounter_id)
                                .order_by(*MOVEMENT_ORDER)))
    stay = rules.rebuild_stay(str(encounter.id), encounter.establishment_code, [_to_rule(r) for r in rows])
    return encounter, rows, stay


def _unit_beds(session: Session, establishment_code: str, unit_code: str) -> list[str]:
    units = {u.code for u in sites.unit_choices(session, establishment_code)}
    if unit_code not in units:
        raise LocationNotFound(f"no unit {unit_code} in {establishment_code}")
    return [b.code for b in sites.list_beds(session, unit_code)]


def _save(session: Session, actor: Actor, encounter: Encounter, rows: list[Movement], stay: rules.Stay,
          now: datetime) -> list[Movement]:
    """Persist what the rules changed: new movements, cancellation flags, derived columns, beds."""
    known = {str(r.id): r for r in rows}
    added: list[Movement] = []
    for m in stay.movements:
        row = known.get(m.id)
        if row is None:
            row = Movement(id=uuid.UUID(m.id), encounter_id=encounter.id, patient_id=encounter.patient_id,
                           kind=str(m.kind), encounter_class=str(m.encounter_class), at=m.at,
                           unit_code=m.unit_code or None, bed_code=m.bed_code, cancelled=m.cancelled,
                           recorded_at=now, actor_label=actor.label)
            session.add(row)
            added.append(row)
        elif row.cancelled != m.cancelled:
            row.cancelled, row.cancelled_at = m.cancelled, now
    encounter.status = str(stay.status)
    encounter.encounter_class = str(stay.encounter_class)
    location = rules.current_location(stay)
    encounter.unit_code, encounter.bed_code = location if location else (encounter.unit_code, None)
    active = [m for m in stay.active_movements if m.kind is not rules.MovementKind.PRE_ADMISSION]
    encounter.started_at = active[0].at if active else encounter.started_at
    finished = stay.status is rules.EncounterStatus.FINISHED
    encounter.ended_at = active[-1].at if finished and active else None
    _sync_beds(session, encounter, stay)
    return added


def _sync_beds(session: Session, encounter: Encounter, stay: rules.Stay) -> None:
    wanted = rules.occupancies(stay)
    for occupancy in wanted:
        others = session.scalars(select(BedOccupancy).where(
            BedOccupancy.bed_code == occupancy.bed_code, BedOccupancy.encounter_id != encounter.id))
        conflicts = rules.bed_conflicts(occupancy, [
            rules.Occupancy(o.bed_code, str(o.encounter_id), o.started_at, o.ended_at) for o in others])
        if conflicts:
            raise BedAlreadyOccupied(f"bed {occupancy.bed_code} is taken by another patient")
    session.execute(delete(BedOccupancy).where(BedOccupancy.encounter_id == encounter.id))
    session.flush()
    for o in wanted:
        session.add(BedOccupancy(bed_code=o.bed_code, encounter_id=encounter.id, patient_id=encounter.patient_id,
                                 started_at=o.start, ended_at=o.end))
    try:
        session.flush()  # the partial unique index speaks here under a race
    except IntegrityError as exc:
        raise BedAlreadyOccupied("the bed was taken by another patient a moment ago") from exc


def _public(session: Session, encounter: Encounter, rows: list[Movement] | None = None,
            unit_names: dict[str, str] | None = None) -> EncounterPublic:
    name = None
    if encounter.unit_code:
        if unit_names is None:
            unit_names = {u.code: u.name for u in sites.unit_choices(session, encounter.establishment_code)}
        name = unit_names.get(encounter.unit_code)
    movements = rows if rows is not None else list(session.scalars(
        select(Movement).where(Movement.encounter_id == encounter.id).order_by(*MOVEMENT_ORDER)))
    return EncounterPublic(
        id=encounter.id, patient_id=encounter.patient_id, nda=encounter.nda,
        establishment_code=encounter.establishment_code, encounter_class=encounter.encounter_class,
        status=encounter.status, unit_code=encounter.unit_code, unit_name=name, bed_code=encounter.bed_code,
        started_at=encounter.started_at, ended_at=encounter.ended_at, expected_end_at=encounter.expected_end_at,
        movements=[MovementPublic(
            id=m.id, kind=m.kind, trigger=rules.trigger_event(rules.MovementKind(m.kind)), at=m.at,
            unit_code=m.unit_code, bed_code=m.bed_code, cancelled=m.cancelled, actor_label=m.actor_label,
        ) for m in movements],
    )


def _refused(exc: rules.StayRuleError) -> MovementRefused:
    return MovementRefused(str(exc), rule=type(exc).__name__)


# --- use cases ------------------------------------------------------------------------------------

def admit_patient(uow: UnitOfWork, actor: Actor, data: AdmissionCreate) -> EncounterPublic:
    """Open a stay with its arrival (A01, or A04 for emergency and outpatient venues)."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        access_patient(s, actor, data.patient_id, Purpose.ADMINISTRATION, now=now, port=CARE,
                       action="patient:stay:admit", target=data.unit_code)
        beds = _unit_beds(s, data.establishment_code, data.unit_code)
        encounter_id = uuid.uuid4()
        try:
            stay = rules.admit(str(encounter_id), data.establishment_code, rules.EncounterClass(data.encounter_class),
                               movement_id=str(uuid.uuid4()), at=data.at or now, unit_code=data.unit_code,
                               bed_code=data.bed_code, unit_beds=beds, now=now)
        except rules.StayRuleError as exc:
            raise _refused(exc) from exc
        return _open_stay(uow, actor, stay, patient_id=data.patient_id, bed_code=data.bed_code,
                          started_at=data.at or now, expected_end_at=data.expected_end_at)


def pre_admit_patient(uow: UnitOfWork, actor: Actor, data: PreAdmissionCreate) -> EncounterPublic:
    """Plan a stay (A05 "pre-admit", PAM FR §5.3.2): the NDA is given now and kept at arrival;
    the planned bed, if any, is a wish, not an occupancy. An emergency is never planned."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        access_patient(s, actor, data.patient_id, Purpose.ADMINISTRATION, now=now, port=CARE,
                       action="patient:stay:pre-admit", target=data.unit_code)
        beds = _unit_beds(s, data.establishment_code, data.unit_code)
        encounter_id = uuid.uuid4()
        try:
            stay = rules.pre_admit(str(encounter_id), data.establishment_code,
                                   rules.EncounterClass(data.encounter_class), movement_id=str(uuid.uuid4()),
                                   at=data.planned_at, unit_code=data.unit_code, bed_code=data.bed_code,
                                   unit_beds=beds, now=now)
        except rules.StayRuleError as exc:
            raise _refused(exc) from exc
        # The planned bed is a wish kept on the movement; the stay holds no bed until it arrives.
        return _open_stay(uow, actor, stay, patient_id=data.patient_id, bed_code=None, started_at=data.planned_at,
                          expected_end_at=data.expected_end_at)


def _new_nda(session: Session) -> str:
    return f"{next_number(session, 'nda', start=26000001):09d}"


def _open_stay(uow: UnitOfWork, actor: Actor, stay: rules.Stay, *, patient_id: uuid.UUID, bed_code: str | None,
               started_at: datetime, expected_end_at: datetime | None) -> EncounterPublic:
    """Write a stay the rules just opened (admission or pre-admission) with its NDA, its
    movements and their ADT messages, and commit."""
    s, now = uow.session, uow.clock.now()
    unit_code = stay.movements[0].unit_code
    encounter = Encounter(
        id=uuid.UUID(stay.id), patient_id=patient_id, nda=_new_nda(s), establishment_code=stay.establishment_code,
        encounter_class=str(stay.encounter_class), status=str(stay.status), unit_code=unit_code, bed_code=bed_code,
        started_at=started_at, ended_at=None, expected_end_at=expected_end_at, created_at=now,
    )
    s.add(encounter)
    s.flush()
    added = _save(s, actor, encounter, [], stay, now)
    _emit(uow, actor, encounter, added)
    result = _public(s, encounter)
    uow.commit()
    return result


def _emit(uow: UnitOfWork, actor: Actor, encounter: Encounter, added: list[Movement],
          cancelled: Sequence[Movement] = (), *, previous_unit: str | None = None) -> None:
    """Events after commit, and the ADT messages to send, in the movement's transaction (R3)."""
    for m in added:
        uow.emit(PatientMoved(encounter.id, encounter.patient_id, m.kind,
                              rules.trigger_event(rules.MovementKind(m.kind)), m.unit_code, m.bed_code, m.at))
    for m in cancelled:
        uow.emit(MovementCancelled(encounter.id, encounter.patient_id, m.kind,
                                   rules.cancel_trigger(rules.MovementKind(m.kind))))
    # A movement an interface sent us (HL7 listener, Role.INTERFACE) is not echoed back: the
    # sending system knows it already, and a receiver that is also a sender would loop.
    if ADT_TOPIC not in uow.channels or actor.has_any(Role.INTERFACE):
        return
    now = uow.clock.now()
    for m in cancelled:
        outbox.enqueue(uow.session, ADT_TOPIC, _adt_snapshot(uow.session, encounter, m, cancel=True), now=now,
                       ordering_key=f"{ADT_TOPIC}:{encounter.patient_id}")
    for m in added:
        snapshot = _adt_snapshot(uow.session, encounter, m, cancel=False, previous_unit=previous_unit)
        outbox.enqueue(uow.session, ADT_TOPIC, snapshot, now=now, ordering_key=f"{ADT_TOPIC}:{encounter.patient_id}")


def _adt_snapshot(session: Session, encounter: Encounter, movement: Movement, *, cancel: bool,
                  previous_unit: str | None = None) -> dict[str, Any]:
    """Everything an ADT message about `movement` needs, as JSON values: the outbox sends it
    later, after the patient may have moved again, so it is read now (record.hl7.build_adt)."""
    kind = rules.MovementKind(movement.kind)
    if cancel:
        # The location the cancellation leaves (A12: back to the previous bed), else the movement's.
        unit_code, bed_code = encounter.unit_code or movement.unit_code, encounter.bed_code
    else:
        unit_code, bed_code = movement.unit_code, movement.bed_code
    room = bed = ""
    if unit_code and bed_code:
        found = next((b for b in sites.list_beds(session, unit_code) if b.code == bed_code), None)
        room = found.room if found else ""
        bed = bed_code.removeprefix(f"{unit_code}-{room}-") if room else bed_code
    units = {u.code: u.name for u in sites.unit_choices(session, encounter.establishment_code)}
    establishment = sites.get_establishment(session, encounter.establishment_code)
    person = identity.summaries(session, [encounter.patient_id])[encounter.patient_id]
    return {
        "trigger": rules.cancel_trigger(kind) if cancel else rules.trigger_event(kind),
        "action": "CANCEL" if cancel else "INSERT",
        "original_trigger": rules.trigger_event(kind) if cancel else None,
        "movement_id": str(movement.id),
        "movement_at": movement.at.isoformat(),
        "movement_kind": str(kind),
        "encounter_class": encounter.encounter_class,
        "establishment_code": encounter.establishment_code,
        "finess": establishment.finess,
        "unit_code": unit_code or "",
        "unit_name": units.get(unit_code or "", ""),
        "previous_unit_code": previous_unit,
        "room": room,
        "bed": bed,
        "bed_code": bed_code,
        "nda": encounter.nda,
        # PatientPublic shows the INS only once the identity is qualified (RNIV, PAM FR §6.6.1).
        "patient": identity.adt_patient(session, person),
    }


def _move(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID, action: str, apply) -> EncounterPublic:  # type: ignore[no-untyped-def]
    with uow:
        s = uow.session
        now = uow.clock.now()
        encounter = s.get(Encounter, encounter_id)
        if encounter is None:
            raise EncounterNotFound("no such stay")
        access_patient(s, actor, encounter.patient_id, Purpose.ADMINISTRATION, now=now, port=CARE,
                       action=action, target=encounter.nda)
        encounter, rows, stay = _load(s, encounter_id)
        try:
            changed = apply(s, encounter, stay, now)
        except rules.StayRuleError as exc:
            raise _refused(exc) from exc
        before = rules.current_location(stay)
        active = {r.id for r in rows if not r.cancelled}
        added = _save(s, actor, encounter, rows, changed, now)
        cancelled = [r for r in rows if r.cancelled and r.id in active]
        _emit(uow, actor, encounter, added, cancelled, previous_unit=before[0] if before else None)
        result = _public(s, encounter)
        uow.commit()
        return result


def transfer_patient(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID, data: TransferCreate) -> EncounterPublic:
    """Move the patient to another unit or bed of the same establishment (A02)."""
    def apply(s: Session, encounter: Encounter, stay: rules.Stay, now: datetime) -> rules.Stay:
        beds = _unit_beds(s, encounter.establishment_code, data.unit_code)
        return rules.transfer(stay, movement_id=str(uuid.uuid4()), at=data.at or now, unit_code=data.unit_code,
                              bed_code=data.bed_code, unit_beds=beds, now=now)
    return _move(uow, actor, encounter_id, "patient:stay:transfer", apply)


def discharge_patient(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID,
                      at: datetime | None = None) -> EncounterPublic:
    """End the stay (A03); the bed is freed at that time."""
    def apply(s: Session, encounter: Encounter, stay: rules.Stay, now: datetime) -> rules.Stay:
        return rules.discharge(stay, movement_id=str(uuid.uuid4()), at=at or now, now=now)
    return _move(uow, actor, encounter_id, "patient:stay:discharge", apply)


def start_leave(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID, at: datetime | None = None) -> EncounterPublic:
    """The patient leaves for a while (A21); the bed waits for them."""
    def apply(s: Session, encounter: Encounter, stay: rules.Stay, now: datetime) -> rules.Stay:
        return rules.start_leave(stay, movement_id=str(uuid.uuid4()), at=at or now, now=now)
    return _move(uow, actor, encounter_id, "patient:stay:leave", apply)


def end_leave(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID, at: datetime | None = None) -> EncounterPublic:
    """The patient is back from leave (A22)."""
    def apply(s: Session, encounter: Encounter, stay: rules.Stay, now: datetime) -> rules.Stay:
        return rules.end_leave(stay, movement_id=str(uuid.uuid4()), at=at or now, now=now)
    return _move(uow, actor, encounter_id, "patient:stay:return", apply)


def cancel_last_movement(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID, kind: str) -> EncounterPublic:
    """Cancel the most recent movement (A11, A12, A13, A52, A53…): the state before it comes back."""
    def apply(s: Session, encounter: Encounter, stay: rules.Stay, now: datetime) -> rules.Stay:
        try:
            movement_kind = rules.MovementKind(kind)
        except ValueError as exc:
            raise rules.NothingToCancel(f"unknown movement kind {kind!r}") from exc
        return rules.cancel_last(stay, movement_kind, now=now)
    return _move(uow, actor, encounter_id, "patient:stay:cancel", apply)


def admit_planned_patient(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID,
                          data: ArrivalCreate) -> EncounterPublic:
    """The pre-admitted patient arrives (A01, or A04 for an outpatient venue, PAM FR §5.4.1):
    same stay and NDA, the class planned; into the planned unit and bed unless others are given."""
    def apply(s: Session, encounter: Encounter, stay: rules.Stay, now: datetime) -> rules.Stay:
        planned = stay.active_movements[0] if stay.active_movements else None
        unit_code = data.unit_code or (planned.unit_code if planned else encounter.unit_code or "")
        bed_code = data.bed_code if data.unit_code or data.bed_code else (planned.bed_code if planned else None)
        beds = _unit_beds(s, encounter.establishment_code, unit_code)
        return rules.admit_planned(stay, movement_id=str(uuid.uuid4()), at=data.at or now, unit_code=unit_code,
                                   bed_code=bed_code, unit_beds=beds, now=now)
    return _move(uow, actor, encounter_id, "patient:stay:admit", apply)


def cancel_pre_admission(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID) -> EncounterPublic:
    """The planned stay will not happen (A38): it is cancelled, its NDA never reused (§5.4.1).
    Refused once the patient arrived: cancel the admission (A11) first, which keeps the plan."""
    return cancel_last_movement(uow, actor, encounter_id, str(rules.MovementKind.PRE_ADMISSION))


def change_encounter_class(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID,
                           data: ClassChange) -> EncounterPublic:
    """Switch an open stay's class (bascule A06 towards heavier care, A07 towards lighter,
    PAM FR §5.3.5), e.g. an emergency visit becoming a full hospitalisation, optionally into
    another unit and bed of the establishment. Cancelled by the opposite message."""
    def apply(s: Session, encounter: Encounter, stay: rules.Stay, now: datetime) -> rules.Stay:
        beds = _unit_beds(s, encounter.establishment_code, data.unit_code) if data.unit_code else []
        return rules.change_class(stay, rules.EncounterClass(data.encounter_class), movement_id=str(uuid.uuid4()),
                                  at=data.at or now, unit_code=data.unit_code, bed_code=data.bed_code,
                                  unit_beds=beds, now=now)
    return _move(uow, actor, encounter_id, "patient:stay:class", apply)


#: The clinical rows recorded within a stay follow it when it moves to another patient.
_STAY_CHART = (Condition, Observation, ClinicalNote, ClinicalDocument)


def move_stay(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID, to_patient_id: uuid.UUID,
              reason: str) -> EncounterPublic:
    """Re-attach a stay opened on the wrong patient to the right one (A44 "move account
    information", PAM FR §5.1.2: IHE France prefers it to changing an account number). Its
    movements, beds and the chart entries recorded within it follow; allergies, which belong to
    the person, stay. Admission clerks and identity vigilance only; both patients are opened
    through the door, the move is audited on both and goes out as an A44."""
    if not actor.has_any(Role.ADMISSION_CLERK, Role.IDENTITY_VIGILANCE):
        raise Forbidden("moving a stay to another patient is for admissions and identity vigilance")
    if len(reason.strip()) < 5:
        raise StayMoveRefused("state why the stay belongs to another patient", rule="ReasonRequired")
    with uow:
        s = uow.session
        now = uow.clock.now()
        encounter = s.get(Encounter, encounter_id)
        if encounter is None:
            raise EncounterNotFound("no such stay")
        from_id = encounter.patient_id
        for patient_id in (from_id, to_patient_id):
            access_patient(s, actor, patient_id, Purpose.IDENTITY, now=now, port=CARE,
                           action="patient:stay:move", target=encounter.nda)
        if to_patient_id == from_id:
            raise StayMoveRefused("the stay already belongs to this patient", rule="SamePatient")
        if identity.merged_into(s, to_patient_id) is not None:
            raise StayMoveRefused("this record was merged: move the stay to the record it was merged into",
                                  rule="MergedRecord")
        encounter.patient_id = to_patient_id
        for table in (Movement, BedOccupancy):
            s.execute(update(table).where(table.encounter_id == encounter_id).values(patient_id=to_patient_id))
        for chart_table in _STAY_CHART:
            s.execute(update(chart_table).where(chart_table.encounter_id == encounter_id)  # type: ignore[attr-defined]
                      .values(patient_id=to_patient_id))
        s.flush()
        for patient_id in (from_id, to_patient_id):
            audit.record(s, actor, "patient:stay:moved", at=now, patient_id=patient_id, target=encounter.nda,
                         reason=reason.strip(), details={"from": str(from_id), "to": str(to_patient_id)})
        uow.emit(StayMoved(encounter_id, from_id, to_patient_id))
        if ADT_TOPIC in uow.channels and not actor.has_any(Role.INTERFACE):
            people = identity.summaries(s, [from_id, to_patient_id])
            outbox.enqueue(s, ADT_TOPIC, {
                "message": "account", "trigger": "A44", "at": now.isoformat(), "nda": encounter.nda,
                "patient": identity.adt_patient(s, people[to_patient_id]), "prior": {"ipp": people[from_id].ipp},
            }, now=now, ordering_key=f"{ADT_TOPIC}:{to_patient_id}")
        result = _public(s, encounter)
        uow.commit()
        return result


def stays_of(session: Session, patient_id: uuid.UUID) -> list[EncounterPublic]:
    """Every stay of a patient across the group, newest first (caller checked access)."""
    encounters = list(session.scalars(select(Encounter).where(Encounter.patient_id == patient_id)
                                      .order_by(Encounter.started_at.desc())))
    movements: dict[uuid.UUID, list[Movement]] = {e.id: [] for e in encounters}
    for m in session.scalars(select(Movement).where(Movement.patient_id == patient_id)
                             .order_by(*MOVEMENT_ORDER)):
        movements.setdefault(m.encounter_id, []).append(m)
    names: dict[str, str] = {}
    for code in {e.establishment_code for e in encounters}:
        names.update({u.code: u.name for u in sites.unit_choices(session, code)})
    return [_public(session, e, movements.get(e.id, []), names) for e in encounters]


#: An NDA as naho numbers stays (9 digits); an IPP has 8.
NDA_PATTERN = re.compile(r"^\d{9}$")


def stay_by_nda(session: Session, nda: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The stay behind an NDA and its patient, (stay id, patient id), or None; the caller then
    goes through the door for that patient."""
    row = session.execute(select(Encounter.id, Encounter.patient_id).where(Encounter.nda == nda.strip())).first()
    return (row[0], row[1]) if row else None


def get_encounter(session: Session, encounter_id: uuid.UUID) -> EncounterPublic:
    encounter = session.get(Encounter, encounter_id)
    if encounter is None:
        raise EncounterNotFound("no such stay")
    return _public(session, encounter)


def current_stays(session: Session, patient_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, EncounterPublic]:
    """The stay in progress (or on leave) of each of these patients that has one, without its
    movements: where they are now (the pharmacy's review queue, ward counts)."""
    if not patient_ids:
        return {}
    encounters = list(session.scalars(select(Encounter).where(
        Encounter.patient_id.in_(set(patient_ids)),
        Encounter.status.in_([str(rules.EncounterStatus.IN_PROGRESS), str(rules.EncounterStatus.ON_LEAVE)]))))
    names: dict[str, str] = {}
    for code in {e.establishment_code for e in encounters}:
        names.update({u.code: u.name for u in sites.unit_choices(session, code)})
    return {e.patient_id: _public(session, e, [], names) for e in encounters}


def bed_board(session: Session, unit_code: str, now: datetime) -> BedBoard:
    """Who is in which bed of a unit now, expected discharges, free beds; patients without bed;
    expected arrivals (stays pre-admitted in the unit, from a day overdue to a week ahead)."""
    unit = sites.get_unit(session, unit_code)
    beds = sites.list_beds(session, unit_code)
    held = {o.bed_code: o for o in session.scalars(select(BedOccupancy).where(
        BedOccupancy.bed_code.in_([b.code for b in beds]), BedOccupancy.started_at <= now,
        or_(BedOccupancy.ended_at.is_(None), BedOccupancy.ended_at > now)))}
    stays = {e.id: e for e in session.scalars(select(Encounter).where(
        Encounter.unit_code == unit_code, Encounter.status.in_([str(rules.EncounterStatus.IN_PROGRESS),
                                                                 str(rules.EncounterStatus.ON_LEAVE)])))}
    stays.update({e.id: e for e in session.scalars(select(Encounter).where(
        Encounter.id.in_([o.encounter_id for o in held.values()])))})
    expected = list(session.scalars(select(Encounter).where(
        Encounter.unit_code == unit_code, Encounter.status == str(rules.EncounterStatus.PLANNED),
        Encounter.started_at >= now - EXPECTED_OVERDUE, Encounter.started_at <= now + EXPECTED_AHEAD)
        .order_by(Encounter.started_at)))
    people = identity.summaries(session, [e.patient_id for e in (*stays.values(), *expected)])
    # The bed a pre-admission wished for (not held: it is the A05 movement's).
    planned_beds = {m.encounter_id: m.bed_code for m in session.scalars(select(Movement).where(
        Movement.encounter_id.in_([e.id for e in expected]),
        Movement.kind == str(rules.MovementKind.PRE_ADMISSION), Movement.cancelled.is_(False)))}

    def line(bed_code: str, room: str, label: str, encounter: Encounter | None, since: datetime | None) -> BedLine:
        if encounter is None:
            return BedLine(bed_code=bed_code, room=room, label=label)
        who = people[encounter.patient_id]
        return BedLine(bed_code=bed_code, room=room, label=label, patient_id=encounter.patient_id,
                       patient_name=who.display_name, ipp=who.ipp, birth_date=who.birth_date,
                       encounter_id=encounter.id, nda=encounter.nda, since=since,
                       expected_end_at=encounter.expected_end_at,
                       on_leave=encounter.status == str(rules.EncounterStatus.ON_LEAVE))

    lines = []
    for b in beds:
        o = held.get(b.code)
        holder = stays.get(o.encounter_id) if o else None
        lines.append(line(b.code, b.room, b.label, holder, o.started_at if o else None))
    in_beds = {o.encounter_id for o in held.values()}
    without = [line("", "", "", e, e.started_at) for e in stays.values() if e.id not in in_beds]
    return BedBoard(unit_code=unit.code, unit_name=unit.name, establishment_code=unit.establishment_code,
                    beds=lines, without_bed=without,
                    expected=[line(planned_beds.get(e.id) or "", "", planned_beds.get(e.id) or "", e, e.started_at)
                              for e in expected])


class NotYourUnit(Forbidden):
    """The bed board shows names: only the unit's staff, admissions and identity vigilance."""


def view_bed_board(uow: UnitOfWork, actor: Actor, unit_code: str) -> BedBoard:
    """The bed board as staff open it: unit staff, admission clerks and identity vigilance only;
    the list of patients shown is audited."""
    with uow:
        s = uow.session
        mine = {unit for _est, unit in staff.workplaces_of(s, actor.account_id)}
        if unit_code not in mine and not actor.has_any(Role.ADMISSION_CLERK, Role.IDENTITY_VIGILANCE):
            raise NotYourUnit("the bed board is open to the unit's staff")
        board = bed_board(s, unit_code, uow.clock.now())
        audit.record(s, actor, "patient:bedboard:view", at=uow.clock.now(), target=unit_code,
                     details={"patients": [str(b.patient_id) for b in board.beds + board.without_bed + board.expected
                                           if b.patient_id]})
        uow.commit()
        return board


def import_stay(session: Session, patient_id: uuid.UUID, *, establishment_code: str, encounter_class: str,
                unit_code: str, bed_code: str | None, admitted_at: datetime, now: datetime, actor_label: str,
                discharged_at: datetime | None = None, expected_end_at: datetime | None = None,
                unit_beds: list[str] | None = None, nda_number: int | None = None) -> uuid.UUID:
    """Load a stay as it stands in a source system (synthetic data, migration): the same rules
    (PAM FR movements, bed occupancy without overlap) but no access check; callers audit the batch."""
    encounter_id = uuid.uuid4()
    beds = unit_beds if unit_beds is not None else _unit_beds(session, establishment_code, unit_code)
    stay = rules.admit(str(encounter_id), establishment_code, rules.EncounterClass(encounter_class),
                       movement_id=str(uuid.uuid4()), at=admitted_at, unit_code=unit_code, bed_code=bed_code,
                       unit_beds=beds, now=now)
    if discharged_at is not None:
        stay = rules.discharge(stay, movement_id=str(uuid.uuid4()), at=discharged_at, now=now)
    encounter = Encounter(
        id=encounter_id, patient_id=patient_id,
        nda=f"{nda_number:09d}" if nda_number else _new_nda(session),
        establishment_code=establishment_code, encounter_class=encounter_class, status=str(stay.status),
        unit_code=unit_code, bed_code=bed_code, started_at=admitted_at, ended_at=None,
        expected_end_at=expected_end_at, created_at=now,
    )
    session.add(encounter)
    session.flush()
    system = Actor(uuid.UUID(int=0), "import", actor_label, frozenset(), via="system")
    _save(session, system, encounter, [], stay, now)
    return encounter_id


class RecordDataMover:
    """Stays (with their movements and beds) and the chart follow a merged patient, and come back
    on undo. Moved rows are named "<table>:<id>"."""

    name = "record"
    #: Chart tables moved row by row; a stay moves with its movements and bed occupancies.
    CHART = (Allergy, Condition, Observation, ClinicalNote, ClinicalDocument)

    def move(self, session: Session, from_id: uuid.UUID, to_id: uuid.UUID) -> list[str]:
        moved = []
        for table in (Encounter, *self.CHART):
            ids = list(session.scalars(select(table.id).where(table.patient_id == from_id)))  # type: ignore[attr-defined]
            moved += [f"{table.__tablename__}:{i}" for i in ids]
        self._point(session, moved, to_id)
        return moved

    def move_back(self, session: Session, row_ids: list[str], to_id: uuid.UUID) -> None:
        self._point(session, row_ids, to_id)

    def _point(self, session: Session, names: list[str], to_id: uuid.UUID) -> None:
        by_table: dict[str, list[uuid.UUID]] = {}
        for name in names:
            table, _, row_id = name.partition(":")
            by_table.setdefault(table, []).append(uuid.UUID(row_id))
        encounters = by_table.pop(Encounter.__tablename__, [])
        if encounters:
            session.execute(update(Encounter).where(Encounter.id.in_(encounters)).values(patient_id=to_id))
            for table in (Movement, BedOccupancy):
                session.execute(update(table).where(table.encounter_id.in_(encounters)).values(patient_id=to_id))
        for table in self.CHART:
            ids = by_table.get(table.__tablename__, [])
            if ids:
                session.execute(update(table).where(table.id.in_(ids)).values(patient_id=to_id))


MOVER = RecordDataMover()
