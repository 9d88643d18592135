"""Use cases of the patient index: register (with duplicate search), find, validate, qualify.

RNIV rules live in `identity.rules`; this module loads, applies them, writes the identity's
history and the audit trail in one transaction. Reading an identity goes through the one door,
`platform.access.access_patient`, with the care-relationship port wired in by app.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, func, insert, not_, select
from sqlalchemy.orm import Session

from naho.identity import rules
from naho.identity.errors import (
    IdentityTransitionRefused,
    InsAlreadyAssigned,
    InsNotRetrieved,
    InvalidIdentity,
    MergeRefused,
    PossibleDuplicates,
    StrictTraitsLocked,
)
from naho.identity.insi import InsiPort
from naho.identity.models import BlockingKey, IdentityEvent, NotDuplicate, Patient, PatientMerge
from naho.identity.schemas import Candidate, IdentityEventPublic, PatientCreate, PatientPublic, TraitsUpdate
from naho.platform import audit, outbox
from naho.platform.access import CareRelationshipPort, Purpose, access_patient, decide
from naho.platform.counters import next_number, reserve
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork

#: Verdicts that stop a registration until a person decides.
BLOCKING_VERDICTS = ("same", "probable")
#: Outbox topic of naho's ADT messages (IHE PAM FR): identity changes (ITI-30) go in the same
#: FIFO per patient as the movements record.service sends (ITI-31), and interop.hl7_sender
#: builds them with record.hl7.build_adt. Repeated here: identity may not import record.
ADT_TOPIC = "hl7.adt"


def _attributes(row: Patient) -> frozenset[rules.IdentityAttribute]:
    found = set()
    if row.homonym:
        found.add(rules.IdentityAttribute.HOMONYM)
    if row.doubtful:
        found.add(rules.IdentityAttribute.DOUBTFUL)
    if row.fictitious:
        found.add(rules.IdentityAttribute.FICTITIOUS)
    return frozenset(found)


def _state(row: Patient) -> rules.IdentityState:
    return rules.IdentityState(rules.IdentityStatus(row.status), _attributes(row))


def traits_of(row: Patient) -> rules.Traits:
    return rules.Traits(
        birth_name=row.birth_name, used_name=row.used_name, first_names=tuple(row.first_names.split()),
        sex=row.sex,  # type: ignore[arg-type]
        birth_date=row.birth_date, birth_place=row.birth_place,
    )


def to_public(row: Patient) -> PatientPublic:
    usable = rules.ins_usable(rules.IdentityStatus(row.status), _attributes(row))
    return PatientPublic(
        id=row.id, ipp=row.ipp, birth_name=row.birth_name, used_name=row.used_name, first_names=row.first_names,
        used_first_name=row.used_first_name, sex=row.sex, birth_date=row.birth_date, birth_place=row.birth_place,
        ins=row.ins if usable else None, ins_oid=row.ins_oid if usable else None, status=row.status,
        doubtful=row.doubtful, fictitious=row.fictitious, phone=row.phone, email=row.email, address=row.address,
        postcode=row.postcode, city=row.city, created_at=row.created_at,
    )


def _normalised(data: PatientCreate) -> PatientCreate:
    try:
        birth_name = rules.normalise_name(data.birth_name)
        first_names = " ".join(rules.normalise_name(n) for n in data.first_names.split())
        used_name = rules.normalise_name(data.used_name) if data.used_name else None
        used_first = rules.normalise_name(data.used_first_name) if data.used_first_name else None
    except rules.IdentityRuleError as exc:
        raise InvalidIdentity(str(exc)) from exc
    if not birth_name or not first_names:
        raise InvalidIdentity("the birth name and first names need at least one letter")
    return data.model_copy(update={"birth_name": birth_name, "first_names": first_names, "used_name": used_name,
                                   "used_first_name": used_first})


def _traits(data: PatientCreate) -> rules.Traits:
    return rules.Traits(birth_name=data.birth_name, used_name=data.used_name,
                        first_names=tuple(data.first_names.split()), sex=data.sex,  # type: ignore[arg-type]
                        birth_date=data.birth_date, birth_place=data.birth_place)


def find_candidates(session: Session, traits: rules.Traits, *, exclude: uuid.UUID | None = None,
                    limit: int = 10) -> list[Candidate]:
    """Patients that may be the same person: those sharing a blocking key, scored, best first."""
    keys = rules.blocking_keys(traits)
    ids = set(session.scalars(select(BlockingKey.patient_id).where(BlockingKey.key.in_(keys))))
    ids.discard(exclude)  # type: ignore[arg-type]
    if not ids:
        return []
    rows = session.scalars(select(Patient).where(Patient.id.in_(ids), Patient.merged_into_id.is_(None)))
    found = []
    for row in rows:
        result = rules.match(traits, traits_of(row))
        if result.verdict != "different":
            found.append(Candidate(patient=to_public(row), score=round(result.score, 3), verdict=result.verdict,
                                   reasons=list(result.reasons), twins_suspected=result.twins_suspected))
    found.sort(key=lambda c: c.score, reverse=True)
    return found[:limit]


def _index(session: Session, row: Patient) -> None:
    session.query(BlockingKey).filter(BlockingKey.patient_id == row.id).delete()
    session.add_all(BlockingKey(patient_id=row.id, key=key) for key in sorted(rules.blocking_keys(traits_of(row))))


def _event(session: Session, actor: Actor, row: Patient, kind: str, *, before: str | None = None,
           proof: str | None = None, **details: object) -> None:
    session.add(IdentityEvent(
        patient_id=row.id, at=row.updated_at, actor_id=actor.account_id, actor_label=actor.label, kind=kind,
        status_before=before, status_after=row.status, proof=proof, details=details,
    ))


def identity_evidence(session: Session, patient: PatientPublic) -> dict[str, Any]:
    """How the identity stands established (PAM FR ZFD-5 to ZFD-7): the proof checked, while the
    status rests on a checked document, and when INSi answered, while the INS is retrieved."""
    status = rules.IdentityStatus(patient.status)
    proof = at = None
    if status.document_checked:
        proof = session.scalar(select(IdentityEvent.proof).where(
            IdentityEvent.patient_id == patient.id, IdentityEvent.proof.is_not(None))
            .order_by(IdentityEvent.at.desc()).limit(1))
    if status.ins_retrieved:
        at = session.scalar(select(IdentityEvent.at).where(
            IdentityEvent.patient_id == patient.id, IdentityEvent.kind == "ins-retrieved")
            .order_by(IdentityEvent.at.desc()).limit(1))
    return {"proof": proof, "insi_at": at.isoformat() if at else None}


def adt_patient(session: Session, patient: PatientPublic) -> dict[str, Any]:
    """The identity as an ADT message shows it, in JSON values; the INS only once qualified
    (PatientPublic hides it otherwise: RNIV EXI SI 08, PAM FR §6.6.1), and how it was established."""
    return {
        "ipp": patient.ipp, "birth_name": patient.birth_name, "used_name": patient.used_name,
        "first_names": patient.first_names, "used_first_name": patient.used_first_name, "sex": patient.sex,
        "birth_date": patient.birth_date.isoformat(), "birth_place": patient.birth_place, "status": patient.status,
        "doubtful": patient.doubtful, "fictitious": patient.fictitious, "ins": patient.ins,
        "ins_oid": patient.ins_oid if patient.ins else None, "evidence": identity_evidence(session, patient),
    }


def _notify(uow: UnitOfWork, actor: Actor, trigger: str, patient: PatientPublic, *,
            prior: dict[str, Any] | None = None) -> None:
    """Put the ADT identity message (A28, A31, A47, A40) in the outbox, in the change's
    transaction, unless no receiver is configured or an interface made the change (a system
    that told us knows already, and echoing could loop)."""
    if ADT_TOPIC not in uow.channels or actor.has_any(Role.INTERFACE):
        return
    now = uow.clock.now()
    outbox.enqueue(uow.session, ADT_TOPIC, {
        "message": "identity", "trigger": trigger, "at": now.isoformat(),
        "patient": adt_patient(uow.session, patient),
        "prior": prior,
    }, now=now, ordering_key=f"{ADT_TOPIC}:{patient.id}")


def _notify_change(uow: UnitOfWork, actor: Actor, before: PatientPublic, after: PatientPublic) -> None:
    """A31 for a change of traits or status; A47 when the INS receivers hold stops being the
    patient's: replaced, or no longer shareable (qualified → lower status, PAM FR §4.4.3, §4.4.4),
    MRG-1 naming it. An INS newly shareable is an A31 (§4.1: a new identifier)."""
    if before.ins and before.ins != after.ins:
        _notify(uow, actor, "A47", after, prior={"ins": before.ins, "ins_oid": before.ins_oid})
    else:
        _notify(uow, actor, "A31", after)


def register_patient(uow: UnitOfWork, actor: Actor, data: PatientCreate, *,
                     confirm_reason: str | None = None) -> PatientPublic:
    """Create a provisional identity with a new IPP, unless it may already exist.

    A same or probable candidate stops the registration (PossibleDuplicates lists them) until the
    person confirms it is somebody else, with a reason that goes into the identity's history.
    """
    data = _normalised(data)
    with uow:
        s = uow.session
        now = uow.clock.now()
        candidates = find_candidates(s, _traits(data))
        blocking = [c for c in candidates if c.verdict in BLOCKING_VERDICTS]
        if blocking and not (confirm_reason and confirm_reason.strip()):
            raise PossibleDuplicates(
                "patients that may be this person already exist",
                candidates=[{"id": str(c.patient.id), "ipp": c.patient.ipp, "name": c.patient.display_name,
                             "birth_date": c.patient.birth_date.isoformat(), "score": c.score,
                             "verdict": c.verdict, "twins_suspected": c.twins_suspected} for c in candidates],
            )
        row = Patient(
            id=uuid.uuid4(), ipp=f"{next_number(s, 'ipp', start=1000001):08d}",
            status=str(rules.IdentityStatus.PROVISIONAL),
            created_at=now, updated_at=now, **data.model_dump(),
        )
        s.add(row)
        s.flush()
        _index(s, row)
        _event(s, actor, row, "created", confirmed_not_duplicate_of=[str(c.patient.id) for c in blocking],
               reason=(confirm_reason or "").strip() or None)
        audit.record(s, actor, "patient:identity:create", at=now, patient_id=row.id, target=row.ipp,
                     reason=(confirm_reason or None))
        result = to_public(row)
        _notify(uow, actor, "A28", result)
        uow.commit()
        return result


def patient_exists(session: Session, patient_id: uuid.UUID) -> bool:
    return session.get(Patient, patient_id) is not None


def summaries(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PatientPublic]:
    """Identities of patients another domain already has access to (bed board, lists)."""
    wanted = set(ids)
    if not wanted:
        return {}
    return {row.id: to_public(row) for row in session.scalars(select(Patient).where(Patient.id.in_(wanted)))}


def get_patient(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, purpose: Purpose,
                port: CareRelationshipPort) -> PatientPublic:
    """One identity, through the door (audited, same answer for absent and forbidden)."""
    with uow:
        s = uow.session
        access_patient(s, actor, patient_id, purpose, now=uow.clock.now(), port=port,
                       action="patient:identity:view")
        row = s.get(Patient, patient_id)
        assert row is not None
        result = to_public(row)
        uow.commit()
        return result


def history(session: Session, patient_id: uuid.UUID) -> list[IdentityEventPublic]:
    rows = session.scalars(select(IdentityEvent).where(IdentityEvent.patient_id == patient_id)
                           .order_by(IdentityEvent.at.desc()))
    return [IdentityEventPublic(at=r.at, actor_label=r.actor_label, kind=r.kind, status_before=r.status_before,
                                status_after=r.status_after, proof=r.proof) for r in rows]


def prefix_range(column: Any, prefix: str) -> ColumnElement[bool]:
    """`column` starts with `prefix`, as a range a B-tree index answers (LIKE 'x%' uses no index on
    SQLite, whose LIKE ignores case, nor on PostgreSQL outside the C collation). Stored names are
    normalised (A-Z, space, hyphen, apostrophe: `rules.normalise_name`), so in code-point order
    every name starting with the prefix lies in [prefix, prefix with its last letter + 1)."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return and_(column >= prefix, column < upper)


