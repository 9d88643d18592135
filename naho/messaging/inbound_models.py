"""Tables of the group mailbox's inbound side: every message received, with its outcome.

One row per Message-ID (unique): a re-delivered mail finds its row and changes nothing.
Imported by naho.messaging.models so that the metadata (and Alembic) know the table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id


class InboundLetter(Base):
    """A message that arrived in the group's mailbox and what became of it.

    `status`: filed (documents in the chart), unmatched (waits for a person to name the
    patient), refused (never filed; `rule` and `reason` say why, an answer may be queued),
    report (a DSN/MDN about one of our letters). `raw` is the message as received: a person
    matching it later opens it again. `answer` holds the non-integration notification sent
    back, so that a retry sends the same bytes."""

    __tablename__ = "messaging_inbound_letter"
    __table_args__ = (Index("ix_messaging_inbound_letter_status_received", "status", "received_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    sender: Mapped[str] = mapped_column(String(254))
    #: The sender found in the directory by their mailbox, when known.
    professional_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    subject: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))
    rule: Mapped[str | None] = mapped_column(String(60))
    reason: Mapped[str | None] = mapped_column(String(1000))
    #: The patient as the package names them (identifier, traits), for the person who matches.
    patient_as_sent: Mapped[str] = mapped_column(String(500), default="")
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patient.id"))
    document_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    answer: Mapped[bytes | None] = mapped_column(LargeBinary)
    answer_outbox_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(300))
