"""The care team of a stay: the professionals named on it (médecin référent, infirmier
référent, interne, kiné…) and, derived and read-only, the staff of every unit the stay went
through (record.service.RecordCareRelationship opens the chart to both).

Each use case goes through the one door first (purpose administration for the admission desk,
care otherwise), then decides whether this person may change the team: admission clerks, and
physicians and nurses who are themselves in this stay's team; anyone else is refused (403).

`CareTeamMember` has no end column and this change may not add a migration: ending a membership
deletes the row and writes the removal to the audit trail (who, when, which member, role, since
when). The page reads the former members back from the trail, so the history is not lost.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.identity.schemas import PatientPublic
from naho.platform import audit
from naho.platform.access import CareRelationshipPort, Purpose, access_patient
from naho.platform.db import advisory_xact_lock
from naho.platform.errors import Conflict, DomainError, Forbidden, NotFound
from naho.platform.i18n import N_
from naho.platform.security.actor import Actor
from naho.platform.security.models import Account
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import rules
from naho.record import service as record
from naho.record.errors import EncounterNotFound
from naho.record.models import CareTeamMember, Encounter
from naho.record.schemas import EncounterPublic
from naho.sites import service as sites
from naho.staff import service as staff
from naho.staff.schemas import StaffPublic

#: Audit actions: the door's access check, then what changed (with the member in the details).
ACCESS_VIEW = "patient:careteam:view"
ACCESS_CHANGE = "patient:careteam:change"
MEMBER_ADDED = "patient:careteam:add"
MEMBER_REMOVED = "patient:careteam:remove"
#: Professions that never care for a patient, hence never named in a care team.
NOT_CARERS = frozenset({Role.PORTER, Role.IT_ADMIN, Role.INTERFACE, Role.PATIENT, Role.ADMISSION_CLERK,
                        Role.IDENTITY_VIGILANCE, Role.MEDICAL_INFORMATION, Role.PHARMACY_TECHNICIAN})
#: Who may change a team without being in it: the admission desk names the referents.
DESK = frozenset({Role.ADMISSION_CLERK})
#: Who may change a team they are in.
CARERS = frozenset({Role.PHYSICIAN, Role.NURSE})
SEARCH_LIMIT = 20
_CARE_TEAM_LOCK = 0x6E61686F_00000000  # "naho" in the high bits, the stay in the low 32
UNIT_STAFF_LIMIT = 300


@dataclass(frozen=True)
class TeamRole:
    code: str
    label: str  # English message id, translated on screen
    #: Professions that may hold it; None: any profession that cares for patients.
    professions: frozenset[Role] | None


TEAM_ROLES: dict[str, TeamRole] = {r.code: r for r in (
    TeamRole("referring_physician", N_("Referring physician"), frozenset({Role.PHYSICIAN})),
    TeamRole("referring_nurse", N_("Referring nurse"), frozenset({Role.NURSE})),
    TeamRole("intern", N_("Intern"), frozenset({Role.PHYSICIAN})),
    TeamRole("consulting_physician", N_("Consulting physician"), frozenset({Role.PHYSICIAN})),
    TeamRole("nurse", N_("Nurse"), frozenset({Role.NURSE})),
    TeamRole("clinical_pharmacist", N_("Clinical pharmacist"), frozenset({Role.PHARMACIST})),
    TeamRole("physiotherapist", N_("Physiotherapist"), None),
    TeamRole("dietitian", N_("Dietitian"), None),
    TeamRole("psychologist", N_("Psychologist"), None),
    TeamRole("social_worker", N_("Social worker"), None),
)}


# --- errors, named after the broken rule --------------------------------------------------------

class NotInCareTeam(Forbidden):
    """Only admission clerks, and physicians and nurses in this stay's care team, change it."""

    title = "Forbidden"


class UnknownTeamRole(DomainError):
    """The role is not one of TEAM_ROLES."""


class ProfessionDoesNotFitRole(DomainError):
    """A médecin référent is a physician, an infirmier référent a nurse; a porter cares for no one."""


class AlreadyInCareTeam(Conflict):
    """A professional is named once on a stay."""


class StayClosed(Conflict):
    """A finished or cancelled stay takes no new member (its team may still be ended)."""


class StaffNotFound(NotFound):
    """No professional with this username in the directory."""


class MemberNotFound(NotFound):
    """No such named member (already ended, or never there)."""


# --- pure rules ---------------------------------------------------------------------------------

def may_change(roles: frozenset[Role], in_team: bool) -> bool:
    """Whether someone holding `roles` may change the team: the admission desk always, a
    physician or nurse only when in this stay's care team."""
    return bool(roles & DESK) or (bool(roles & CARERS) and in_team)


def roles_for(profession: str) -> list[str]:
    """Team roles a professional of this profession may hold, in TEAM_ROLES order."""
    return [code for code, r in TEAM_ROLES.items()
            if (profession not in NOT_CARERS if r.professions is None else profession in r.professions)]


