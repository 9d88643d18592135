"""Tables of secure messaging: the directory of community professionals, the patient's
correspondents, the letters sent and the patient's objection to sharing (consent registry)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id


class Professional(Base):
    """A community professional as the national directory (Annuaire Santé) publishes them."""

    __tablename__ = "messaging_professional"
    __table_args__ = (
        Index("ix_messaging_professional_search_name", "search_name"),
        Index("ix_messaging_professional_search_city", "search_city"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    rpps: Mapped[str] = mapped_column(String(11), unique=True)
    title: Mapped[str] = mapped_column(String(40), default="")
    last_name: Mapped[str] = mapped_column(String(120))
    first_name: Mapped[str] = mapped_column(String(120))
    profession: Mapped[str] = mapped_column(String(120))
    specialty: Mapped[str] = mapped_column(String(200), default="")
    practice_name: Mapped[str] = mapped_column(String(200), default="")
    street: Mapped[str] = mapped_column(String(300), default="")
    postcode: Mapped[str] = mapped_column(String(10), default="")
    city: Mapped[str] = mapped_column(String(120), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    #: The professional's secure messaging (MSSanté) mailbox, when they have one.
    mss_address: Mapped[str | None] = mapped_column(String(254))
    #: Their encryption certificate (PEM), when known: a letter cannot be sealed without it.
    certificate_pem: Mapped[str | None] = mapped_column(Text)
    #: Upper-case, accent-free forms for searching by prefix on both databases.
    search_name: Mapped[str] = mapped_column(String(250))
    search_city: Mapped[str] = mapped_column(String(120))
    imported_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Correspondent(Base):
    """A professional attached to a patient: the GP (médecin traitant) or another correspondent."""

    __tablename__ = "messaging_correspondent"
    __table_args__ = (Index("ix_messaging_correspondent_patient", "patient_id", "ended_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messaging_professional.id"))
    role: Mapped[str] = mapped_column(String(20))
    since: Mapped[datetime]
    added_by: Mapped[str] = mapped_column(String(300))
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(300))


class Letter(Base):
    """A chart document sent to correspondents: one sealed message, one outbox message.

    `raw` holds the sealed message as sent: a retry sends these very bytes, under the same
    Message-ID. `recipients` is a list of {professional_id, name, address, status, detail}.
    The row is also what the patient will see of what was shared (portal, later)."""

    __tablename__ = "messaging_letter"
    __table_args__ = (Index("ix_messaging_letter_patient_at", "patient_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    document_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    document_title: Mapped[str] = mapped_column(String(200))
    document_sha256: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(unique=True)
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    subject: Mapped[str] = mapped_column(String(300))
    sender: Mapped[str] = mapped_column(String(254))
    recipients: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    status_detail: Mapped[str | None] = mapped_column(String(1000))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    outbox_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(300))
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class SharingObjection(Base):
    """The patient's word on sharing for a purpose; the latest row counts, history is kept."""

    __tablename__ = "messaging_sharing_objection"
    __table_args__ = (Index("ix_messaging_sharing_objection_patient", "patient_id", "purpose", "recorded_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    purpose: Mapped[str] = mapped_column(String(40))
    objects: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(1000))
    #: "staff" (recorded by a professional on the patient's word) or "patient" (the portal, later).
    source: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(300))


from naho.messaging.inbound_models import InboundLetter  # noqa: E402  (registers the inbound table)
from naho.messaging.letter_models import DischargeLetter  # noqa: E402,F401  (registers the discharge letter table)

__all__ = ["Correspondent", "InboundLetter", "Letter", "Professional", "SharingObjection"]