def search_patients(uow: UnitOfWork, actor: Actor, query: str, port: CareRelationshipPort, *,
                    birth_date: date | None = None, among: Collection[uuid.UUID] | None = None,
                    limit: int = 30) -> list[PatientPublic]:
    """By IPP, INS or name (birth or used, then first name), optionally birth date, or among the
    patients another domain found (`among`: e.g. the patient of a stay number; `query` is then
    only what the trail records); only the patients this person may open are returned, and the
    search is audited. A name is two ordered range
    scans (birth name, then used name) that stop at the page, whatever the size of the index."""
    text = query.strip()
    with uow:
        s = uow.session
        now = uow.clock.now()
        if not text and birth_date is None and among is None:
            return []
        q = select(Patient).where(Patient.merged_into_id.is_(None))
        if birth_date is not None:
            q = q.where(Patient.birth_date == birth_date)
        if among is not None:
            q = q.where(Patient.id.in_(list(among)))
        queries: list[tuple[Any, Any]] = []
        if among is not None:
            queries.append((q, Patient.birth_name))
        elif text.isdigit() and len(text) <= 8:
            queries.append((q.where(Patient.ipp == text.zfill(8)), Patient.birth_name))
        elif len(text) == 15 and text[:1] in "12":
            # The INS identifies only a qualified identity (RNIV EXI SI 08).
            queries.append((q.where(Patient.ins == text.upper(),
                                    Patient.status == str(rules.IdentityStatus.QUALIFIED)), Patient.birth_name))
        elif text:
            words = rules.normalise_name(text).split()
            if not words:
                return []
            if len(words) > 1:
                q = q.where(Patient.first_names.like(f"{words[1]}%"))
            birth, used = prefix_range(Patient.birth_name, words[0]), prefix_range(Patient.used_name, words[0])
            queries += [(q.where(birth), Patient.birth_name), (q.where(used, not_(birth)), Patient.used_name)]
        else:
            queries.append((q, Patient.birth_name))
        found: list[tuple[tuple[str, str, str], Patient]] = []
        for select_rows, name in queries:
            rows = s.scalars(select_rows.order_by(name, Patient.first_names, Patient.id).limit(limit * 4))
            found += [((getattr(r, name.key) or "", r.first_names, str(r.id)), r) for r in rows]
        found.sort(key=lambda pair: pair[0])
        purposes = (Purpose.ADMINISTRATION, Purpose.IDENTITY, Purpose.CARE)
        visible = [r for _key, r in found if any(decide(s, actor, r.id, p, now, port) for p in purposes)][:limit]
        audit.record(s, actor, "patient:search", at=now, target=text[:100] or None,
                     details={"shown": [str(r.id) for r in visible]})
        uow.commit()
        return [to_public(r) for r in visible]


