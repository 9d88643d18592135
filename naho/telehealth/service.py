"""Use cases of teleconsultation: entering a video appointment's room, joining its signalling
websocket, admitting the patient, confirming identity and consent, ending with the note.

Only the two people of the appointment enter: the patient (their own portal account, or a
parent acting for a child, through the portal's door) and the schedule's practitioner. The
practitioner is in the patient's care for this appointment: their door says so, and the access
is audited as any other. Other staff, even of the care team, are refused: a teleconsultation
is a private conversation. The consultation's note is filed in the record's notes, with its
duration, in the same transaction as the session's end.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.platform import audit, i18n
from naho.platform.access import CareRelationshipPort, PatientNotFound, Purpose, access_patient
from naho.platform.errors import DomainError, NotFound
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.portal.service import PortalDoor, short_name
from naho.record import chart
from naho.record.schemas import NoteCreate
from naho.scheduling import service as scheduling
from naho.scheduling.rules import ConsultationType
from naho.telehealth import rules
from naho.telehealth.models import TeleconsultationSession

#: A live appointment's status (scheduling.models.LIVE; its tables are its own).
_LIVE = "booked"


class RoomNotFound(NotFound):
    """No video appointment of that id for this person: the same answer for absent and forbidden."""


class RoomRefused(DomainError):
    """A teleconsultation rule refused the request; `rule` names it (RoomNotYetOpen, ...)."""

    status = 409
    title = "Teleconsultation rule"


def _refused(exc: rules.TelehealthRuleError) -> RoomRefused:
    return RoomRefused(str(exc), rule=type(exc).__name__)


def room_key(secret_key: str) -> bytes:
    """The key of room tokens, derived from the application's secret (never the secret itself)."""
    return hmac.new(secret_key.encode(), b"naho telehealth room tokens", hashlib.sha256).digest()


