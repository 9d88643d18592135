"""Use cases of the staff directory: create a professional, list them, find their units."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from naho.platform import audit
from naho.platform.audit import AuditTag
from naho.platform.security.actor import Actor
from naho.platform.security.models import Account
from naho.platform.security.rules import Role, WeakPasswordError
from naho.platform.security.service import create_account
from naho.platform.uow import UnitOfWork
from naho.sites import service as sites
from naho.staff.errors import InvalidStaff, UsernameTaken
from naho.staff.models import StaffAssignment, StaffMember
from naho.staff.rules import StaffRuleError, check_staff_identity
from naho.staff.schemas import AssignmentPublic, StaffCreate, StaffPublic


def add_staff(session: Session, data: StaffCreate, *, now: datetime,
              enforce_password_policy: bool = True, unit_ids: dict[str, uuid.UUID] | None = None) -> StaffMember:
    """Create the account and the directory entry, in the caller's transaction."""
    try:
        profession = Role(data.profession)
        roles = frozenset({profession, *(Role(r) for r in data.roles)})
        check_staff_identity(roles, data.rpps)
    except (ValueError, StaffRuleError) as exc:
        raise InvalidStaff(str(exc)) from exc
    if session.execute(select(Account.id).where(Account.username == data.username.lower())).first():
        raise UsernameTaken(f"username {data.username} is taken")
    units = unit_ids if unit_ids is not None else sites.unit_ids_by_code(session, data.unit_codes)
    unknown = [c for c in data.unit_codes if c not in units]
    if unknown:
        raise InvalidStaff(f"unknown units: {', '.join(unknown)}")
    try:
        account = create_account(
            session, username=data.username, display_name=f"{data.first_name} {data.last_name.upper()}",
            roles=set(roles), password=data.password, now_=now, email=data.email,
            enforce_policy=enforce_password_policy,
        )
    except WeakPasswordError as exc:
        raise InvalidStaff(f"password refused: {exc}") from exc
    session.flush()
    member = StaffMember(account_id=account.id, first_name=data.first_name, last_name=data.last_name,
                         profession=str(profession), rpps=data.rpps)
    member.assignments = [
        StaffAssignment(unit_id=units[code], primary=index == 0) for index, code in enumerate(data.unit_codes)
    ]
    session.add(member)
    return member


def create_staff(uow: UnitOfWork, actor: Actor, data: StaffCreate) -> StaffPublic:
    with uow:
        now = uow.clock.now()
        member = add_staff(uow.session, data, now=now)
        uow.session.flush()
        audit.record(uow.session, actor, AuditTag.STAFF_CREATED, at=now, target=data.username,
                     details={"profession": data.profession, "units": data.unit_codes})
        uow.commit()
    with uow:
        return get_staff(uow.session, member.id)


def _public(session: Session, members: list[tuple[StaffMember, Account]]) -> list[StaffPublic]:
    unit_ids = list({a.unit_id for m, _ in members for a in m.assignments})
    units = sites.units_by_ids(session, unit_ids)
    return [
        StaffPublic(
            id=m.id, username=acc.username, first_name=m.first_name, last_name=m.last_name,
            profession=m.profession, roles=acc.role_names, rpps=m.rpps, active=acc.active,
            assignments=[
                AssignmentPublic(unit_code=units[a.unit_id][0], unit_name=units[a.unit_id][1],
                                 establishment_code=units[a.unit_id][2], primary=a.primary)
                for a in sorted(m.assignments, key=lambda a: (not a.primary, units[a.unit_id][0]))
            ],
        )
        for m, acc in members
    ]


def get_staff(session: Session, staff_id: uuid.UUID) -> StaffPublic:
    row = session.execute(
        select(StaffMember, Account).join(Account, StaffMember.account_id == Account.id)
        .where(StaffMember.id == staff_id)
    ).one()
    return _public(session, [row])[0]


def list_staff(session: Session, *, establishment_code: str | None = None, unit_code: str | None = None,
               search: str | None = None, limit: int = 200, offset: int = 0) -> tuple[list[StaffPublic], int]:
    """Staff of an establishment or unit (any when neither is given), by name; and the total."""
    query = select(StaffMember, Account).join(Account, StaffMember.account_id == Account.id)
    if unit_code or establishment_code:
        codes = [unit_code] if unit_code else [u.code for u in sites.list_units(session, establishment_code or "")]
        unit_ids = list(sites.unit_ids_by_code(session, codes).values())
        query = query.where(StaffMember.id.in_(
            select(StaffAssignment.staff_id).where(StaffAssignment.unit_id.in_(unit_ids))
        ))
    if search:
        pattern = f"%{search.strip().lower()}%"
        query = query.where(
            func.lower(StaffMember.last_name).like(pattern)
            | func.lower(StaffMember.first_name).like(pattern)
            | func.lower(Account.username).like(pattern)
        )
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(
        query.order_by(StaffMember.last_name, StaffMember.first_name).limit(limit).offset(offset)
    ).all()
    return _public(session, list(rows)), total


def workplaces_of(session: Session, account_id: uuid.UUID) -> list[tuple[str, str]]:
    """(establishment code, unit code) where this account's holder works, primary first."""
    member = session.execute(select(StaffMember).where(StaffMember.account_id == account_id)).scalar_one_or_none()
    if member is None:
        return []
    units = sites.units_by_ids(session, [a.unit_id for a in member.assignments])
    ordered = sorted(member.assignments, key=lambda a: (not a.primary, units[a.unit_id][0]))
    return [(units[a.unit_id][2], units[a.unit_id][0]) for a in ordered]


def count_staff(session: Session) -> int:
    return session.execute(select(func.count()).select_from(StaffMember)).scalar_one()


def staff_of_account(session: Session, account_id: uuid.UUID) -> StaffPublic | None:
    member_id = session.execute(
        select(StaffMember.id).where(StaffMember.account_id == account_id)
    ).scalar_one_or_none()
    return get_staff(session, member_id) if member_id else None


def browse_staff(uow: UnitOfWork, actor: Actor, *, establishment_code: str | None = None,
                 unit_code: str | None = None, search: str | None = None, limit: int = 200,
                 offset: int = 0) -> tuple[list[StaffPublic], int]:
    """The directory as an administrator browses it: the listing is audited (personal data)."""
    with uow:
        items, total = list_staff(uow.session, establishment_code=establishment_code, unit_code=unit_code,
                                  search=search, limit=limit, offset=offset)
        audit.record(uow.session, actor, AuditTag.STAFF_VIEWED, at=uow.clock.now(),
                     target=establishment_code or unit_code or "*",
                     details={"search": search or "", "offset": offset, "shown": len(items)})
        uow.commit()
        return items, total