def _transition(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort,
                event: rules.IdentityEvent, kind: str, *, proof: str | None = None,
                ins: tuple[str, str] | None = None, **details: object) -> PatientPublic:
    with uow:
        s = uow.session
        now = uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.IDENTITY, now=now, port=port, action=f"patient:identity:{kind}")
        row = s.get(Patient, patient_id)
        assert row is not None
        before = row.status
        shown_before = to_public(row)
        try:
            state = rules.next_status(_state(row), event=event)
        except rules.IdentityRuleError as exc:
            raise IdentityTransitionRefused(str(exc), rule=type(exc).__name__) from exc
        row.status = str(state.status)
        row.doubtful = rules.IdentityAttribute.DOUBTFUL in state.attributes
        row.fictitious = rules.IdentityAttribute.FICTITIOUS in state.attributes
        if ins is not None:
            row.ins, row.ins_oid = ins
        if not state.status.ins_retrieved:
            row.ins, row.ins_oid = None, None
        row.updated_at = now
        _event(s, actor, row, kind, before=before, proof=proof, **details)
        result = to_public(row)
        if result != shown_before:
            _notify_change(uow, actor, shown_before, result)
        uow.commit()
        return result


def validate_identity(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, proof: str,
                      port: CareRelationshipPort) -> PatientPublic:
    """The traits were checked against a document presented in the original (RNIV §3.3.2)."""
    try:
        kind = rules.ProofKind(proof)
    except ValueError as exc:
        raise InvalidIdentity(f"unknown identification device {proof!r}") from exc
    return _transition(uow, actor, patient_id, port, rules.DocumentChecked(kind), "validate", proof=str(kind))