class PractitionerDoor:
    """The record's care-relationship port, plus: the practitioner of a video appointment is in
    the patient's care for it (used only by teleconsultation's use cases, once the appointment
    and its time were checked)."""

    def __init__(self, care: CareRelationshipPort, practitioner_account_id: uuid.UUID) -> None:
        self.care = care
        self.practitioner_account_id = practitioner_account_id

    def patient_exists(self, session: Session, patient_id: uuid.UUID) -> bool:
        return self.care.patient_exists(session, patient_id)

    def in_care_team(self, session: Session, actor: Actor, patient_id: uuid.UUID, now: datetime) -> bool:
        return actor.account_id == self.practitioner_account_id or self.care.in_care_team(
            session, actor, patient_id, now)

    def patient_account(self, session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
        return self.care.patient_account(session, patient_id)


@dataclass(frozen=True)
class RoomState:
    admitted: bool = False
    identity_confirmed: bool = False
    consent: bool = False
    ended: bool = False
    duration_seconds: int | None = None


@dataclass(frozen=True)
class Room:
    """A participant's view of the room: who they are in it, the appointment, its window."""

    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    role: rules.Role
    starts_at: datetime
    ends_at: datetime
    window: rules.Window
    patient_name: str
    schedule_name: str
    state: RoomState
    token: str = ""


def _state(row: TeleconsultationSession | None) -> RoomState:
    if row is None:
        return RoomState()
    return RoomState(row.admitted_at is not None, row.identity_confirmed_at is not None, row.consent_at is not None,
                     row.ended_at is not None, row.duration_seconds)


def _participant(session: Session, actor: Actor, appointment_id: uuid.UUID, care: CareRelationshipPort,
                 now: datetime, action: str) -> tuple[scheduling.AppointmentView, rules.Role]:
    """The appointment and the actor's role in its room, through the patient's door (audited)."""
    try:
        view = scheduling.find_appointment(session, appointment_id)
    except NotFound as exc:
        raise RoomNotFound("no such teleconsultation") from exc
    if view.consultation_type != ConsultationType.TELECONSULTATION or view.status != _LIVE:
        raise RoomNotFound("no such teleconsultation")
    practitioner = view.schedule.practitioner_account_id
    port: CareRelationshipPort
    if Role.PATIENT in actor.roles:
        role, purpose, port = rules.Role.PATIENT, Purpose.SELF, PortalDoor(care, actor.account_id)
    elif practitioner is not None and actor.account_id == practitioner and Role.PHYSICIAN in actor.roles:
        role, purpose, port = rules.Role.PRACTITIONER, Purpose.CARE, PractitionerDoor(care, practitioner)
    else:
        audit.record(session, actor, audit.AuditTag.ACCESS_DENIED, at=now, patient_id=view.patient_id,
                     target=str(appointment_id), details={"action": action})
        session.commit()  # the refusal stays in the trail
        raise RoomNotFound("no such teleconsultation")
    try:
        access_patient(session, actor, view.patient_id, purpose, now=now, port=port, action=action,
                       target=str(appointment_id))
    except PatientNotFound as exc:
        raise RoomNotFound("no such teleconsultation") from exc
    return view, role


def _session_row(session: Session, view: scheduling.AppointmentView, now: datetime) -> TeleconsultationSession:
    row = session.scalars(select(TeleconsultationSession).where(
        TeleconsultationSession.appointment_id == view.id)).first()
    if row is not None:
        return row
    assert view.schedule.practitioner_account_id is not None
    row = TeleconsultationSession(appointment_id=view.id, patient_id=view.patient_id, opened_at=now,
                                  practitioner_account_id=view.schedule.practitioner_account_id)
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # both arrived at once: the other one created it
        return session.scalars(select(TeleconsultationSession).where(
            TeleconsultationSession.appointment_id == view.id)).one()
    return row


def _room(session: Session, view: scheduling.AppointmentView, role: rules.Role, window: rules.Window,
          row: TeleconsultationSession, token: str = "") -> Room:
    person = identity.summaries(session, [view.patient_id]).get(view.patient_id)
    return Room(view.id, view.patient_id, role, view.starts_at, view.ends_at, window,
                short_name(person) if person else "?", view.schedule.name, _state(row), token)


def _enter(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID, care: CareRelationshipPort, key: bytes,
           action: str, token: str | None) -> Room:
    with uow:
        s = uow.session
        now = uow.clock.now()
        if token is not None:
            try:
                claims = rules.read_room_token(key, token, appointment_id=appointment_id,
                                               account_id=actor.account_id, now=now)
            except rules.TokenRefused as exc:
                audit.record(s, actor, "patient:teleconsultation:token-refused", at=now, target=str(appointment_id),
                             details={"rule": type(exc).__name__})
                uow.commit()
                raise _refused(exc) from exc
        view, role = _participant(s, actor, appointment_id, care, now, action)
        if token is not None and claims.role != role:
            raise _refused(rules.WrongParticipant("this token is for another role"))
        try:
            window = rules.check_room_open(view.starts_at, view.ends_at, now)
        except rules.TelehealthRuleError as exc:
            s.rollback()  # not an access: the room is shut
            audit.record(s, actor, "patient:teleconsultation:outside-window", at=now, patient_id=view.patient_id,
                         target=str(appointment_id), details={"rule": type(exc).__name__})
            uow.commit()
            raise _refused(exc) from exc
        row = _session_row(s, view, now)
        if role is rules.Role.PATIENT and token is not None and row.patient_arrived_at is None:
            row.patient_arrived_at = now
        issued = token or rules.sign_room_token(key, rules.RoomClaims(appointment_id, actor.account_id, role,
                                                                      window.closes_at))
        room = _room(s, view, role, window, row, issued)
        uow.commit()
        return room


def enter_room(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID, care: CareRelationshipPort,
               key: bytes) -> Room:
    """Open the room's page for one of its two participants, within its window; issues the token
    of its signalling websocket (bound to this appointment, this person, until the room closes)."""
    return _enter(uow, actor, appointment_id, care, key, "patient:teleconsultation:enter", None)


def join_room(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID, token: str, care: CareRelationshipPort,
              key: bytes) -> Room:
    """Check a websocket's room token and its bearer (the signed-in person), then the same as
    entering: the appointment may have been cancelled since the page was opened."""
    return _enter(uow, actor, appointment_id, care, key, "patient:teleconsultation:join", token)


def _practitioner_row(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID, care: CareRelationshipPort,
                      action: str) -> tuple[TeleconsultationSession, datetime]:
    s = uow.session
    now = uow.clock.now()
    view, role = _participant(s, actor, appointment_id, care, now, action)
    if role is not rules.Role.PRACTITIONER:
        raise RoomNotFound("no such teleconsultation")
    row = _session_row(s, view, now)
    if row.ended_at is not None:
        raise RoomRefused("this teleconsultation is over", rule="ConsultationEnded")
    return row, now


def admit(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID, care: CareRelationshipPort) -> RoomState:
    """The practitioner lets the waiting patient in; the call starts then (its duration too)."""
    with uow:
        row, now = _practitioner_row(uow, actor, appointment_id, care, "patient:teleconsultation:admit")
        if row.admitted_at is None:
            row.admitted_at = now
        state = _state(row)
        uow.commit()
        return state


def _after_admission(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID, care: CareRelationshipPort,
                     action: str, column: str) -> RoomState:
    """Record, once, a step the practitioner takes with the admitted patient in front of them."""
    with uow:
        row, now = _practitioner_row(uow, actor, appointment_id, care, action)
        if row.admitted_at is None:
            raise _refused(rules.NotAdmitted("admit the patient first"))
        if getattr(row, column) is None:
            setattr(row, column, now)
        state = _state(row)
        uow.commit()
        return state


def confirm_identity(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID,
                     care: CareRelationshipPort) -> RoomState:
    """The practitioner checked, on video, that the patient is the appointment's (identity vigilance)."""
    return _after_admission(uow, actor, appointment_id, care, "patient:teleconsultation:identity-confirm",
                            "identity_confirmed_at")


def record_consent(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID,
                   care: CareRelationshipPort) -> RoomState:
    """The patient consents to being cared for by video (asked and answered at the start)."""
    return _after_admission(uow, actor, appointment_id, care, "patient:teleconsultation:consent", "consent_at")


def end_consultation(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID, note: str,
                     care: CareRelationshipPort) -> RoomState:
    """End the consultation: its note, headed with the date and duration, goes to the patient's
    record (an outpatient note: no stay), and the session keeps its duration; one transaction."""
    with uow:
        s = uow.session
        row, now = _practitioner_row(uow, actor, appointment_id, care, "patient:teleconsultation:end")
        try:
            rules.check_may_end(admitted=row.admitted_at is not None,
                                identity_confirmed=row.identity_confirmed_at is not None,
                                consent=row.consent_at is not None, note=note)
        except rules.TelehealthRuleError as exc:
            raise _refused(exc) from exc
        assert row.admitted_at is not None
        seconds = rules.duration_seconds(row.admitted_at, now)
        header = i18n._("Teleconsultation of {date}, duration {minutes} min").format(
            date=i18n.local_datetime(row.admitted_at), minutes=rules.duration_minutes(seconds))
        text = f"{header}\n\n{note.strip()}"[:20_000]
        row.note_id = chart.file_note(s, row.patient_id, None, NoteCreate(kind="medical", text=text),
                                      author=actor.label, now=now)
        row.ended_at, row.duration_seconds, row.ended_by = now, seconds, actor.label
        audit.record(s, actor, "patient:note:create", at=now, patient_id=row.patient_id, target=str(row.note_id),
                     details={"teleconsultation": str(appointment_id), "duration_seconds": seconds})
        state = _state(row)
        uow.commit()
        return state


def record_shared_document(uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID, role: rules.Role,
                           name: str, size: int) -> None:
    """A document went peer to peer over the call's data channel: the trail says who sent what
    (its name and size; the bytes never reach the server)."""
    with uow:
        s = uow.session
        row = s.scalars(select(TeleconsultationSession).where(
            TeleconsultationSession.appointment_id == appointment_id)).first()
        if row is None:
            raise RoomNotFound("no such teleconsultation")
        audit.record(s, actor, "patient:teleconsultation:document-share", at=uow.clock.now(),
                     patient_id=row.patient_id, target=str(appointment_id),
                     details={"role": str(role), "name": name[:200], "size": int(size)})
        uow.commit()


def session_of(uow: UnitOfWork, appointment_id: uuid.UUID) -> RoomState:
    """The room's state as recorded (for a participant already let in)."""
    with uow:
        return _state(uow.session.scalars(select(TeleconsultationSession).where(
            TeleconsultationSession.appointment_id == appointment_id)).first())
