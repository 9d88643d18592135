"""Tables of teleconsultation: one session per video appointment (who came, when, what the
practitioner confirmed, how long it lasted). The note itself goes to the record's notes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id


class TeleconsultationSession(Base):
    __tablename__ = "teleconsultation_session"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    appointment_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    practitioner_account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    opened_at: Mapped[datetime]
    patient_arrived_at: Mapped[datetime | None]
    admitted_at: Mapped[datetime | None]
    identity_confirmed_at: Mapped[datetime | None]
    consent_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    #: The record's note the consultation wrote.
    note_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    ended_by: Mapped[str | None] = mapped_column(String(300))