def retrieve_ins(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, insi: InsiPort,
                 port: CareRelationshipPort) -> PatientPublic:
    """Ask the INSi teleservice; an answer whose traits match the record's retrieves the INS (§4.4)."""
    with uow:
        row = uow.session.get(Patient, patient_id)
        traits = traits_of(row) if row else None
    answer = insi.search(traits) if traits else None
    if traits is not None and answer is not None and not rules.ins_is_valid(answer.ins):
        answer = None
    if answer is None or rules.match(traits, answer.traits).verdict != "same":  # type: ignore[arg-type]
        with uow:  # the attempt is traced even when it fails
            if row is not None:
                audit.record(uow.session, actor, "patient:identity:insi-miss", at=uow.clock.now(),
                             patient_id=patient_id)
                uow.commit()
        raise InsNotRetrieved("INSi returned no identity matching these traits")
    with uow:
        holder = uow.session.execute(select(Patient.ipp).where(Patient.ins == answer.ins,
                                                               Patient.id != patient_id)).scalar_one_or_none()
    if holder is not None:
        raise InsAlreadyAssigned(f"this INS already belongs to IPP {holder}: a probable duplicate", ipp=holder)
    return _transition(uow, actor, patient_id, port, rules.InsRetrieved(), "ins-retrieved",
                       ins=(answer.ins, answer.oid), oid=answer.oid)


