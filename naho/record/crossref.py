"""Cross-reference of foreign identifiers: what another system calls our patients and stays.

A sender's IPP (PID-3 type PI), account number (PID-18, AN) and visit number (PV1-19, VN) are
kept the first time a message names them with one of our patients or stays, so that its later
messages naming them only find them (IHE PAM: each domain keeps its own identifiers; a
consumer maps them). One (assigning authority, type, value) names one thing, for good: a
foreign identifier never moves silently to another patient; a merge is followed by lookups
(the merged record redirects), a moved account (A44) keeps pointing to its stay.

Functions work in the caller's transaction (the HL7 listener lends one to a whole message) and
never check access: callers are interfaces already acting for the patient.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from naho.platform.errors import Conflict
from naho.record.models import ForeignIdentifier

PATIENT = "PI"
ACCOUNT = "AN"
VISIT = "VN"


class ForeignIdentifierConflict(Conflict):
    """This foreign identifier already names another patient or stay: the sender and naho
    disagree on who is who, and a person (identity vigilance) must look before anything moves."""


def _key(authority: str, value: str) -> tuple[str, str]:
    return authority.strip().upper()[:100], value.strip()[:100]


def _row(session: Session, authority: str, kind: str, value: str) -> ForeignIdentifier | None:
    authority, value = _key(authority, value)
    return session.execute(select(ForeignIdentifier).where(
        ForeignIdentifier.authority == authority, ForeignIdentifier.kind == kind,
        ForeignIdentifier.value == value)).scalar_one_or_none()


def patient_of(session: Session, authority: str, value: str) -> uuid.UUID | None:
    """The patient a sender's IPP was learnt for (before any merge: callers follow merges)."""
    row = _row(session, authority, PATIENT, value)
    return row.patient_id if row else None


def encounter_of(session: Session, authority: str, kind: str, value: str) -> uuid.UUID | None:
    """The stay a sender's account (AN) or visit (VN) number was learnt for."""
    row = _row(session, authority, kind, value)
    return row.encounter_id if row else None


def remember_patient(session: Session, authority: str, value: str, patient_id: uuid.UUID, *, now: datetime,
                     source: str) -> bool:
    """Keep that the sender calls this patient `value`; True if it was new. Refused if it
    already names another record (callers first follow merges: a merged record is the same)."""
    return _remember(session, authority, PATIENT, value, patient_id=patient_id, now=now, source=source,
                     same=frozenset({patient_id}))


def remember_encounter(session: Session, authority: str, kind: str, value: str, encounter_id: uuid.UUID, *,
                       now: datetime, source: str) -> bool:
    """Keep that the sender calls this stay `value` (kind AN or VN); True if it was new."""
    if kind not in (ACCOUNT, VISIT):
        raise ValueError(f"a stay is named by an account (AN) or visit (VN) number, not {kind}")
    return _remember(session, authority, kind, value, encounter_id=encounter_id, now=now, source=source,
                     same=frozenset({encounter_id}))


def _remember(session: Session, authority: str, kind: str, value: str, *, now: datetime, source: str,
              same: frozenset[uuid.UUID], patient_id: uuid.UUID | None = None,
              encounter_id: uuid.UUID | None = None) -> bool:
    if not authority.strip() or not value.strip():
        return False  # an identifier without its domain names nobody for sure
    found = _row(session, authority, kind, value)
    if found is not None:
        target = found.patient_id if kind == PATIENT else found.encounter_id
        if target not in same:
            what = "patient" if kind == PATIENT else "stay"
            raise ForeignIdentifierConflict(
                f"{kind} {value} of {authority} already names another {what} in naho", rule="ForeignIdentifierConflict")
        return False
    key_authority, key_value = _key(authority, value)
    try:
        # Two messages naming the same new identifier at once (two connections, PostgreSQL):
        # the second insert meets the unique constraint; its savepoint keeps the message going.
        with session.begin_nested():
            session.add(ForeignIdentifier(authority=key_authority, kind=kind, value=key_value,
                                          patient_id=patient_id, encounter_id=encounter_id, recorded_at=now,
                                          source=source[:300]))
    except IntegrityError:
        return _remember(session, authority, kind, value, now=now, source=source, same=same, patient_id=patient_id,
                         encounter_id=encounter_id)
    return True


def rename_patient_identifier(session: Session, authority: str, old: str, new: str) -> uuid.UUID | None:
    """The sender changed its IPP `old` into `new` (A47, PAM FR §4.1): the row follows, so both
    systems keep naming one record. Returns the patient, None if `old` was never learnt.
    Refused if `new` already names another record (that is a merge, A40)."""
    row = _row(session, authority, PATIENT, old)
    if row is None:
        return None
    taken = _row(session, authority, PATIENT, new)
    if taken is not None and taken.id != row.id:
        if taken.patient_id != row.patient_id:
            raise ForeignIdentifierConflict(f"PI {new} of {authority} already names another patient in naho: "
                                            "send a merge (A40)", rule="ForeignIdentifierConflict")
        session.delete(row)  # both learnt for the same record: the obsolete one goes
    else:
        row.value = _key(authority, new)[1]
    session.flush()
    return row.patient_id


def identifiers_of_patient(session: Session, patient_id: uuid.UUID) -> list[tuple[str, str]]:
    """(authority, value) of the sender IPPs learnt for a patient, for display."""
    return [(r.authority, r.value) for r in session.scalars(select(ForeignIdentifier).where(
        ForeignIdentifier.patient_id == patient_id).order_by(ForeignIdentifier.recorded_at))]


def remember_patients(session: Session, identifiers: Sequence[tuple[str, str, uuid.UUID]], *, now: datetime,
                      source: str) -> int:
    """`remember_patient` for a whole load (a FHIR transaction bundle of a legacy record): one
    query for the identifiers already known, one multi-row insert for the new ones; returns how
    many were new. Refused, as one by one, when an identifier already names another patient
    (or names two patients of the load)."""
    wanted: dict[tuple[str, str], uuid.UUID] = {}
    for authority, value, patient_id in identifiers:
        if not authority.strip() or not value.strip():
            continue
        key = _key(authority, value)
        if wanted.setdefault(key, patient_id) != patient_id:
            raise ForeignIdentifierConflict(f"PI {key[1]} of {key[0]} names two patients of this load",
                                            rule="ForeignIdentifierConflict")
    if not wanted:
        return 0
    known: dict[tuple[str, str], uuid.UUID | None] = {}
    keys = list(wanted)
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        rows = session.execute(select(ForeignIdentifier.authority, ForeignIdentifier.value,
                                      ForeignIdentifier.patient_id).where(
            ForeignIdentifier.kind == PATIENT, ForeignIdentifier.authority.in_({a for a, _ in chunk}),
            ForeignIdentifier.value.in_({v for _, v in chunk})))
        known.update({(a, v): p for a, v, p in rows})
    for key, patient_id in wanted.items():
        if key in known and known[key] != patient_id:
            raise ForeignIdentifierConflict(f"PI {key[1]} of {key[0]} already names another patient in naho",
                                            rule="ForeignIdentifierConflict")
    new = [{"id": uuid.uuid4(), "authority": a, "kind": PATIENT, "value": v, "patient_id": p, "encounter_id": None,
            "recorded_at": now, "source": source[:300]} for (a, v), p in wanted.items() if (a, v) not in known]
    if new:
        session.execute(insert(ForeignIdentifier.__table__), new)
    return len(new)
