"""The one door to patient data (STYLE.md R7, DESIGN.md "Access is by care relationship").

`access_patient(session, actor, patient_id, purpose, now=...)` decides, audits and answers the
same `PatientNotFound` for "absent" and "forbidden". Staff get in when they belong to the care
team of a current or recent stay (asked to the care-relationship port that `record`
implements and `app.py` wires in), by an explicit role for a non-clinical purpose, or by
break-the-glass: a stated reason, limited in time, flagged for review by the medical
information department. Patients get their own record only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy import Boolean, Index, String, Uuid, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from naho.platform import audit
from naho.platform.db import Base, new_id
from naho.platform.errors import DomainError, NotFound
from naho.platform.security.actor import Actor
from naho.platform.security.rules import CARE_ROLES, Role

#: How long a break-the-glass access lasts.
BREAK_THE_GLASS_DURATION = timedelta(hours=4)
MIN_REASON_LENGTH = 10


class Purpose(StrEnum):
    """Why the data is opened; recorded with every access."""

    CARE = "care"
    IDENTITY = "identity"  # identity vigilance: traits, duplicates, merges
    ADMINISTRATION = "administration"  # admissions, beds: no clinical content
    SELF = "self"  # a patient reading their own record


class Basis(StrEnum):
    """On what ground the access was granted; recorded with every access."""

    CARE_TEAM = "care_team"
    ROLE = "role"
    BREAK_THE_GLASS = "break_the_glass"
    SELF = "self"


#: Roles that may open a record without a care relationship, and for which purposes only.
ROLE_PURPOSES: dict[Role, frozenset[Purpose]] = {
    Role.ADMISSION_CLERK: frozenset({Purpose.ADMINISTRATION, Purpose.IDENTITY}),
    Role.IDENTITY_VIGILANCE: frozenset({Purpose.IDENTITY, Purpose.ADMINISTRATION}),
    Role.IT_ADMIN: frozenset({Purpose.ADMINISTRATION}),
    # A system holding a bearer token (admission gateway, FHIR client) acts for administration
    # and identity, never for care: clinical content needs a person in the care team.
    Role.INTERFACE: frozenset({Purpose.ADMINISTRATION, Purpose.IDENTITY}),
}


#: Who opens a record to administer it (identity, stays) rather than to care for the patient.
ADMINISTRATIVE_READERS = frozenset({Role.ADMISSION_CLERK, Role.IDENTITY_VIGILANCE, Role.INTERFACE})


def reading_purpose(actor: Actor) -> Purpose:
    """The purpose for which this person opens a patient's record: pages, JSON API and FHIR alike.

    Clinical content is for the clinical roles (CARE_ROLES); anyone else — a porter of the unit,
    an admission clerk, a system — reads identities and stays only, even in the care team."""
    if actor.roles & ADMINISTRATIVE_READERS or not actor.roles & CARE_ROLES:
        return Purpose.ADMINISTRATION
    return Purpose.CARE


class PatientNotFound(NotFound):
    """No such patient, or not one this person may open: the same answer for both."""


class BreakTheGlassRefused(DomainError):
    """Break-the-glass needs a clinical role and a real reason."""

    status = 422


class CareRelationshipPort(Protocol):
    """Implemented by `record`: is this person in the care team of a current or recent stay?"""

    def patient_exists(self, session: Session, patient_id: uuid.UUID) -> bool: ...

    def in_care_team(self, session: Session, actor: Actor, patient_id: uuid.UUID, now: datetime) -> bool: ...

    def patient_account(self, session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
        """The portal account of the patient, if any (a patient reads their own record)."""
        ...


class SharingObjectionPort(Protocol):
    """Optionally implemented by the care port that app.py wires in (naho.messaging.consent
    reads the consent registry): did the patient object to sharing their record with the
    professionals of the group's establishments that never treated them? Then no one from
    those establishments may open it outside the care team, not even by break-the-glass."""

    def sharing_refused(self, session: Session, actor: Actor, patient_id: uuid.UUID) -> bool: ...


def _sharing_refused(port: CareRelationshipPort, session: Session, actor: Actor, patient_id: uuid.UUID) -> bool:
    refused = getattr(port, "sharing_refused", None)
    return bool(refused is not None and refused(session, actor, patient_id))


class BreakTheGlass(Base):
    """An emergency access outside the care relationship, reviewed afterwards."""

    __tablename__ = "break_the_glass"
    __table_args__ = (Index("ix_break_the_glass_actor_patient", "actor_id", "patient_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    actor_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    actor_label: Mapped[str] = mapped_column(String(300))
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    reason: Mapped[str] = mapped_column(String(1000))
    opened_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewed_by: Mapped[str | None] = mapped_column(String(300))
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(String(1000))


@dataclass(frozen=True)
class Grant:
    patient_id: uuid.UUID
    basis: Basis
    purpose: Purpose


def _active_break_the_glass(session: Session, actor: Actor, patient_id: uuid.UUID, now: datetime) -> bool:
    return session.execute(
        select(BreakTheGlass.id).where(
            BreakTheGlass.actor_id == actor.account_id, BreakTheGlass.patient_id == patient_id,
            BreakTheGlass.expires_at > now,
        ).limit(1)
    ).first() is not None


def decide(session: Session, actor: Actor, patient_id: uuid.UUID, purpose: Purpose, now: datetime,
           port: CareRelationshipPort) -> Basis | None:
    """The basis on which `actor` may open the patient's data for `purpose`, or None."""
    if not port.patient_exists(session, patient_id):
        return None
    if Role.PATIENT in actor.roles:
        own = port.patient_account(session, patient_id) == actor.account_id
        return Basis.SELF if own and purpose is Purpose.SELF else None
    if purpose is Purpose.SELF:
        return None
    if purpose is Purpose.CARE and reading_purpose(actor) is not Purpose.CARE:
        return None  # clinical content is for clinicians, whatever their relationship to the patient
    if any(purpose in ROLE_PURPOSES.get(role, frozenset()) for role in actor.roles):
        return Basis.ROLE
    if port.in_care_team(session, actor, patient_id, now):
        return Basis.CARE_TEAM
    if _active_break_the_glass(session, actor, patient_id, now) and not _sharing_refused(
            port, session, actor, patient_id):  # an objection recorded after the glass broke counts at once
        return Basis.BREAK_THE_GLASS
    return None


