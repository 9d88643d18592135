"""Tables of authentication: accounts, their roles, browser sessions, API tokens, attempts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from naho.platform.db import Base, new_id


class Account(Base):
    """A person or system that can sign in. Staff and (later) patients both have one."""

    __tablename__ = "account"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    #: "staff", "system" or "patient"
    kind: Mapped[str] = mapped_column(String(20), default="staff")
    #: argon2id hash; None means no local password (SSO only, or not yet set)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    #: The second factor is a code sent by e-mail at each sign-in (patients without an
    #: authenticator application); only to a verified address.
    email_second_factor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Subject at the OIDC provider, once the account has signed in through it.
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]

    roles: Mapped[list[AccountRole]] = relationship(
        back_populates="account", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def role_names(self) -> list[str]:
        return sorted(r.role for r in self.roles)


class AccountRole(Base):
    __tablename__ = "account_role"
    __table_args__ = (UniqueConstraint("account_id", "role"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(40))

    account: Mapped[Account] = relationship(back_populates="roles")


class AuthSession(Base):
    """A browser session. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "auth_session"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    #: The password was right but the second factor is still owed.
    mfa_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The e-mailed code owed (hashed with the session id), its expiry, and the wrong tries.
    mfa_code_hash: Mapped[str | None] = mapped_column(String(64))
    mfa_code_expires_at: Mapped[datetime | None]
    mfa_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    establishment_code: Mapped[str | None] = mapped_column(String(40))
    #: The unit the person works in right now (wards, boards and worklists start there).
    unit_code: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    revoked_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token for systems and scripts; shown once, stored as SHA-256."""

    __tablename__ = "api_token"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(120))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class LoginAttempt(Base):
    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_username_at", "username", "at"),
        Index("ix_login_attempt_address_at", "address", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    success: Mapped[bool] = mapped_column(Boolean)
