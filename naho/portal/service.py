"""Use cases of the patient portal: activation, e-mail verification, password reset, proxies
(a parent acting for a minor child), the patient's view of who opened their record, and the
door through which a portal account reaches its own data.

Secrets (activation codes, e-mailed tokens) are random, shown or mailed once, stored as SHA-256,
compared in constant time, single use (a conditional UPDATE consumes them), expiring, and
guessing is throttled per address. Answers never tell whether an account exists.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.identity.schemas import PatientPublic
from naho.messaging import consent, sending
from naho.platform import audit, outbox
from naho.platform.access import CareRelationshipPort, Purpose, access_patient
from naho.platform.errors import Conflict, DomainError, Forbidden, NotFound
from naho.platform.security import service as security
from naho.platform.security.actor import Actor
from naho.platform.security.models import Account, AuthSession
from naho.platform.security.passwords import token_digest
from naho.platform.security.rules import Role, WeakPasswordError
from naho.platform.uow import UnitOfWork
from naho.portal.models import ActivationCode, OneTimeToken, PatientAccount, PortalAttempt, ProxyLink
from naho.results import release
from naho.results import service as results
from naho.sites import service as sites
from naho.staff import service as staff

#: Outbox topic of account mails (verification and reset links): no health data inside.
ACCOUNT_MAIL_TOPIC = "mail.portal"
ACTIVATION_LIFETIME = timedelta(days=30)
TOKEN_LIFETIME = {"verify_email": timedelta(days=2), "reset_password": timedelta(hours=1)}
#: Wrong birth dates before an activation code dies.
MAX_CODE_FAILURES = 5
#: Failed attempts (activation, reset, verification) from one address before it is held off.
MAX_ADDRESS_FAILURES = 10
THROTTLE_WINDOW = timedelta(minutes=15)
#: Age of majority: a proxy acts for a minor child only.
MAJORITY = 18
#: Who hands an activation code or records a proxy (the admission desk, the clinicians).
ISSUERS = frozenset({Role.ADMISSION_CLERK, Role.PHYSICIAN, Role.NURSE})
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed on a phone


class ActivationRefused(DomainError):
    """The code, the birth date or both are wrong, or the code is used or expired: one answer."""

    status = 422
    title = "Activation refused"


class TooManyAttempts(DomainError):
    status = 429
    title = "Too many attempts"


class TokenRefused(DomainError):
    """The link is wrong, used or expired."""

    status = 422
    title = "Link refused"


class ProxyRefused(DomainError):
    status = 422
    title = "Proxy refused"


class AlreadyActivated(Conflict):
    """The patient already has a portal account."""


class NotFoundOnPortal(NotFound):
    """No such thing for this account."""


# --- the door, as the portal sees it -------------------------------------------------------------

class PortalDoor:
    """The record's care-relationship port, with the portal's knowledge of patient accounts: the
    account acting (`account_id`) is the patient's own, or a parent holding an active proxy."""

    def __init__(self, care: CareRelationshipPort, account_id: uuid.UUID) -> None:
        self.care = care
        self.account_id = account_id

    def patient_exists(self, session: Session, patient_id: uuid.UUID) -> bool:
        return self.care.patient_exists(session, patient_id)

    def in_care_team(self, session: Session, actor: Actor, patient_id: uuid.UUID, now: datetime) -> bool:
        return self.care.in_care_team(session, actor, patient_id, now)

    def patient_account(self, session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
        if self.account_id in acting_for(session, self.account_id, patient_id):
            return self.account_id
        return owner_account(session, patient_id)


def door_for(care: CareRelationshipPort) -> Callable[[Actor], CareRelationshipPort]:
    """What app.py wires: a patient's account goes through the portal's door, staff through the record's."""
    def choose(actor: Actor) -> CareRelationshipPort:
        return PortalDoor(care, actor.account_id) if Role.PATIENT in actor.roles else care
    return choose


def owner_account(session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
    return session.scalars(select(PatientAccount.account_id).where(PatientAccount.patient_id == patient_id)).first()


def acting_for(session: Session, account_id: uuid.UUID, patient_id: uuid.UUID) -> set[uuid.UUID]:
    """{account_id} when this account may act for the patient (own account or active proxy)."""
    own = session.scalars(select(PatientAccount.id).where(PatientAccount.account_id == account_id,
                                                          PatientAccount.patient_id == patient_id)).first()
    proxy = session.scalars(select(ProxyLink.id).where(ProxyLink.proxy_account_id == account_id,
                                                       ProxyLink.patient_id == patient_id,
                                                       ProxyLink.revoked_at.is_(None))).first()
    return {account_id} if own or proxy else set()


def short_name(p: PatientPublic) -> str:
    """The name a patient goes by: first used first name, used name."""
    return f"{p.used_first_name or p.first_names.split(' ')[0]} {p.used_name or p.birth_name}"


@dataclass(frozen=True)
class Person:
    """Someone a portal account acts for: the patient themselves or a child."""

    patient_id: uuid.UUID
    name: str
    own: bool


def people_of(session: Session, account_id: uuid.UUID) -> list[Person]:
    """Whom this account may act for: itself first, then its children (active proxies)."""
    own = session.scalars(select(PatientAccount.patient_id).where(PatientAccount.account_id == account_id)).first()
    children = list(session.scalars(select(ProxyLink.patient_id).where(ProxyLink.proxy_account_id == account_id,
                                                                       ProxyLink.revoked_at.is_(None))))
    names = identity.summaries(session, [p for p in [own, *children] if p])

    def name(pid: uuid.UUID) -> str:
        p = names.get(pid)
        return short_name(p) if p else "?"

    people = [Person(own, name(own), True)] if own else []
    return people + [Person(c, name(c), False) for c in dict.fromkeys(children)]


# --- throttling -----------------------------------------------------------------------------------

def _throttled(session: Session, address: str, now: datetime) -> bool:
    failures = session.execute(select(func.count()).select_from(PortalAttempt).where(
        PortalAttempt.address == address, PortalAttempt.at >= now - THROTTLE_WINDOW)).scalar_one()
    return int(failures) >= MAX_ADDRESS_FAILURES


def _fail(uow: UnitOfWork, kind: str, address: str, now: datetime) -> None:
    uow.session.add(PortalAttempt(kind=kind, address=address, at=now))
    audit.record(uow.session, None, f"portal:{kind}:failure", at=now, address=address)
    uow.commit()


# --- activation -----------------------------------------------------------------------------------

def _new_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))  # 60 bits
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _normalise_code(code: str) -> str:
    raw = "".join(ch for ch in code.upper() if ch.isalnum())
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def issue_activation_code(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID,
                          port: CareRelationshipPort) -> tuple[str, datetime]:
    """A new activation code for the patient, shown once to the staff member who hands it over.
    Earlier unused codes are revoked. Returns the code and its expiry."""
    if not actor.has_any(*ISSUERS):
        raise Forbidden("only the admission desk or the care team hands activation codes")
    with uow:
        s = uow.session
        now = uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.ADMINISTRATION, now=now, port=port,
                       action="patient:portal:activation-code")
        if owner_account(s, patient_id):
            raise AlreadyActivated("this patient already has a portal account")
        s.execute(update(ActivationCode).where(ActivationCode.patient_id == patient_id,
                                               ActivationCode.used_at.is_(None)).values(revoked=True))
        code = _new_code()
        expires = now + ACTIVATION_LIFETIME
        s.add(ActivationCode(patient_id=patient_id, code_hash=token_digest(code), created_at=now,
                             created_by=actor.label, expires_at=expires))
        uow.commit()
        return code, expires


