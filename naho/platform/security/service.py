"""Use cases of authentication: sign in (password, second factor, SSO), sessions, API tokens.

Every outcome is audited. Errors never tell whether a username exists.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from naho.config import Settings
from naho.platform import audit, outbox
from naho.platform.audit import AuditTag
from naho.platform.errors import DomainError
from naho.platform.security.actor import Actor
from naho.platform.security.models import Account, AccountRole, ApiToken, AuthSession, LoginAttempt
from naho.platform.security.passwords import (
    hash_password,
    new_token,
    token_digest,
    verify_password,
    verify_totp,
)
from naho.platform.security.rules import (
    Role,
    SessionTimes,
    check_password_policy,
    login_throttled,
    session_is_alive,
)
from naho.platform.uow import UnitOfWork


class LoginRefused(DomainError):
    """Wrong username or password (deliberately not saying which)."""

    status = 401
    title = "Login refused"


class LoginThrottled(DomainError):
    """Too many recent failures for this account or address."""

    status = 429
    title = "Too many attempts"


class SecondFactorRefused(DomainError):
    status = 401
    title = "Second factor refused"


#: The e-mailed second factor: sent on the patient mail topic (naho.portal.mail composes it).
EMAIL_CODE_TOPIC = "mail.portal"
EMAIL_CODE_MINUTES = 10
EMAIL_CODE_ATTEMPTS = 5


def _code_digest(session_id: uuid.UUID, code: str) -> str:
    return token_digest(f"{session_id}:{code.strip().replace(' ', '')}")


def _send_email_code(s: Session, row: AuthSession, account: Account, now: datetime) -> None:
    """A new six-digit code for this sign-in, mailed to the account's address (the mail holds
    the code and nothing else); the session keeps only its digest."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    row.mfa_code_hash = _code_digest(row.id, code)
    row.mfa_code_expires_at = now + timedelta(minutes=EMAIL_CODE_MINUTES)
    row.mfa_attempts = 0
    outbox.enqueue(s, EMAIL_CODE_TOPIC, {"kind": "login_code", "to": account.email or "", "code": code,
                                         "minutes": str(EMAIL_CODE_MINUTES)}, now=now)


@dataclass(frozen=True)
class SignIn:
    """A started session: the cookie value and whether the second factor is still owed."""

    token: str
    session_id: uuid.UUID
    mfa_pending: bool


def actor_for(account: Account, *, via: str, session: AuthSession | None = None,
              address: str | None = None) -> Actor:
    return Actor(
        account_id=account.id,
        username=account.username,
        display_name=account.display_name,
        roles=frozenset(Role(r.role) for r in account.roles),
        via=via,
        session_id=session.id if session else None,
        establishment_code=session.establishment_code if session else None,
        unit_code=session.unit_code if session else None,
        address=address,
    )


def create_account(
    session: Session,
    *,
    username: str,
    display_name: str,
    roles: set[Role],
    password: str | None,
    now_: object,
    kind: str = "staff",
    email: str | None = None,
    enforce_policy: bool = True,
) -> Account:
    from datetime import datetime

    assert isinstance(now_, datetime)
    if password is not None and enforce_policy:
        check_password_policy(password, username)
    account = Account(
        username=username.lower(),
        display_name=display_name,
        email=email,
        kind=kind,
        password_hash=hash_password(password) if password else None,
        active=True,
        created_at=now_,
    )
    account.roles = [AccountRole(role=str(r)) for r in sorted(roles)]
    session.add(account)
    return account


def _failures_since(session: Session, column: object, value: str, since: object) -> int:
    return session.execute(
        select(func.count()).select_from(LoginAttempt).where(
            column == value, LoginAttempt.success.is_(False), LoginAttempt.at >= since  # type: ignore[operator]
        )
    ).scalar_one()


