"""What the patient's messaging page shows, read once through the door (audited)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from naho.identity import service as identity
from naho.messaging import consent, correspondents, directory, sending
from naho.platform.access import CareRelationshipPort, Purpose, access_patient
from naho.platform.security.actor import Actor
from naho.platform.uow import UnitOfWork
from naho.record import chart


@dataclass(frozen=True)
class MessagingView:
    patient: Any  # identity's PatientPublic
    correspondents: list[correspondents.CorrespondentPublic]
    letters: list[sending.LetterPublic]
    documents: list[Any]  # record's DocumentPublic
    objection: tuple[datetime, str, str | None] | None
    found: list[directory.ProfessionalPublic]
    search: str


def view_patient_messaging(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort,
                           *, search: str = "") -> MessagingView:
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action="patient:letters:view")
        view = MessagingView(
            patient=identity.summaries(s, [patient_id])[patient_id],
            correspondents=correspondents.current(s, patient_id),
            letters=sending.letters_of(s, patient_id),
            documents=chart.documents(s, patient_id),
            objection=consent.objection_of(s, patient_id, consent.COMMUNITY_PROFESSIONALS),
            found=directory.search(s, search) if search else [],
            search=search)
        uow.commit()
        return view
