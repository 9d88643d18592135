"""The audit trail as FHIR R4 AuditEvent resources (IHE BALP conventions where they fit), and its search.

The trail stores one row per event with a `source:subject:action` tag (platform.audit); FHIR wants
a type (DICOM DCM codes), a subtype (here the tag itself, under naho's system), an action
(C, R, U, D or E, from the tag's last word), an outcome (4, minor failure, for a refusal), the
agent (a Practitioner when the account belongs to the staff directory) and the entities: the
patient, and the target the event names. Who may read it is the facade's policy; reading it is
itself audited there, as on the /admin/audit page.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent
from sqlalchemy import Select, false, not_, or_, select
from sqlalchemy.orm import Session

from naho.platform.audit import AuditEvent as AuditRow
from naho.platform.security.models import Account
from naho.staff import fhir as staff_fhir
from naho.staff import service as staff

#: naho's audit tags (platform.audit.AuditTag and the `patient:…` actions of the door).
SUBTYPE_SYSTEM = "https://naho.ght-artois.fr/fhir/CodeSystem/audit-action"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ACTIONS = frozenset({"C", "R", "U", "D", "E"})

#: The last word of a tag → FHIR AuditEvent.action; any other word executes something (E).
_ACTION_BY_VERB = {
    "view": "R", "list": "R", "search": "R", "denied": "R", "everything": "R", "insi-miss": "R",
    "create": "C", "admit": "C", "pre-admit": "C", "import": "C", "enable": "C",
    "update": "U", "transfer": "U", "leave": "U", "return": "U", "discharge": "U", "class": "U", "cancel": "U",
    "merge": "U", "merged": "U", "unmerge": "U", "unmerged": "U", "distinct": "U", "switch": "U",
    "change": "U", "retry": "U", "break-the-glass-review": "U",
    "revoke": "D",
}
_FAILURES = ("denied", "failure", "throttled")
#: Purpose (platform.access.Purpose) → v3 ActReason purpose of use; break-the-glass is ETREAT.
_PURPOSE = {"care": ("TREAT", "treatment"), "administration": ("HOPERAT", "healthcare operations"),
            "identity": ("HOPERAT", "healthcare operations"), "self": ("PATRQT", "patient requested")}


def _verb(tag: str) -> str:
    return tag.rsplit(":", 1)[-1]


def action_of(tag: str) -> str:
    return _ACTION_BY_VERB.get(_verb(tag), "E")


def _type(tag: str) -> tuple[str, str]:
    if tag == "patient:search":
        return "110112", "Query"
    if tag.startswith("patient:"):
        return "110110", "Patient Record"
    if tag.startswith(("account:login", "account:mfa", "account:session")):
        return "110114", "User Authentication"
    if tag.startswith("platform:audit"):
        return "110101", "Audit Log Used"
    return "110100", "Application Activity"


def _purpose(row: AuditRow) -> list[dict[str, Any]] | None:
    details = row.details or {}
    coding = _PURPOSE.get(str(details.get("purpose")))
    if details.get("basis") == "break_the_glass" or row.action == "patient:record:break-the-glass":
        coding = ("ETREAT", "Emergency Treatment")
    if coding is None and not row.reason:
        return None
    return [{"coding": [{"system": ACT_REASON, "code": coding[0], "display": coding[1]}] if coding else None,
             "text": row.reason}]


def audit_event_resource(row: AuditRow, practitioners: dict[uuid.UUID, uuid.UUID]) -> AuditEvent:
    """One row of the trail; `practitioners` maps the accounts of the staff directory to their
    Practitioner id (an account outside it, a system, is named only)."""
    code, display = _type(row.action)
    staff_id = practitioners.get(row.actor_id) if row.actor_id else None
    who = {"reference": f"Practitioner/{staff_id}", "display": row.actor_label} if staff_id \
        else {"display": row.actor_label}
    details = [{"type": str(k), "valueString": str(v)} for k, v in sorted((row.details or {}).items())
               if v not in (None, "")]
    entities: list[dict[str, Any]] = []
    if row.patient_id:
        entities.append({"what": {"reference": f"Patient/{row.patient_id}"},
                         "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                         "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}})
    if row.target:
        entities.append({"name": row.target, "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}})
    if details:
        if not entities:
            entities.append({"name": row.action, "type": {"system": ENTITY_TYPE, "code": "2",
                                                         "display": "System Object"}})
        entities[0]["detail"] = details
    return AuditEvent(
        id=str(row.id),
        type={"system": DCM, "code": code, "display": display},
        subtype=[{"system": SUBTYPE_SYSTEM, "code": row.action}],
        action=action_of(row.action), recorded=row.at,
        outcome="4" if _verb(row.action) in _FAILURES else "0",
        purposeOfEvent=_purpose(row),
        agent=[{"who": who, "requestor": True,
                "network": {"address": row.address, "type": "2"} if row.address else None}],
        source={"site": "naho", "observer": {"display": "naho"},
                "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}]},
        entity=entities or None,
    )


@dataclass(frozen=True)
class AuditCriteria:
    """A search of the trail in plain values: each given criterion narrows it."""

    patient_id: uuid.UUID | None = None
    #: The account behind the agent; None not given. An agent the directory does not know finds nothing.
    account_ids: tuple[uuid.UUID, ...] | None = None
    agent_name: str | None = None
    actions: frozenset[str] | None = None
    subtypes: tuple[str, ...] | None = None
    since: datetime | None = None
    before: datetime | None = None


def _action_clause(actions: frozenset[str]) -> Any:
    def ends_with(verbs: Iterable[str]) -> list[Any]:
        return [AuditRow.action.like(f"%:{verb}") for verb in verbs]

    clauses = ends_with(v for v, a in _ACTION_BY_VERB.items() if a in actions)
    if "E" in actions:
        clauses.append(not_(or_(*ends_with(_ACTION_BY_VERB))))
    return or_(*clauses) if clauses else false()


def _query(c: AuditCriteria) -> Select[Any]:
    query = select(AuditRow)
    if c.patient_id is not None:
        query = query.where(AuditRow.patient_id == c.patient_id)
    if c.account_ids is not None:
        query = query.where(AuditRow.actor_id.in_(c.account_ids) if c.account_ids else false())
    if c.agent_name:
        query = query.where(AuditRow.actor_label.ilike(f"%{c.agent_name.strip()}%"))
    if c.actions is not None:
        query = query.where(_action_clause(c.actions))
    if c.subtypes is not None:
        query = query.where(AuditRow.action.in_(c.subtypes) if c.subtypes else false())
    if c.since is not None:
        query = query.where(AuditRow.at >= c.since)
    if c.before is not None:
        query = query.where(AuditRow.at < c.before)
    return query


def _practitioners(session: Session, rows: list[AuditRow]) -> dict[uuid.UUID, uuid.UUID]:
    found = {}
    for account_id in {r.actor_id for r in rows if r.actor_id}:
        member = staff.staff_of_account(session, account_id)
        if member is not None:
            found[account_id] = member.id
    return found


def find_audit_events(session: Session, c: AuditCriteria, *, offset: int, count: int) -> tuple[list[AuditEvent], bool]:
    """A page of the trail, newest first, and whether more follow (no total: the trail is long)."""
    rows = list(session.scalars(_query(c).order_by(AuditRow.seq.desc()).offset(offset).limit(count + 1)))
    shown = rows[:count]
    practitioners = _practitioners(session, shown)
    return [audit_event_resource(r, practitioners) for r in shown], len(rows) > count


def read_audit_event(session: Session, event_id: uuid.UUID) -> AuditEvent | None:
    row = session.scalars(select(AuditRow).where(AuditRow.id == event_id)).first()
    return audit_event_resource(row, _practitioners(session, [row])) if row else None


def account_of_practitioner(session: Session, staff_id: uuid.UUID) -> uuid.UUID | None:
    """The account a Practitioner of the directory signs in with (the trail records accounts)."""
    member = staff_fhir.find_staff(session, staff_id)
    if member is None:
        return None
    return session.scalars(select(Account.id).where(Account.username == member.username)).first()