def sign_in(
    uow: UnitOfWork,
    settings: Settings,
    *,
    username: str,
    password: str,
    address: str,
    user_agent: str | None,
) -> SignIn:
    """Check a password and open a session. Three short transactions: the argon2 check (about
    0.1 s of CPU by design) runs between them, never while holding a database lock."""
    username = username.strip().lower()
    with uow:
        s = uow.session
        now = uow.clock.now()
        since = now - timedelta(minutes=settings.login_window_minutes)
        throttled = login_throttled(
            _failures_since(s, LoginAttempt.username, username, since),
            _failures_since(s, LoginAttempt.address, address, since),
            settings.login_max_failures,
        )
        account = s.execute(select(Account).where(Account.username == username)).scalar_one_or_none()
        password_hash = account.password_hash if account else None
        account_id = account.id if account and account.active else None
    if throttled:
        with uow:
            audit.record(uow.session, None, AuditTag.LOGIN_THROTTLED, at=uow.clock.now(), target=username,
                         address=address)
            uow.commit()
        raise LoginThrottled("too many failed attempts; wait a few minutes")
    ok = verify_password(password_hash, password) and account_id is not None
    with uow:
        s = uow.session
        now = uow.clock.now()
        account = s.get(Account, account_id) if ok else None
        if account is None or not account.active or account.password_hash != password_hash:
            s.add(LoginAttempt(username=username, address=address, at=now, success=False))
            audit.record(s, None, AuditTag.LOGIN_FAILURE, at=now, target=username, address=address)
            uow.commit()
            raise LoginRefused("unknown username or wrong password")
        s.add(LoginAttempt(username=username, address=address, at=now, success=True))
        second_factor = bool(account.totp_secret) or (account.email_second_factor and bool(account.email))
        signed = _open_session(s, settings, account, now=now, address=address, user_agent=user_agent,
                               mfa_pending=second_factor)
        if second_factor and not account.totp_secret:
            row = s.get(AuthSession, signed.session_id)
            assert row is not None
            _send_email_code(s, row, account, now)
        if not second_factor:
            account.last_login_at = now
        audit.record(s, actor_for(account, via="session", address=address), AuditTag.LOGIN_SUCCESS,
                     at=now, details={"mfa_pending": signed.mfa_pending})
        uow.commit()
        return signed


def _open_session(s: Session, settings: Settings, account: Account, *, now: object,
                  address: str | None, user_agent: str | None, mfa_pending: bool) -> SignIn:
    from datetime import datetime

    assert isinstance(now, datetime)
    token = new_token()
    row = AuthSession(
        token_hash=token_digest(token), account_id=account.id, created_at=now, last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_hours), mfa_pending=mfa_pending,
        address=address, user_agent=(user_agent or "")[:300],
    )
    s.add(row)
    s.flush()
    return SignIn(token=token, session_id=row.id, mfa_pending=mfa_pending)


def complete_second_factor(uow: UnitOfWork, *, token: str, code: str) -> None:
    with uow:
        s = uow.session
        now = uow.clock.now()
        row = s.execute(select(AuthSession).where(AuthSession.token_hash == token_digest(token))).scalar_one_or_none()
        if row is None or row.revoked_at or not row.mfa_pending or now >= row.expires_at:
            raise SecondFactorRefused("no sign-in is waiting for a second factor")
        account = s.get(Account, row.account_id)
        assert account is not None
        if account.totp_secret:
            kind, right = "totp", verify_totp(account.totp_secret, code, now.timestamp())
        else:
            expired = row.mfa_code_expires_at is None or now >= row.mfa_code_expires_at
            kind = "email"
            right = not expired and row.mfa_code_hash is not None and hmac.compare_digest(
                row.mfa_code_hash, _code_digest(row.id, code))
        if not right:
            s.add(LoginAttempt(username=account.username, address=row.address or "", at=now, success=False))
            audit.record(s, actor_for(account, via="session", session=row), AuditTag.LOGIN_MFA_FAILURE, at=now,
                         details={"second_factor": kind})
            if kind == "email":
                row.mfa_attempts += 1
                if row.mfa_attempts >= EMAIL_CODE_ATTEMPTS or row.mfa_code_expires_at is None or (
                        now >= row.mfa_code_expires_at):
                    row.revoked_at = now  # too many tries, or too late: sign in again for a new code
            uow.commit()
            raise SecondFactorRefused("wrong code", second_factor=kind, ended=row.revoked_at is not None)
        row.mfa_pending = False
        row.mfa_code_hash = None
        row.last_seen_at = now
        account.last_login_at = now
        audit.record(s, actor_for(account, via="session", session=row), AuditTag.LOGIN_SUCCESS,
                     at=now, details={"second_factor": kind})
        uow.commit()


