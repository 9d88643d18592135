"""Inbound messages (HL7 v2 today, devices later): each one kept with its outcome, so a re-sent
message is recognised and not applied twice, and a refused one waits in a dead-letter list.

Filled by the interface adapters; the table is created here so that every transport shares it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id

ACCEPTED = "accepted"
REFUSED = "refused"  # dead letter: waits for a person


class InboundMessage(Base):
    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("channel", "sender", "control_id"),
        Index("ix_inbound_message_status_received", "status", "received_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    #: e.g. "hl7-adt", "hl7-oru"
    channel: Mapped[str] = mapped_column(String(40))
    #: the sending application/facility (MSH-3/MSH-4)
    sender: Mapped[str] = mapped_column(String(200))
    #: the sender's message control id (MSH-10)
    control_id: Mapped[str] = mapped_column(String(200))
    message_type: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    #: the acknowledgement sent back, for a re-sent message
    ack: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(300))
