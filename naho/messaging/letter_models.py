"""Table of the discharge letter (lettre de liaison): one per stay, drafted, edited, then signed
and locked; the signed letter's PDF is filed in the chart, its structured twin kept here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id


class DischargeLetter(Base):
    """`content` is letter_rules.LetterContent as JSON. Once `status` is signed nothing changes:
    `document_id` is the PDF filed in the chart, `structured` the FHIR document Bundle (JSON)."""

    __tablename__ = "messaging_discharge_letter"
    __table_args__ = (Index("ix_messaging_discharge_letter_patient", "patient_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    encounter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("encounter.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(300))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(300))
    signed_at: Mapped[datetime | None]
    signed_by: Mapped[str | None] = mapped_column(String(300))
    signer_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    structured: Mapped[bytes | None] = mapped_column(LargeBinary)
    structured_media_type: Mapped[str | None] = mapped_column(String(60))