def mark_doubtful(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, reason: str,
                  port: CareRelationshipPort) -> PatientPublic:
    """Doubt on the identity (confused patient, suspected theft): back to provisional, doubtful."""
    if len(reason.strip()) < 5:
        raise InvalidIdentity("state why the identity is doubtful")
    return _transition(uow, actor, patient_id, port, rules.Downgraded(rules.DowngradeReason.DOUBT), "doubt",
                       reason=reason.strip())


def duplicate_worklist(uow: UnitOfWork, actor: Actor, *, limit: int = 100) -> list[tuple[PatientPublic, Candidate]]:
    """Pairs of records sharing a blocking key and scored at least "possible", best first,
    excluding pairs already declared distinct; for identity-vigilance staff (audited)."""
    with uow:
        s = uow.session
        a, b = BlockingKey.__table__.alias("a"), BlockingKey.__table__.alias("b")
        pairs = s.execute(
            select(a.c.patient_id, b.c.patient_id).join(b, a.c.key == b.c.key)
            .where(a.c.patient_id < b.c.patient_id).distinct().limit(20_000)
        ).all()
        declared = {(r.first_id, r.second_id) for r in s.scalars(select(NotDuplicate))}
        ids = {i for pair in pairs for i in pair}
        rows = {r.id: r for r in s.scalars(
            select(Patient).where(Patient.id.in_(ids), Patient.merged_into_id.is_(None)))}
        found: list[tuple[PatientPublic, Candidate]] = []
        for first, second in pairs:
            if first not in rows or second not in rows or (first, second) in declared:
                continue
            result = rules.match(traits_of(rows[first]), traits_of(rows[second]))
            if result.verdict != "different":
                found.append((to_public(rows[first]), Candidate(
                    patient=to_public(rows[second]), score=round(result.score, 3), verdict=result.verdict,
                    reasons=list(result.reasons), twins_suspected=result.twins_suspected)))
        found.sort(key=lambda pair: pair[1].score, reverse=True)
        found = found[:limit]
        audit.record(s, actor, "patient:duplicates:view", at=uow.clock.now(), details={"pairs": len(found)})
        uow.commit()
        return found


def declare_distinct(uow: UnitOfWork, actor: Actor, first: uuid.UUID, second: uuid.UUID,
                     port: CareRelationshipPort) -> None:
    """Identity vigilance decided these are two people (e.g. twins): the pair leaves the worklist."""
    low, high = sorted((first, second))
    with uow:
        s = uow.session
        now = uow.clock.now()
        for patient_id in (low, high):
            access_patient(s, actor, patient_id, Purpose.IDENTITY, now=now, port=port,
                           action="patient:identity:distinct")
        exists = s.execute(select(NotDuplicate.id).where(NotDuplicate.first_id == low,
                                                         NotDuplicate.second_id == high)).first()
        if not exists:
            s.add(NotDuplicate(first_id=low, second_id=high, at=now, actor_label=actor.label))
        uow.commit()