def check_new_member(role: str, profession: str, stay_status: str, named: bool) -> TeamRole:
    """The team role to give, if this professional may be named on this stay in it."""
    team_role = TEAM_ROLES.get(role)
    if team_role is None:
        raise UnknownTeamRole(f"unknown care-team role {role!r}", rule="UnknownTeamRole")
    if stay_status in (rules.EncounterStatus.FINISHED, rules.EncounterStatus.CANCELLED):
        raise StayClosed(f"the stay is {stay_status}: no new member", rule="StayClosed")
    if named:
        raise AlreadyInCareTeam("this professional is already named on the stay", rule="AlreadyInCareTeam")
    if team_role.code not in roles_for(profession):
        raise ProfessionDoesNotFitRole(f"a {profession} cannot be {role}", rule="ProfessionDoesNotFitRole")
    return team_role


# --- shapes the page shows ----------------------------------------------------------------------

@dataclass(frozen=True)
class NamedMember:
    id: uuid.UUID
    account_id: uuid.UUID
    username: str
    name: str
    profession: str
    role: str
    since: datetime


@dataclass(frozen=True)
class UnitTeam:
    unit_code: str
    unit_name: str
    since: datetime
    until: datetime | None  # None: the patient is still there
    staff: list[StaffPublic]


@dataclass(frozen=True)
class FormerMember:
    name: str
    username: str
    role: str
    since: str | None
    ended_at: datetime
    ended_by: str


@dataclass(frozen=True)
class CareTeamView:
    patient: PatientPublic
    stay: EncounterPublic
    named: list[NamedMember]
    units: list[UnitTeam]
    former: list[FormerMember]
    can_change: bool
    search: str
    found: list[StaffPublic]


# --- reading ------------------------------------------------------------------------------------

def _stay(session: Session, encounter_id: uuid.UUID) -> Encounter:
    encounter = session.get(Encounter, encounter_id)
    if encounter is None:
        raise EncounterNotFound("no such stay")
    return encounter


def _purpose(actor: Actor) -> Purpose:
    """The admission desk administers the team (no clinical content on the page); carers care."""
    return Purpose.ADMINISTRATION if actor.roles & DESK else Purpose.CARE


def _named(session: Session, encounter_id: uuid.UUID) -> list[NamedMember]:
    rows = session.execute(
        select(CareTeamMember, Account.username, Account.display_name)
        .join(Account, Account.id == CareTeamMember.account_id)
        .where(CareTeamMember.encounter_id == encounter_id).order_by(CareTeamMember.added_at)).all()
    found = []
    for row, username, display_name in rows:
        member = staff.staff_of_account(session, row.account_id)
        name = f"{member.first_name} {member.last_name.upper()}" if member else display_name
        found.append(NamedMember(id=row.id, account_id=row.account_id, username=username, name=name,
                                 profession=member.profession if member else "", role=row.role,
                                 since=row.added_at))
    return found


def _units(stay: EncounterPublic) -> list[tuple[str, datetime, datetime | None]]:
    """(unit, from, to) of each unit the stay went through, in order; to=None for the current one."""
    moves = [m for m in stay.movements if not m.cancelled and m.unit_code and m.kind != "pre_admission"]
    periods: list[tuple[str, datetime, datetime | None]] = []
    for m in moves:
        if periods and periods[-1][0] == m.unit_code:
            continue
        if periods:
            periods[-1] = (periods[-1][0], periods[-1][1], m.at)
        periods.append((m.unit_code or "", m.at, None))
    if periods and stay.ended_at is not None:
        periods[-1] = (periods[-1][0], periods[-1][1], stay.ended_at)
    return periods


def _in_team(session: Session, actor: Actor, encounter_id: uuid.UUID, unit_codes: set[str]) -> bool:
    named = session.execute(select(CareTeamMember.id).where(
        CareTeamMember.encounter_id == encounter_id, CareTeamMember.account_id == actor.account_id)).first()
    if named:
        return True
    return bool(unit_codes & {unit for _est, unit in staff.workplaces_of(session, actor.account_id)})


def _former(session: Session, encounter: Encounter) -> list[FormerMember]:
    events = session.scalars(select(audit.AuditEvent).where(
        audit.AuditEvent.patient_id == encounter.patient_id, audit.AuditEvent.action == MEMBER_REMOVED,
        audit.AuditEvent.target == str(encounter.id)).order_by(audit.AuditEvent.seq.desc()))
    return [FormerMember(name=str(e.details.get("name", "")), username=str(e.details.get("username", "")),
                         role=str(e.details.get("role", "")), since=e.details.get("since"), ended_at=e.at,
                         ended_by=e.actor_label) for e in events]