def _mail_token(uow: UnitOfWork, account: Account, purpose: str, now: datetime) -> None:
    if ACCOUNT_MAIL_TOPIC not in uow.channels or not account.email:
        return
    token = secrets.token_urlsafe(32)
    uow.session.add(OneTimeToken(account_id=account.id, purpose=purpose, token_hash=token_digest(token),
                                 created_at=now, expires_at=now + TOKEN_LIFETIME[purpose]))
    outbox.enqueue(uow.session, ACCOUNT_MAIL_TOPIC, {"kind": purpose, "to": account.email, "token": token}, now=now)


def activate(uow: UnitOfWork, *, code: str, birth_date: date, email: str, password: str, address: str) -> uuid.UUID:
    """Open the patient's portal account: the code and the birth date prove who they are; the
    e-mail becomes the login and is verified by a link. Returns the new account's id."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise ActivationRefused("give a valid e-mail address", field="email")
    with uow:
        s = uow.session
        now = uow.clock.now()
        if _throttled(s, address, now):
            raise TooManyAttempts("too many attempts from this connection: wait a few minutes")
        digest = token_digest(_normalise_code(code))
        row = s.scalars(select(ActivationCode).where(ActivationCode.code_hash == digest)).first()
        valid = (row is not None and hmac.compare_digest(row.code_hash, digest) and row.used_at is None
                 and not row.revoked and row.expires_at > now and row.failures < MAX_CODE_FAILURES)
        person = identity.summaries(s, [row.patient_id]).get(row.patient_id) if row else None
        if not valid or person is None or person.birth_date != birth_date:
            if row is not None and valid:
                row.failures += 1  # a right code with a wrong birth date: the code wears out
            _fail(uow, "activation", address, now)
            raise ActivationRefused("this code and birth date do not open an account")
        assert row is not None
        if owner_account(s, row.patient_id):
            raise AlreadyActivated("this patient already has a portal account")
        if s.scalars(select(Account.id).where(Account.username == email)).first():
            raise ActivationRefused("this e-mail address is already used by an account", field="email")
        consumed = getattr(s.execute(
            update(ActivationCode).where(ActivationCode.id == row.id, ActivationCode.used_at.is_(None))
            .values(used_at=now).execution_options(synchronize_session=False)), "rowcount", 0)
        if consumed != 1:
            raise ActivationRefused("this code and birth date do not open an account")
        try:
            account = security.create_account(s, username=email, display_name=short_name(person),
                                              roles={Role.PATIENT}, password=password, now_=now, kind="patient",
                                              email=email)
        except WeakPasswordError as exc:
            raise ActivationRefused(f"password refused: {exc}", field="password") from exc
        s.flush()
        s.add(PatientAccount(account_id=account.id, patient_id=row.patient_id, activated_at=now))
        _mail_token(uow, account, "verify_email", now)
        audit.record(s, security.actor_for(account, via="session", address=address), "portal:account:activate",
                     at=now, patient_id=row.patient_id)
        uow.commit()
        return account.id


def _consume_token(uow: UnitOfWork, token: str, purpose: str, address: str) -> OneTimeToken:
    s = uow.session
    now = uow.clock.now()
    if _throttled(s, address, now):
        raise TooManyAttempts("too many attempts from this connection: wait a few minutes")
    digest = token_digest(token.strip())
    row = s.scalars(select(OneTimeToken).where(OneTimeToken.token_hash == digest)).first()
    ok = (row is not None and hmac.compare_digest(row.token_hash, digest) and row.purpose == purpose
          and row.used_at is None and row.expires_at > now)
    if ok and row is not None:
        ok = getattr(s.execute(update(OneTimeToken).where(OneTimeToken.id == row.id, OneTimeToken.used_at.is_(None))
                       .values(used_at=now).execution_options(synchronize_session=False)), "rowcount", 0) == 1
    if not ok or row is None:
        _fail(uow, purpose, address, now)
        raise TokenRefused("this link is wrong, already used or expired")
    return row


def verify_email(uow: UnitOfWork, token: str, *, address: str) -> None:
    with uow:
        row = _consume_token(uow, token, "verify_email", address)
        now = uow.clock.now()
        uow.session.execute(update(PatientAccount).where(PatientAccount.account_id == row.account_id)
                            .values(email_verified_at=now))
        audit.record(uow.session, None, "portal:email:verify", at=now, target=str(row.account_id), address=address)
        uow.commit()


def request_password_reset(uow: UnitOfWork, email: str, *, address: str) -> None:
    """Mail a reset link if a patient account has this address. Returns nothing either way:
    the page says the same thing whether or not the account exists."""
    email = email.strip().lower()
    with uow:
        s = uow.session
        now = uow.clock.now()
        if _throttled(s, address, now):
            return  # silently: a refusal here would be an answer too
        account = s.scalars(select(Account).where(Account.username == email, Account.kind == "patient",
                                                  Account.active.is_(True))).first()
        if account is not None:
            _mail_token(uow, account, "reset_password", now)
        # Counted as an attempt either way, so probing many addresses gets throttled.
        s.add(PortalAttempt(kind="reset_request", address=address, at=now))
        audit.record(s, None, "portal:password:reset-request", at=now, address=address)
        uow.commit()


def reset_password(uow: UnitOfWork, token: str, password: str, *, address: str) -> None:
    """Set a new password with a reset link; every open session of the account ends."""
    with uow:
        s = uow.session
        row = _consume_token(uow, token, "reset_password", address)
        now = uow.clock.now()
        account = s.get(Account, row.account_id)
        assert account is not None
        try:
            security.set_password(s, account, password)
        except WeakPasswordError as exc:
            raise TokenRefused(f"password refused: {exc}", field="password") from exc
        s.execute(update(AuthSession).where(AuthSession.account_id == account.id, AuthSession.revoked_at.is_(None))
                  .values(revoked_at=now))
        audit.record(s, None, "portal:password:reset", at=now, target=str(account.id), address=address)
        uow.commit()


# --- proxies ----------------------------------------------------------------------------------------

def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def create_proxy(uow: UnitOfWork, actor: Actor, child_id: uuid.UUID, parent_username: str, evidence: str,
                 port: CareRelationshipPort) -> uuid.UUID:
    """Let a parent's portal account act for a minor child, once staff checked the documents."""
    if not actor.has_any(*ISSUERS):
        raise Forbidden("only the admission desk or the care team records a proxy")
    if len(evidence.strip()) < 5:
        raise ProxyRefused("say which document was checked", field="evidence")
    with uow:
        s = uow.session
        now = uow.clock.now()
        access_patient(s, actor, child_id, Purpose.ADMINISTRATION, now=now, port=port,
                       action="patient:portal:proxy-create")
        child = identity.summaries(s, [child_id])[child_id]
        if _age(child.birth_date, now.date()) >= MAJORITY:
            raise ProxyRefused("the patient is of age: they open their own account", field="patient")
        parent = s.scalars(select(Account).where(Account.username == parent_username.strip().lower(),
                                                 Account.kind == "patient", Account.active.is_(True))).first()
        if parent is None:
            raise ProxyRefused("no portal account with this login: the parent activates theirs first",
                               field="parent")
        if acting_for(s, parent.id, child_id):
            raise ProxyRefused("this account already acts for the patient", field="parent")
        row = ProxyLink(proxy_account_id=parent.id, patient_id=child_id, evidence=evidence.strip()[:300],
                        created_at=now, created_by=actor.label)
        s.add(row)
        s.flush()
        audit.record(s, actor, "patient:portal:proxy-create", at=now, patient_id=child_id, target=str(parent.id),
                     details={"evidence": row.evidence})
        uow.commit()
        return row.id


