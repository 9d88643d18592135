"""The patient's objections to sharing: the consent registry other uses will read.

French law lets the patient object to their data being shared with professionals outside the
care team (Code de la santé publique, L.1110-4); the objection is recorded per purpose and the
latest word counts. Staff record it on the patient's word today; the portal will let patients
change it themselves. Everything that shares reads it through `sharing_allowed`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.messaging.models import SharingObjection
from naho.platform.access import CareRelationshipPort, Purpose, access_patient
from naho.platform.security.actor import Actor
from naho.platform.uow import UnitOfWork

#: Sharing a document of the record with community professionals (GP, specialists...).
COMMUNITY_PROFESSIONALS = "community_professionals"
PURPOSES = frozenset({COMMUNITY_PROFESSIONALS})


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


def record_objection(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, *, objects: bool,
                     reason: str | None, port: CareRelationshipPort,
                     purpose: str = COMMUNITY_PROFESSIONALS) -> None:
    """Record the patient's objection (or its withdrawal), said to a professional of the team."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown sharing purpose {purpose!r}")
    with uow:
        now = uow.clock.now()
        access_patient(uow.session, actor, patient_id, Purpose.CARE, now=now, port=port,
                       action="patient:consent:update", target=purpose)
        uow.session.add(SharingObjection(patient_id=patient_id, purpose=purpose, objects=objects,
                                         reason=(reason or "").strip()[:1000] or None, source="staff",
                                         recorded_at=now, recorded_by=actor.label))
        uow.commit()