def view_care_team(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID, port: CareRelationshipPort, *,
                   search: str = "") -> CareTeamView:
    """The care team of a stay, and the directory search of the add form (audited)."""
    query = search.strip()[:100]
    with uow:
        s = uow.session
        now = uow.clock.now()
        encounter = _stay(s, encounter_id)
        access_patient(s, actor, encounter.patient_id, _purpose(actor), now=now, port=port, action=ACCESS_VIEW,
                       target=str(encounter.id))
        stay = record.get_encounter(s, encounter_id)
        names = {u.code: u.name for u in sites.unit_choices(s, stay.establishment_code)}
        units = [UnitTeam(unit_code=code, unit_name=names.get(code, code), since=start, until=end,
                          staff=[p for p in staff.list_staff(s, unit_code=code, limit=UNIT_STAFF_LIMIT)[0] if p.active])
                 for code, start, end in _units(stay)]
        named = _named(s, encounter_id)
        can_change = may_change(actor.roles, _in_team(s, actor, encounter_id, {u.unit_code for u in units}))
        found: list[StaffPublic] = []
        if query and can_change:
            taken = {m.username for m in named}
            found = [p for p in staff.list_staff(s, search=query, limit=SEARCH_LIMIT)[0]
                     if p.username not in taken and p.active]
        patient = identity.summaries(s, [encounter.patient_id])[encounter.patient_id]
        view = CareTeamView(patient=patient, stay=stay, named=named, units=units, former=_former(s, encounter),
                            can_change=can_change, search=query, found=found)
        uow.commit()
        return view


# --- changing -----------------------------------------------------------------------------------

def _check_changer(session: Session, actor: Actor, encounter: Encounter) -> None:
    stay = record.get_encounter(session, encounter.id)
    units = {code for code, _start, _end in _units(stay)}
    if not may_change(actor.roles, _in_team(session, actor, encounter.id, units)):
        raise NotInCareTeam("only the admission desk and the stay's physicians and nurses change its care team",
                            rule="NotInCareTeam")


def _open_for_change(session: Session, actor: Actor, encounter_id: uuid.UUID, port: CareRelationshipPort,
                     now: datetime) -> Encounter:
    """The stay whose team `actor` changes: through the door, then the rule of who may change it."""
    encounter = _stay(session, encounter_id)
    access_patient(session, actor, encounter.patient_id, _purpose(actor), now=now, port=port, action=ACCESS_CHANGE,
                   target=str(encounter.id))
    _check_changer(session, actor, encounter)
    return encounter


def add_member(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID, username: str, role: str,
               port: CareRelationshipPort) -> NamedMember:
    """Name a professional of the directory on the stay, in a team role."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        encounter = _open_for_change(s, actor, encounter_id, port, now)
        account = s.execute(select(Account).where(Account.username == username.strip().lower())).scalar_one_or_none()
        member = staff.staff_of_account(s, account.id) if account is not None else None
        if account is None or member is None or not account.active:
            raise StaffNotFound("no professional with this username in the directory", rule="StaffNotFound")
        # No unique constraint on (stay, account) and no migration here: two desks naming the same
        # person at once are serialised on the stay instead, so the check below sees the other.
        advisory_xact_lock(s, _CARE_TEAM_LOCK ^ (encounter_id.int & 0xFFFFFFFF))
        named = s.execute(select(CareTeamMember.id).where(CareTeamMember.encounter_id == encounter_id,
                                                         CareTeamMember.account_id == account.id)).first()
        team_role = check_new_member(role, member.profession, encounter.status, named is not None)
        row = CareTeamMember(id=uuid.uuid4(), encounter_id=encounter_id, account_id=account.id, role=team_role.code,
                             added_at=now)
        s.add(row)
        name = f"{member.first_name} {member.last_name.upper()}"
        audit.record(s, actor, MEMBER_ADDED, at=now, patient_id=encounter.patient_id, target=str(encounter.id),
                     details={"member_id": str(row.id), "username": account.username, "name": name,
                              "role": team_role.code, "nda": encounter.nda})
        uow.commit()
        return NamedMember(id=row.id, account_id=account.id, username=account.username, name=name,
                           profession=member.profession, role=team_role.code, since=now)


def end_member(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID, member_id: uuid.UUID,
               port: CareRelationshipPort) -> None:
    """End a named membership: the row goes, the audit trail keeps who, when, which member."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        encounter = _open_for_change(s, actor, encounter_id, port, now)
        row = s.get(CareTeamMember, member_id)
        if row is None or row.encounter_id != encounter_id:
            raise MemberNotFound("no such member of this stay's care team", rule="MemberNotFound")
        member = next(m for m in _named(s, encounter_id) if m.id == member_id)
        s.delete(row)
        audit.record(s, actor, MEMBER_REMOVED, at=now, patient_id=encounter.patient_id, target=str(encounter.id),
                     details={"member_id": str(row.id), "username": member.username, "name": member.name,
                              "role": row.role, "since": row.added_at.isoformat(), "nda": encounter.nda})
        uow.commit()


def import_member(session: Session, encounter_id: uuid.UUID, account_id: uuid.UUID, role: str, *,
                  at: datetime) -> None:
    """Name a member as a source system had it (synthetic data, migration); callers audit the batch."""
    if role not in TEAM_ROLES:
        raise UnknownTeamRole(f"unknown care-team role {role!r}", rule="UnknownTeamRole")
    session.add(CareTeamMember(id=uuid.uuid4(), encounter_id=encounter_id, account_id=account_id, role=role,
                               added_at=at))