def pending_second_factor(session: Session, token: str) -> str | None:
    """Which second factor a waiting sign-in owes: "totp", "email", or None (none waiting)."""
    row = session.execute(select(AuthSession).where(AuthSession.token_hash == token_digest(token))).scalar_one_or_none()
    if row is None or not row.mfa_pending or row.revoked_at:
        return None
    account = session.get(Account, row.account_id)
    return None if account is None else "totp" if account.totp_secret else "email"


class EmailSecondFactorRefused(DomainError):
    """The e-mailed second factor needs an address, a mail service, and no factor already on."""

    status = 409


def enable_email_second_factor(uow: UnitOfWork, actor: Actor) -> None:
    """Turn on the e-mailed code at each sign-in. The caller checked that the address is verified
    (the patient portal's activation does it)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        account = s.get(Account, actor.account_id)
        if account is None or account.totp_secret or account.email_second_factor:
            raise EmailSecondFactorRefused("the second factor is already enabled", rule="SecondFactorAlreadyOn")
        if not account.email or EMAIL_CODE_TOPIC not in uow.channels:
            raise EmailSecondFactorRefused("no address or no mail service for the codes", rule="NoMailForCodes")
        account.email_second_factor = True
        audit.record(s, actor, AuditTag.TOTP_ENABLED, at=now, details={"second_factor": "email"})
        uow.commit()


def sign_in_with_oidc(uow: UnitOfWork, settings: Settings, *, subject: str, username: str,
                      address: str, user_agent: str | None) -> SignIn:
    """Single sign-on: the provider vouched for `subject`; find the matching local account.

    An account is linked on its first SSO sign-in by username; afterwards by subject only.
    The provider's authentication counts as strong (no local second factor).
    """
    with uow:
        s = uow.session
        now = uow.clock.now()
        account = s.execute(select(Account).where(Account.oidc_subject == subject)).scalar_one_or_none()
        if account is None:
            account = s.execute(
                select(Account).where(Account.username == username.lower(), Account.oidc_subject.is_(None))
            ).scalar_one_or_none()
            if account is not None:
                account.oidc_subject = subject
        if account is None or not account.active:
            audit.record(s, None, AuditTag.LOGIN_FAILURE, at=now, target=username, address=address,
                         details={"via": "oidc"})
            uow.commit()
            raise LoginRefused("this identity has no active naho account")
        signed = _open_session(s, settings, account, now=now, address=address, user_agent=user_agent,
                               mfa_pending=False)
        account.last_login_at = now
        audit.record(s, actor_for(account, via="session", address=address), AuditTag.LOGIN_SUCCESS,
                     at=now, details={"via": "oidc"})
        uow.commit()
        return signed


def resolve_session(uow: UnitOfWork, settings: Settings, token: str, *, allow_mfa_pending: bool = False,
                    address: str | None = None) -> Actor | None:
    """The actor behind a session cookie, or None if it is unknown, expired or revoked."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        row = s.execute(select(AuthSession).where(AuthSession.token_hash == token_digest(token))).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        alive = session_is_alive(
            SessionTimes(row.created_at, row.last_seen_at, row.expires_at),
            now, timedelta(minutes=settings.session_idle_minutes),
        )
        if not alive or (row.mfa_pending and not allow_mfa_pending):
            return None
        account = s.get(Account, row.account_id)
        if account is None or not account.active:
            return None
        if now - row.last_seen_at > timedelta(seconds=60):
            # Sliding idle timeout, written at most once a minute per session.
            row.last_seen_at = now
            uow.commit()
        return actor_for(account, via="session", session=row, address=address)


