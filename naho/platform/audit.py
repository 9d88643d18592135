"""The audit trail: append-only, hash-chained events for every read and write of protected data.

Each row carries the SHA-256 of its own content and of the row before it, and sequence numbers
are contiguous, so `verify` finds any altered, inserted or deleted row and says which. Database
triggers (see the migration) refuse UPDATE and DELETE; the chain catches those who bypass them.
Deleting the newest rows leaves a shorter valid chain: compare `head()` with a copy kept
elsewhere (`naho audit head`, e.g. in the operations log) to detect that too.

Later domains call one function: ``audit.record(session, actor, AuditTag..., patient_id=...)``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, Uuid, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from naho.platform.db import Base, advisory_xact_lock, new_id
from naho.platform.security.actor import Actor

GENESIS_HASH = "0" * 64
_AUDIT_LOCK_KEY = 0x6E61686F0001  # "naho" + 1: serialises appends to the chain


class AuditTag(StrEnum):
    """What happened, as `source:subject:action` (STYLE.md R9)."""

    LOGIN_SUCCESS = "account:login:success"
    LOGIN_FAILURE = "account:login:failure"
    LOGIN_THROTTLED = "account:login:throttled"
    LOGIN_MFA_FAILURE = "account:mfa:failure"
    LOGOUT = "account:session:logout"
    TOTP_ENABLED = "account:mfa:enable"
    TOKEN_CREATED = "account:token:create"  # noqa: S105
    TOKEN_REVOKED = "account:token:revoke"  # noqa: S105
    ACCESS_DENIED = "patient:record:denied"
    BREAK_THE_GLASS = "patient:record:break-the-glass"
    BREAK_THE_GLASS_REVIEWED = "patient:record:break-the-glass-review"
    CONTEXT_SWITCHED = "account:context:switch"
    STAFF_VIEWED = "staff:directory:view"
    STAFF_CREATED = "staff:account:create"
    SITES_IMPORTED = "sites:reference:import"
    ROLLOUT_CHANGED = "sites:rollout:change"
    OUTBOX_RETRIED = "platform:outbox:retry"
    AUDIT_VIEWED = "platform:audit:view"


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_patient_at", "patient_id", "at"),
        Index("ix_audit_event_actor_at", "actor_id", "at"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[uuid.UUID] = mapped_column(default=new_id, unique=True)
    at: Mapped[datetime]
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_label: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(80))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    target: Mapped[str | None] = mapped_column(String(300))
    address: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(1000))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


def _digest(row: AuditEvent) -> str:
    content = {
        "seq": row.seq,
        "id": str(row.id),
        "at": row.at.isoformat(timespec="microseconds"),
        "actor_id": str(row.actor_id) if row.actor_id else None,
        "actor_label": row.actor_label,
        "action": row.action,
        "patient_id": str(row.patient_id) if row.patient_id else None,
        "target": row.target,
        "address": row.address,
        "reason": row.reason,
        "details": row.details or {},
        "prev_hash": row.prev_hash,
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session,
    actor: Actor | None,
    action: AuditTag | str,
    *,
    at: datetime,
    patient_id: uuid.UUID | None = None,
    target: str | None = None,
    reason: str | None = None,
    address: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the trail, in the caller's transaction.

    Call it last in a use case: the chain is locked from here to the commit.
    """
    advisory_xact_lock(session, _AUDIT_LOCK_KEY)
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    row = AuditEvent(
        seq=(last.seq + 1) if last else 1,
        id=new_id(),
        at=at,
        actor_id=actor.account_id if actor else None,
        actor_label=actor.label if actor else "anonyme",
        action=str(action),
        patient_id=patient_id,
        target=target,
        address=address if address is not None else (actor.address if actor else None),
        reason=reason,
        details=details or {},
        prev_hash=last.hash if last else GENESIS_HASH,
    )
    row.hash = _digest(row)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    kind: str  # "altered", "missing", "broken-link"
    message: str


@dataclass(frozen=True)
class AuditHead:
    seq: int
    hash: str


def head(session: Session) -> AuditHead | None:
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return AuditHead(row.seq, row.hash) if row else None


def verify(session: Session, expected_head: AuditHead | None = None) -> Iterator[AuditProblem | int]:
    """Walk the chain in order; yield each row's seq as progress and every problem found."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    last_seq = 0
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=2000))
    for row in rows.scalars():
        if row.seq != expected_seq:
            yield AuditProblem(
                expected_seq,
                "missing",
                f"rows {expected_seq} to {row.seq - 1} are missing (deleted)",
            )
        elif row.prev_hash != prev_hash:
            yield AuditProblem(row.seq, "broken-link", f"row {row.seq} does not follow row {row.seq - 1}")
        if _digest(row) != row.hash:
            yield AuditProblem(row.seq, "altered", f"row {row.seq} was altered after it was written")
        prev_hash = row.hash
        expected_seq = row.seq + 1
        last_seq = row.seq
        yield row.seq
    if expected_head is not None:
        if last_seq < expected_head.seq:
            yield AuditProblem(
                last_seq + 1,
                "missing",
                f"rows {last_seq + 1} to {expected_head.seq} are missing (the newest were deleted)",
            )
        elif last_seq >= expected_head.seq:
            kept = session.get(AuditEvent, expected_head.seq)
            if kept is None or kept.hash != expected_head.hash:
                yield AuditProblem(expected_head.seq, "altered", f"row {expected_head.seq} differs from the saved head")