def id_by_ipp(session: Session, ipp: str) -> uuid.UUID | None:
    """The patient behind an IPP read from a wristband or a label (the caller decides access)."""
    return session.execute(select(Patient.id).where(Patient.ipp == ipp.strip().zfill(8))).scalar_one_or_none()


def import_identity(session: Session, traits: rules.Traits, *, status: rules.IdentityStatus, now: datetime,
                    actor_label: str, ins: tuple[str, str] | None = None, phone: str | None = None,
                    ipp_number: int | None = None) -> uuid.UUID:
    """Load an identity as it stands in a source system (synthetic data, migration from a former
    system): no duplicate stop, a new IPP, searchable, its history starts with this import.

    Not a user action: callers audit the batch.
    """
    row = Patient(
        id=uuid.uuid4(), ipp=f"{ipp_number or next_number(session, 'ipp', start=1000001):08d}",
        birth_name=rules.normalise_name(traits.birth_name),
        used_name=rules.normalise_name(traits.used_name) if traits.used_name else None,
        first_names=" ".join(rules.normalise_name(n) for n in traits.first_names), used_first_name=None,
        sex=traits.sex, birth_date=traits.birth_date, birth_place=traits.birth_place,
        ins=ins[0] if ins and status.ins_retrieved else None, ins_oid=ins[1] if ins and status.ins_retrieved else None,
        status=str(status), phone=phone, created_at=now, updated_at=now,
    )
    session.add(row)
    session.flush()
    _index(session, row)
    session.add(IdentityEvent(patient_id=row.id, at=now, actor_id=None, actor_label=actor_label, kind="imported",
                              status_before=None, status_after=row.status, proof=None, details={}))
    return row.id


def count_patients(session: Session) -> int:
    return session.execute(select(func.count()).select_from(Patient)).scalar_one()


# --- merges (RNIV: traced, undoable; the data of the merged record follows the survivor) ---------

class PatientDataMover(Protocol):
    """Implemented by each domain that holds patient-owned rows (record, later results…)."""

    name: str

    def move(self, session: Session, from_id: uuid.UUID, to_id: uuid.UUID) -> list[str]:
        """Re-point this domain's rows of `from_id` to `to_id`; return the ids moved."""
        ...

    def move_back(self, session: Session, row_ids: list[str], to_id: uuid.UUID) -> None:
        """Send exactly these rows back to `to_id` (undo of a merge)."""
        ...


@dataclass(frozen=True)
class PatientsMerged:
    merge_id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID


@dataclass(frozen=True)
class MergeUndone:
    merge_id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID


