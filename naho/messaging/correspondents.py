"""The patient's correspondents: the GP (médecin traitant) and other community professionals
from the directory, attached and ended through the door, audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.messaging import directory
from naho.messaging.models import Correspondent, Professional
from naho.messaging.rules import CorrespondentRole
from naho.platform.access import CareRelationshipPort, Purpose, access_patient
from naho.platform.errors import Conflict, DomainError, NotFound
from naho.platform.security.actor import Actor
from naho.platform.uow import UnitOfWork


class UnknownCorrespondentRole(DomainError):
    """A correspondent is the GP or another professional."""


class AlreadyCorrespondent(Conflict):
    """This professional is already attached to the patient."""


class CorrespondentNotFound(NotFound):
    """No such current correspondent of this patient."""


@dataclass(frozen=True)
class CorrespondentPublic:
    id: uuid.UUID
    role: str
    since: datetime
    added_by: str
    professional: directory.ProfessionalPublic


def current(session: Session, patient_id: uuid.UUID) -> list[CorrespondentPublic]:
    """The patient's current correspondents, the GP first (the caller went through the door)."""
    rows = session.execute(select(Correspondent, Professional).join(
        Professional, Professional.id == Correspondent.professional_id).where(
        Correspondent.patient_id == patient_id, Correspondent.ended_at.is_(None))
        .order_by(Correspondent.role, Correspondent.since)).all()
    return [CorrespondentPublic(c.id, c.role, c.since, c.added_by, directory.to_public(p)) for c, p in rows]


def attach(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, professional_id: uuid.UUID, role: str,
           port: CareRelationshipPort) -> uuid.UUID:
    """Attach a professional of the directory; a new GP replaces the previous one (ended)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port,
                       action="patient:correspondent:create", target=str(professional_id))
        try:
            kind = CorrespondentRole(role)
        except ValueError as exc:
            raise UnknownCorrespondentRole("a correspondent is the GP or another professional",
                                           rule="UnknownCorrespondentRole") from exc
        directory.get_professional(s, professional_id)
        active = list(s.scalars(select(Correspondent).where(Correspondent.patient_id == patient_id,
                                                            Correspondent.ended_at.is_(None))))
        same = next((c for c in active if c.professional_id == professional_id), None)
        if same is not None and (same.role == kind or kind is CorrespondentRole.OTHER):
            raise AlreadyCorrespondent("this professional is already a correspondent of the patient",
                                       rule="AlreadyCorrespondent")
        for row in active:
            if row is same or (kind is CorrespondentRole.GP and row.role == CorrespondentRole.GP):
                row.ended_at, row.ended_by = now, actor.label
        row = Correspondent(id=uuid.uuid4(), patient_id=patient_id, professional_id=professional_id,
                            role=str(kind), since=now, added_by=actor.label)
        s.add(row)
        uow.commit()
        return row.id


def end(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, correspondent_id: uuid.UUID,
        port: CareRelationshipPort) -> None:
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port,
                       action="patient:correspondent:end", target=str(correspondent_id))
        row = s.get(Correspondent, correspondent_id)
        if row is None or row.patient_id != patient_id or row.ended_at is not None:
            raise CorrespondentNotFound("no such correspondent of this patient", rule="CorrespondentNotFound")
        row.ended_at, row.ended_by = now, actor.label
        uow.commit()
