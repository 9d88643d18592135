"""The patient's objections to sharing and reuse: the one consent registry every rule reads.

French law lets the patient object, per purpose, and the latest word counts:
- sharing with the professionals who follow them outside the hospital (GP, specialists), by
  secure messaging (Code de la santé publique, L.1110-4 and L.1110-12);
- sharing between professionals of the group's establishments who are not in their care team
  (L.1110-4 III);
- the reuse of their data for research ("opposition à la recherche", loi Informatique et
  libertés art. 74 and RGPD art. 21; L.1122-1-1 for research involving the person).
Each word is a row, never updated: who said it, when, how (the patient or a parent on the
portal, or staff on the patient's word, with the reason). Staff record it through the door
with the care purpose; the patient through the portal's door with the purpose SELF. Everything
that shares or reuses asks `sharing_allowed`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.messaging.models import SharingObjection
from naho.platform.access import CareRelationshipPort, Purpose, access_patient
from naho.platform.errors import DomainError
from naho.platform.security.actor import Actor
from naho.platform.uow import UnitOfWork
from naho.record import service as record
from naho.staff import service as staff

#: Sharing a document of the record with community professionals (GP, specialists...).
COMMUNITY_PROFESSIONALS = "community_professionals"
#: Sharing between professionals of the group's establishments outside the care team.
GROUP_ESTABLISHMENTS = "group_establishments"
#: Reusing the record's data for research.
RESEARCH = "research"
#: In the order pages show them.
ORDER = (COMMUNITY_PROFESSIONALS, GROUP_ESTABLISHMENTS, RESEARCH)
PURPOSES = frozenset(ORDER)

#: How a word was given.
STAFF = "staff"  # a professional recorded it on the patient's word
PATIENT = "patient"  # the patient on the portal
PARENT = "parent"  # a parent on the portal, for a minor child (active proxy)


class UnknownConsentPurpose(DomainError):
    """The purpose is not one of the registry's."""

    status = 422
    title = "Unknown consent purpose"


@dataclass(frozen=True)
class ConsentEntry:
    """One word of the patient, as recorded."""

    purpose: str
    objects: bool
    source: str
    recorded_at: datetime
    recorded_by: str
    reason: str | None


@dataclass(frozen=True)
class ConsentState:
    """Where a purpose stands: allowed unless the latest word objects; its words, newest first."""

    purpose: str
    allowed: bool
    history: tuple[ConsentEntry, ...]

    @property
    def latest(self) -> ConsentEntry | None:
        return self.history[0] if self.history else None


def _check(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise UnknownConsentPurpose(f"unknown consent purpose {purpose!r}", field="purpose")


def _latest(session: Session, patient_id: uuid.UUID, purpose: str) -> SharingObjection | None:
    return session.scalars(select(SharingObjection).where(
        SharingObjection.patient_id == patient_id, SharingObjection.purpose == purpose)
        .order_by(SharingObjection.recorded_at.desc()).limit(1)).first()


def sharing_allowed(session: Session, patient_id: uuid.UUID, purpose: str) -> bool:
    """True unless the patient's latest word for this purpose is an objection."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown sharing purpose {purpose!r}")
    latest = _latest(session, patient_id, purpose)
    return latest is None or not latest.objects


def objection_of(session: Session, patient_id: uuid.UUID, purpose: str) -> tuple[datetime, str, str | None] | None:
    """When, by whom and why the standing objection was recorded, or None."""
    latest = _latest(session, patient_id, purpose)
    if latest is None or not latest.objects:
        return None
    return latest.recorded_at, latest.recorded_by, latest.reason


def states(session: Session, patient_id: uuid.UUID) -> list[ConsentState]:
    """Every purpose with its words, for a use case that already went through the door."""
    rows = session.scalars(select(SharingObjection).where(SharingObjection.patient_id == patient_id)
                           .order_by(SharingObjection.recorded_at.desc())).all()
    result = []
    for purpose in ORDER:
        history = tuple(ConsentEntry(r.purpose, r.objects, r.source, r.recorded_at, r.recorded_by, r.reason)
                        for r in rows if r.purpose == purpose)
        result.append(ConsentState(purpose, not (history and history[0].objects), history))
    return result


def view(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort,
         purpose: Purpose = Purpose.CARE) -> list[ConsentState]:
    """The consents and their history, through the door (audited): staff with the care purpose,
    the patient or a parent with SELF and the portal's door."""
    with uow:
        access_patient(uow.session, actor, patient_id, purpose, now=uow.clock.now(), port=port,
                       action="patient:consent:view")
        result = states(uow.session, patient_id)
        uow.commit()
        return result


def _record(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, purpose: str, door_purpose: Purpose, *,
            objects: bool, reason: str | None, source: str, port: CareRelationshipPort) -> None:
    _check(purpose)
    with uow:
        now = uow.clock.now()
        access_patient(uow.session, actor, patient_id, door_purpose, now=now, port=port,
                       action="patient:consent:update", target=purpose)
        # The latest word is the one with the latest time: two words in the same instant (a
        # double submission, a test's fixed clock) keep the order they came in, a microsecond apart.
        latest = _latest(uow.session, patient_id, purpose)
        at = max(now, latest.recorded_at + timedelta(microseconds=1)) if latest else now
        uow.session.add(SharingObjection(patient_id=patient_id, purpose=purpose, objects=objects,
                                         reason=(reason or "").strip()[:1000] or None, source=source,
                                         recorded_at=at, recorded_by=actor.label))
        uow.commit()


def record_objection(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, *, objects: bool,
                     reason: str | None, port: CareRelationshipPort,
                     purpose: str = COMMUNITY_PROFESSIONALS) -> None:
    """Record the patient's objection (or its withdrawal), said to a professional of the team."""
    _record(uow, actor, patient_id, purpose, Purpose.CARE, objects=objects, reason=reason, source=STAFF,
            port=port)


def record_patient_choice(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, purpose: str, *,
                          objects: bool, port: CareRelationshipPort, by_parent: bool = False) -> None:
    """The patient's own word from the portal, or a parent's for a minor child: through the
    portal's door (`port`, purpose SELF), which lets in the patient's account and active proxies
    only; anyone else gets the door's refusal, audited."""
    _record(uow, actor, patient_id, purpose, Purpose.SELF, objects=objects, reason=None,
            source=PARENT if by_parent else PATIENT, port=port)


class ConsentAwareCare:
    """The care port of the door (record's), with the patient's objection to sharing between the
    group's establishments read from this registry: app.py wires this one in. The care team is
    unaffected; outside it, a professional working in none of the establishments that treated
    the patient is refused (platform.access.SharingObjectionPort)."""

    def __init__(self, care: CareRelationshipPort) -> None:
        self.care = care

    def patient_exists(self, session: Session, patient_id: uuid.UUID) -> bool:
        return self.care.patient_exists(session, patient_id)

    def in_care_team(self, session: Session, actor: Actor, patient_id: uuid.UUID, now: datetime) -> bool:
        return self.care.in_care_team(session, actor, patient_id, now)

    def patient_account(self, session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
        return self.care.patient_account(session, patient_id)

    def sharing_refused(self, session: Session, actor: Actor, patient_id: uuid.UUID) -> bool:
        if sharing_allowed(session, patient_id, GROUP_ESTABLISHMENTS):
            return False
        theirs = {establishment for establishment, _unit in staff.workplaces_of(session, actor.account_id)}
        return not theirs & record.establishments_of(session, patient_id)