def merge_patients(uow: UnitOfWork, actor: Actor, survivor_id: uuid.UUID, merged_id: uuid.UUID, reason: str,
                   port: CareRelationshipPort, movers: Sequence[PatientDataMover], *,
                   twins_ruled_out: bool = False) -> uuid.UUID:
    """Make two records of one person one: the merged record's data follows the survivor, the
    merged record only redirects afterwards. Refused for two different INS, for pairs declared
    distinct, and for a pair the matcher suspects to be twins unless the person merging states
    that twins were ruled out (documents checked). Identity vigilance only; undo with `undo_merge`."""
    if survivor_id == merged_id:
        raise MergeRefused("a record cannot be merged into itself")
    if len(reason.strip()) < 5:
        raise MergeRefused("state why these records are the same person")
    with uow:
        s = uow.session
        now = uow.clock.now()
        for patient_id in (survivor_id, merged_id):
            access_patient(s, actor, patient_id, Purpose.IDENTITY, now=now, port=port,
                           action="patient:identity:merge")
        survivor, merged = s.get(Patient, survivor_id), s.get(Patient, merged_id)
        assert survivor is not None and merged is not None
        if survivor.merged_into_id or merged.merged_into_id:
            raise MergeRefused("one of these records was already merged")
        if survivor.ins and merged.ins and survivor.ins != merged.ins:
            raise MergeRefused("two different INS: these are two different people", rule="DifferentIns")
        low, high = sorted((survivor_id, merged_id))
        if s.execute(select(NotDuplicate.id).where(NotDuplicate.first_id == low,
                                                   NotDuplicate.second_id == high)).first():
            raise MergeRefused("identity vigilance declared these two records distinct people",
                               rule="DeclaredDistinct")
        if not twins_ruled_out and rules.match(traits_of(survivor), traits_of(merged)).twins_suspected:
            raise MergeRefused("these records may be twins: check the documents, then confirm twins are ruled out",
                               rule="TwinsSuspected")
        moved = {mover.name: mover.move(s, merged_id, survivor_id) for mover in movers}
        if merged.ins and not survivor.ins:
            survivor.ins, survivor.ins_oid, merged.ins = merged.ins, merged.ins_oid, None
        merged.merged_into_id = survivor_id
        merged.updated_at = survivor.updated_at = now
        s.query(BlockingKey).filter(BlockingKey.patient_id == merged_id).delete()
        row = PatientMerge(survivor_id=survivor_id, merged_id=merged_id, at=now, actor_label=actor.label,
                           reason=reason.strip(), moved=moved)
        s.add(row)
        s.flush()
        _event(s, actor, survivor, "merge", before=survivor.status, merged=merged.ipp, reason=reason.strip(),
               twins_ruled_out=twins_ruled_out)
        _event(s, actor, merged, "merged-into", before=merged.status, survivor=survivor.ipp)
        for patient_id in (survivor_id, merged_id):
            audit.record(s, actor, "patient:identity:merged", at=now, patient_id=patient_id, target=str(row.id),
                         reason=reason.strip())
        uow.emit(PatientsMerged(row.id, survivor_id, merged_id))
        # A40 (PAM FR §2.1): PID the survivor, MRG-1 the merged record's IPP. An undo has no
        # PAM FR message: receivers are told by identity vigilance.
        _notify(uow, actor, "A40", to_public(survivor), prior={"ipp": merged.ipp})
        uow.commit()
        return row.id


def undo_merge(uow: UnitOfWork, actor: Actor, merge_id: uuid.UUID, port: CareRelationshipPort,
               movers: Sequence[PatientDataMover]) -> None:
    """Split a merge back: the merged record comes back with exactly the rows that moved."""
    with uow:
        s = uow.session
        now = uow.clock.now()
        row = s.get(PatientMerge, merge_id)
        if row is None or row.undone_at is not None:
            raise MergeRefused("no such merge to undo")
        access_patient(s, actor, row.survivor_id, Purpose.IDENTITY, now=now, port=port,
                       action="patient:identity:unmerge")
        merged = s.get(Patient, row.merged_id)
        assert merged is not None
        for mover in movers:
            mover.move_back(s, list(row.moved.get(mover.name, [])), row.merged_id)
        merged.merged_into_id = None
        merged.updated_at = now
        s.flush()
        _index(s, merged)
        row.undone_at, row.undone_by = now, actor.label
        _event(s, actor, merged, "unmerge", before=merged.status, merge=str(row.id))
        for patient_id in (row.survivor_id, row.merged_id):
            audit.record(s, actor, "patient:identity:unmerged", at=now, patient_id=patient_id, target=str(row.id))
        uow.emit(MergeUndone(row.id, row.survivor_id, row.merged_id))
        uow.commit()


MergeLine = tuple[PatientMerge, PatientPublic | None, PatientPublic | None]


def merges(session: Session, *, limit: int = 100) -> list[MergeLine]:
    rows = list(session.scalars(select(PatientMerge).order_by(PatientMerge.at.desc()).limit(limit)))
    people = summaries(session, [r.survivor_id for r in rows] + [r.merged_id for r in rows])
    return [(r, people.get(r.survivor_id), people.get(r.merged_id)) for r in rows]