def sign_out(uow: UnitOfWork, actor: Actor) -> None:
    with uow:
        now = uow.clock.now()
        uow.session.execute(
            update(AuthSession).where(AuthSession.id == actor.session_id).values(revoked_at=now)
        )
        audit.record(uow.session, actor, AuditTag.LOGOUT, at=now)
        uow.commit()


def set_work_context(uow: UnitOfWork, actor: Actor, establishment_code: str, unit_code: str | None) -> None:
    """Remember, for this session, the establishment and unit the person works in now."""
    with uow:
        now = uow.clock.now()
        uow.session.execute(
            update(AuthSession).where(AuthSession.id == actor.session_id)
            .values(establishment_code=establishment_code, unit_code=unit_code)
        )
        audit.record(uow.session, actor, AuditTag.CONTEXT_SWITCHED, at=now,
                     target=f"{establishment_code}/{unit_code or '-'}")
        uow.commit()


def create_api_token(uow: UnitOfWork, actor: Actor, *, username: str, name: str,
                     days: int | None = 365) -> str:
    """Issue a bearer token acting as `username`; the clear token is returned once."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        account = s.execute(select(Account).where(Account.username == username.lower())).scalar_one_or_none()
        if account is None or not account.active:
            raise DomainError(f"no active account {username!r}")
        token = "naho_" + new_token()
        s.add(ApiToken(
            token_hash=token_digest(token), prefix=token[:12], name=name, account_id=account.id,
            created_at=now, expires_at=now + timedelta(days=days) if days else None,
        ))
        audit.record(s, actor, AuditTag.TOKEN_CREATED, at=now, target=f"{username}:{name}")
        uow.commit()
        return token


def revoke_api_token(uow: UnitOfWork, actor: Actor, prefix: str) -> bool:
    with uow:
        now = uow.clock.now()
        result = uow.session.execute(
            update(ApiToken).where(ApiToken.prefix == prefix, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if result.rowcount:
            audit.record(uow.session, actor, AuditTag.TOKEN_REVOKED, at=now, target=prefix)
        uow.commit()
        return bool(result.rowcount)


def resolve_api_token(uow: UnitOfWork, token: str, *, address: str | None = None) -> Actor | None:
    with uow:
        s = uow.session
        now = uow.clock.now()
        row = s.execute(select(ApiToken).where(ApiToken.token_hash == token_digest(token))).scalar_one_or_none()
        if row is None or row.revoked_at is not None or (row.expires_at and now >= row.expires_at):
            return None
        account = s.get(Account, row.account_id)
        if account is None or not account.active:
            return None
        if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5):
            row.last_used_at = now
            uow.commit()
        return actor_for(account, via="token", address=address)


def set_password(s: Session, account: Account, password: str) -> None:
    check_password_policy(password, account.username)
    account.password_hash = hash_password(password)


class TotpCodeRefused(DomainError):
    """The confirmation code does not match the new secret."""


def enable_totp(uow: UnitOfWork, actor: Actor, *, secret: str, code: str) -> None:
    """Turn on the second factor once the user proves their app shows the right code."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        account = s.get(Account, actor.account_id)
        if account is None or account.totp_secret or account.email_second_factor:
            raise TotpCodeRefused("the second factor is already enabled")
        if not verify_totp(secret, code, now.timestamp()):
            raise TotpCodeRefused("wrong code")
        account.totp_secret = secret
        audit.record(s, actor, AuditTag.TOTP_ENABLED, at=now)
        uow.commit()


def has_second_factor(session: Session, account_id: uuid.UUID) -> bool:
    account = session.get(Account, account_id)
    return bool(account and (account.totp_secret or account.email_second_factor))