def revoke_proxy(uow: UnitOfWork, actor: Actor, proxy_id: uuid.UUID, port: CareRelationshipPort) -> None:
    """End a proxy: staff (a court decision, the child's majority) or the parent themselves."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        row = s.get(ProxyLink, proxy_id)
        if row is None or row.revoked_at is not None:
            raise NotFoundOnPortal("no such proxy")
        if Role.PATIENT in actor.roles:
            if row.proxy_account_id != actor.account_id:
                raise NotFoundOnPortal("no such proxy")
        else:
            if not actor.has_any(*ISSUERS):
                raise Forbidden("only the admission desk or the care team revokes a proxy")
            access_patient(s, actor, row.patient_id, Purpose.ADMINISTRATION, now=now, port=port,
                           action="patient:portal:proxy-revoke")
        row.revoked_at, row.revoked_by = now, actor.label
        audit.record(s, actor, "patient:portal:proxy-revoke", at=now, patient_id=row.patient_id, target=str(row.id))
        uow.commit()


@dataclass(frozen=True)
class PortalStatus:
    """What the staff see of a patient's portal on their page."""

    activated: bool
    email_verified: bool
    proxies: list[tuple[uuid.UUID, str, datetime]]


def portal_status(session: Session, patient_id: uuid.UUID) -> PortalStatus:
    """For a page that already went through the door: the account, its proxies."""
    own = session.scalars(select(PatientAccount).where(PatientAccount.patient_id == patient_id)).first()
    proxies = session.execute(select(ProxyLink.id, Account.display_name, ProxyLink.created_at)
                              .join(Account, ProxyLink.proxy_account_id == Account.id)
                              .where(ProxyLink.patient_id == patient_id, ProxyLink.revoked_at.is_(None))).all()
    return PortalStatus(own is not None, bool(own and own.email_verified_at), [(p[0], p[1], p[2]) for p in proxies])