def access_patient(session: Session, actor: Actor, patient_id: uuid.UUID, purpose: Purpose, *,
                   now: datetime, port: CareRelationshipPort, action: str = "patient:record:view",
                   target: str | None = None) -> Grant:
    """Allow or refuse, and audit either way. Call it first in a use case: a refusal commits
    its audit event before raising."""
    basis = decide(session, actor, patient_id, purpose, now, port)
    if basis is None:
        audit.record(session, actor, audit.AuditTag.ACCESS_DENIED, at=now, patient_id=patient_id,
                     target=target, details={"purpose": str(purpose), "action": action})
        # Access is the first step of every use case, so this commit holds the refusal only:
        # a refused attempt must stay in the trail although the use case goes no further.
        session.commit()
        raise PatientNotFound("no such patient")
    audit.record(session, actor, action, at=now, patient_id=patient_id, target=target,
                 details={"purpose": str(purpose), "basis": str(basis)})
    return Grant(patient_id, basis, purpose)


def break_the_glass(session: Session, actor: Actor, patient_id: uuid.UUID, reason: str, *, now: datetime,
                    port: CareRelationshipPort) -> BreakTheGlass:
    """Open a time-boxed emergency access: clinical staff only, with a stated reason."""
    if not actor.roles & {Role.PHYSICIAN, Role.NURSE, Role.PHARMACIST}:
        raise BreakTheGlassRefused("only clinical staff may break the glass")
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise BreakTheGlassRefused(f"state the reason in at least {MIN_REASON_LENGTH} characters")
    if not port.patient_exists(session, patient_id):
        raise PatientNotFound("no such patient")
    if _sharing_refused(port, session, actor, patient_id):
        audit.record(session, actor, audit.AuditTag.ACCESS_DENIED, at=now, patient_id=patient_id,
                     reason=reason.strip()[:1000], details={"action": "patient:record:break-the-glass",
                                                            "refused": "sharing objected"})
        raise BreakTheGlassRefused("the patient objected to sharing their record with the establishments of the "
                                   "group that did not treat them", rule="SharingObjected")
    row = BreakTheGlass(
        actor_id=actor.account_id, actor_label=actor.label, patient_id=patient_id, reason=reason.strip(),
        opened_at=now, expires_at=now + BREAK_THE_GLASS_DURATION,
    )
    session.add(row)
    audit.record(session, actor, audit.AuditTag.BREAK_THE_GLASS, at=now, patient_id=patient_id,
                 reason=reason.strip(), details={"expires_at": row.expires_at.isoformat()})
    return row


def break_the_glass_to_review(session: Session, *, limit: int = 200) -> list[BreakTheGlass]:
    """Emergency accesses not yet reviewed by the medical information department, oldest first."""
    return list(session.scalars(select(BreakTheGlass).where(BreakTheGlass.reviewed.is_(False))
                                .order_by(BreakTheGlass.opened_at).limit(limit)))


def review_break_the_glass(session: Session, actor: Actor, grant_id: uuid.UUID, note: str, *,
                           now: datetime) -> None:
    """The DIM reviewed an emergency access (justified or reported); traced in the audit trail."""
    if Role.MEDICAL_INFORMATION not in actor.roles:
        raise BreakTheGlassRefused("only the medical information department reviews emergency accesses")
    row = session.get(BreakTheGlass, grant_id)
    if row is None or row.reviewed:
        raise NotFound("no such access to review")
    row.reviewed, row.reviewed_by, row.reviewed_at, row.review_note = True, actor.label, now, note.strip() or None
    audit.record(session, actor, audit.AuditTag.BREAK_THE_GLASS_REVIEWED, at=now, patient_id=row.patient_id,
                 target=str(row.id), reason=note.strip() or None)