def merged_into(session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
    """Where a merged record redirects (None for a live record)."""
    return session.execute(select(Patient.merged_into_id).where(Patient.id == patient_id)).scalar_one_or_none()


STRICT_TRAITS = ("birth_name", "first_names", "sex", "birth_date", "birth_place")


def update_traits(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, data: TraitsUpdate,
                  port: CareRelationshipPort) -> PatientPublic:
    """Correct an identity's traits (RNIV): the strict traits of an identity whose INS was
    retrieved are locked (they come from INSi); changing a strict trait of a validated identity
    takes it back to provisional, to be checked again; other traits change freely. Traced."""
    changes = data.model_dump(exclude_unset=True, exclude={"reason"})
    with uow:
        s = uow.session
        now = uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.IDENTITY, now=now, port=port,
                       action="patient:identity:update")
        row = s.get(Patient, patient_id)
        assert row is not None
        try:
            for name in ("birth_name", "used_name", "used_first_name"):
                if changes.get(name):
                    changes[name] = rules.normalise_name(changes[name])
            if changes.get("first_names"):
                changes["first_names"] = " ".join(rules.normalise_name(n) for n in changes["first_names"].split())
        except rules.IdentityRuleError as exc:
            raise InvalidIdentity(str(exc)) from exc
        changed = {k: v for k, v in changes.items() if getattr(row, k) != v}
        strict = sorted(k for k in changed if k in STRICT_TRAITS)
        before = row.status
        shown_before = to_public(row)
        if strict and rules.IdentityStatus(row.status).ins_retrieved:
            raise StrictTraitsLocked("the strict traits of this identity come from INSi: "
                                     + ", ".join(strict) + " cannot be changed by hand", traits=strict)
        if strict and rules.IdentityStatus(row.status) is rules.IdentityStatus.VALIDATED:
            state = rules.next_status(_state(row), event=rules.Downgraded(rules.DowngradeReason.STRICT_TRAIT_CHANGE))
            row.status = str(state.status)
        old = {k: str(getattr(row, k)) if getattr(row, k) is not None else None for k in changed}
        for name, value in changed.items():
            setattr(row, name, value)
        row.updated_at = now
        s.flush()
        if strict:
            _index(s, row)
        _event(s, actor, row, "traits", before=before, reason=data.reason.strip(),
               changed={k: [old[k], str(v) if v is not None else None] for k, v in changed.items()})
        audit.record(s, actor, "patient:identity:update", at=now, patient_id=patient_id, reason=data.reason.strip(),
                     details={"traits": sorted(changed)})
        result = to_public(row)
        if changed:
            _notify_change(uow, actor, shown_before, result)
        uow.commit()
        return result


def import_identities(session: Session, identities: Sequence[PatientCreate], *, now: datetime,
                      actor_label: str) -> list[uuid.UUID]:
    """Load many identities at once (a legacy record through a FHIR transaction bundle): new
    provisional records with new IPPs, written in bulk (one IPP reservation, one multi-row insert
    per table), in the caller's transaction.

    No duplicate stop (scoring each record against the index would cost more than the load):
    the blocking keys are written as for any registration, so `duplicate_worklist` shows identity
    vigilance every imported record that may be somebody already known. Not a user action:
    callers audit the batch.
    """
    if not identities:
        return []
    ipps = reserve(session, "ipp", len(identities), start=1000001)
    patients: list[dict[str, object]] = []
    keys: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    for data, number in zip(identities, ipps, strict=True):
        data = _normalised(data)
        patient_id = uuid.uuid4()
        patients.append({"id": patient_id, "ipp": f"{number:08d}", "status": str(rules.IdentityStatus.PROVISIONAL),
                         "homonym": False, "doubtful": False, "fictitious": False, "merged_into_id": None,
                         "ins": None, "ins_oid": None, "created_at": now, "updated_at": now, **data.model_dump()})
        keys += [{"id": uuid.uuid4(), "patient_id": patient_id, "key": key}
                 for key in sorted(rules.blocking_keys(_traits(data)))]
        events.append({"id": uuid.uuid4(), "patient_id": patient_id, "at": now, "actor_id": None,
                       "actor_label": actor_label, "kind": "imported", "status_before": None,
                       "status_after": str(rules.IdentityStatus.PROVISIONAL), "proof": None, "details": {}})
    session.execute(insert(Patient.__table__), patients)  # Core: the ORM bulk path costs as much again
    session.execute(insert(BlockingKey.__table__), keys)
    session.execute(insert(IdentityEvent.__table__), events)
    return [p["id"] for p in patients]  # type: ignore[misc]