# --- what the patient sees ---------------------------------------------------------------------

@dataclass(frozen=True)
class AccessLine:
    at: datetime
    roles: list[str]
    unit: str
    establishment: str
    basis: str
    action: str
    break_the_glass: bool
    reason: str | None


#: Actions shown to the patient: every reading or writing of their record by someone else.
_HIDDEN_ACTIONS = ("patient:record:denied",)


def who_opened(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, care: CareRelationshipPort, *,
               limit: int = 300) -> list[AccessLine]:
    """Every access to the patient's record by staff and systems, newest first: when, the
    person's role and unit, the establishment, on what basis. Names are not shown (the group's
    policy: role and unit); a break-the-glass access carries its stated reason."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.SELF, now=now, port=PortalDoor(care, actor.account_id),
                       action="patient:access-log:view")
        portal_accounts = {owner_account(s, patient_id)} | set(s.scalars(
            select(ProxyLink.proxy_account_id).where(ProxyLink.patient_id == patient_id)))
        events = s.scalars(select(audit.AuditEvent).where(
            audit.AuditEvent.patient_id == patient_id, audit.AuditEvent.actor_id.is_not(None),
            audit.AuditEvent.action.like("patient:%"), audit.AuditEvent.action.not_in(_HIDDEN_ACTIONS),
            audit.AuditEvent.actor_id.not_in([a for a in portal_accounts if a]),
        ).order_by(audit.AuditEvent.seq.desc()).limit(limit)).all()
        roles: dict[uuid.UUID, list[str]] = {}
        places: dict[uuid.UUID, tuple[str, str]] = {}
        establishments = {e.code: e.name for e in sites.establishment_choices(s)}
        lines = []
        for e in events:
            assert e.actor_id is not None
            if e.actor_id not in roles:
                account = s.get(Account, e.actor_id)
                roles[e.actor_id] = account.role_names if account else []
                work = staff.workplaces_of(s, e.actor_id)
                if work:
                    est, unit_code = work[0]
                    places[e.actor_id] = (sites.get_unit(s, unit_code).name, establishments.get(est, est))
            unit, establishment = places.get(e.actor_id, ("", ""))
            basis = str((e.details or {}).get("basis", ""))
            btg = e.action == "patient:record:break-the-glass" or basis == "break_the_glass"
            lines.append(AccessLine(e.at, roles[e.actor_id], unit, establishment, basis, e.action, btg,
                                    e.reason if btg else None))
        uow.commit()
        return lines


def letters_sent(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID,
                 care: CareRelationshipPort) -> list[sending.LetterPublic]:
    """What the hospital sent about the patient by secure messaging, to whom, and what became
    of it (sent, delivered, read), newest first: the patient is told of every letter."""
    with uow:
        s = uow.session
        access_patient(s, actor, patient_id, Purpose.SELF, now=uow.clock.now(),
                       port=PortalDoor(care, actor.account_id), action="patient:letters:view")
        letters = sending.letters_of(s, patient_id)
        uow.commit()
        return letters


def released_results(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID,
                     care: CareRelationshipPort) -> results.ResultsView:
    """The results released to the patient (release rules: a normal result once validated, an
    abnormal one once a physician saw it, a sensitive one once the physician told the patient),
    with their trends; nothing held back shows, not even that it exists."""
    with uow:
        s = uow.session
        access_patient(s, actor, patient_id, Purpose.SELF, now=uow.clock.now(),
                       port=PortalDoor(care, actor.account_id), action="patient:lab-result:portal-view")
        view = results.read_results(s, patient_id, reports=release.released_report_ids(s, patient_id))
        uow.commit()
        return view


class EmailNotVerified(Conflict):
    """The e-mailed second factor needs an address the patient proved they read."""


def enable_email_second_factor(uow: UnitOfWork, actor: Actor) -> None:
    """The patient chooses a code by e-mail at each sign-in (no authenticator application):
    only to the address verified at activation."""
    with uow:
        verified = uow.session.scalar(select(PatientAccount.email_verified_at).where(
            PatientAccount.account_id == actor.account_id).limit(1))
    if verified is None:
        raise EmailNotVerified("confirm your e-mail address first (the link sent at activation)",
                               rule="EmailNotVerified")
    security.enable_email_second_factor(uow, actor)


def consents(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID,
             care: CareRelationshipPort) -> list[consent.ConsentState]:
    """The patient's word on each purpose and its history, read from the consent registry
    through the portal's door (the patient, or a parent for a minor child)."""
    return consent.view(uow, actor, patient_id, PortalDoor(care, actor.account_id), Purpose.SELF)


def change_consent(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, purpose: str, *, objects: bool,
                   care: CareRelationshipPort) -> None:
    """The patient objects, or withdraws an objection, from the portal; a parent holding an
    active proxy may do it for a minor child, and the history says it was a parent. The
    registry's function goes through the portal's door, which refuses anyone else (audited)."""
    with uow:
        by_parent = owner_account(uow.session, patient_id) != actor.account_id
    consent.record_patient_choice(uow, actor, patient_id, purpose, objects=objects,
                                  port=PortalDoor(care, actor.account_id), by_parent=by_parent)


def staff_view(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID,
               port: CareRelationshipPort) -> tuple[str, PortalStatus]:
    """What the staff see of a patient's portal (through the door): the name, the account, proxies."""
    if not actor.has_any(*ISSUERS):
        raise Forbidden("only the admission desk or the care team manages portal access")
    with uow:
        s = uow.session
        access_patient(s, actor, patient_id, Purpose.ADMINISTRATION, now=uow.clock.now(), port=port,
                       action="patient:portal:view")
        person = identity.summaries(s, [patient_id])[patient_id]
        status = portal_status(s, patient_id)
        uow.commit()
        return f"{person.used_name or person.birth_name} {person.first_names}", status
