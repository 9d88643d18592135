"""Tables of the patient portal: which account is which patient, activation codes, one-time
tokens (e-mail verification, password reset), proxy links (a parent for a minor child), and the
attempts used to throttle guessing.

Every secret is stored as its SHA-256 only: codes and tokens are random with enough entropy
that a fast hash is safe, and the clear value is shown or mailed once.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id


class PatientAccount(Base):
    """A portal account belongs to one patient, and a patient has one portal account."""

    __tablename__ = "portal_patient_account"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), unique=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    activated_at: Mapped[datetime]
    email_verified_at: Mapped[datetime | None]


class ActivationCode(Base):
    """Handed at admission or mailed by post: with the birth date, it opens the account once."""

    __tablename__ = "portal_activation_code"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(300))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    #: Wrong birth dates given with this code; the code dies at the limit.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class OneTimeToken(Base):
    """An e-mail verification link or a password-reset link: single use, short-lived."""

    __tablename__ = "portal_token"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    #: "verify_email" or "reset_password"
    purpose: Mapped[str] = mapped_column(String(30))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ProxyLink(Base):
    """A parent (or legal guardian) acts for a minor child, once staff checked the documents."""

    __tablename__ = "portal_proxy"
    __table_args__ = (Index("ix_portal_proxy_account_patient", "proxy_account_id", "patient_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    proxy_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    #: What was checked: "livret de famille", a court decision...
    evidence: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(300))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(300))


class PortalAttempt(Base):
    """A failed activation, reset or verification attempt, counted to throttle guessing."""

    __tablename__ = "portal_attempt"
    __table_args__ = (Index("ix_portal_attempt_address_at", "address", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(30))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
