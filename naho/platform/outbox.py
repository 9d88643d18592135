"""Transactional outbox: messages written with the change, delivered at least once.

`enqueue` adds a message in the caller's transaction, so it exists if and only if the change
committed. The worker claims due messages with a short lease, calls the topic's handler outside
any transaction (handlers do network I/O), then records the outcome. A handler receives the
message id and must be idempotent on it: after a crash between delivery and bookkeeping the
message is delivered again. After `max_attempts` failures a message is dead and waits for an
IT administrator (page /admin/outbox) to retry it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from naho.platform.clock import Clock
from naho.platform.db import Base, new_id

log = logging.getLogger(__name__)

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"
LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=1)


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_message_status_available", "status", "available_at"),
        Index("ix_outbox_message_ordering", "ordering_key", "ordering_seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    topic: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    available_at: Mapped[datetime]
    leased_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Messages sharing a key are delivered one after the other, in `ordering_seq` order: a
    #: later one waits while an earlier one is pending or dead (e.g. a patient's ADT messages).
    ordering_key: Mapped[str | None] = mapped_column(String(120))
    ordering_seq: Mapped[int | None] = mapped_column(Integer)


@dataclass(frozen=True)
class Envelope:
    """What a handler receives: the id is the idempotency key."""

    id: uuid.UUID
    topic: str
    payload: dict[str, Any]
    attempt: int


Handler = Callable[[Envelope], None]


class UnknownTopicError(LookupError):
    """No handler is registered for a message's topic."""


def enqueue(session: Session, topic: str, payload: dict[str, Any], *, now: datetime,
            ordering_key: str | None = None) -> uuid.UUID:
    """Add a message in the caller's transaction. With an `ordering_key`, the message is
    delivered only after every earlier message of that key (FIFO per key, e.g. per patient)."""
    seq = None
    if ordering_key is not None:
        session.flush()
        last = session.execute(select(func.max(OutboxMessage.ordering_seq))
                               .where(OutboxMessage.ordering_key == ordering_key)).scalar_one()
        seq = (last or 0) + 1
    message = OutboxMessage(
        id=new_id(), topic=topic, payload=payload, status=PENDING, attempts=0,
        created_at=now, available_at=now, ordering_key=ordering_key, ordering_seq=seq,
    )
    session.add(message)
    session.flush()
    return message.id


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Exponential backoff: base, 2×base, 4×base ... capped at one hour."""
    return min(timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


class OutboxWorker:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        clock: Clock,
        handlers: dict[str, Handler],
        *,
        max_attempts: int = 8,
        backoff_seconds: float = 2.0,
        batch: int = 50,
    ) -> None:
        self._factory = session_factory
        self._clock = clock
        self.handlers = handlers
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.batch = batch

    def claim(self) -> list[Envelope]:
        now = self._clock.now()
        with self._factory() as session, session.begin():
            query = (
                select(OutboxMessage)
                .where(
                    OutboxMessage.status == PENDING,
                    OutboxMessage.available_at <= now,
                    or_(OutboxMessage.leased_until.is_(None), OutboxMessage.leased_until < now),
                )
                .order_by(OutboxMessage.created_at)
                .limit(self.batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = [row for row in session.execute(query).scalars().all() if not _blocked(session, row)]
            rows = _first_per_key(rows)
            for row in rows:
                row.leased_until = now + LEASE
                row.attempts += 1
            return [Envelope(r.id, r.topic, dict(r.payload), r.attempts) for r in rows]

    def run_once(self, *, max_batches: int = 100) -> int:
        """Deliver every due message; return how many were handled successfully.

        Claims again after each batch, so the next message of an ordered key goes out as soon as
        the one before it is delivered (a failed one is not due again before its backoff).
        """
        delivered = 0
        for _ in range(max_batches):
            batch = self.claim()
            if not batch:
                break
            delivered += self._deliver(batch)
        return delivered

    def _deliver(self, batch: list[Envelope]) -> int:
        delivered = 0
        for envelope in batch:
            error: str | None = None
            try:
                handler = self.handlers.get(envelope.topic)
                if handler is None:
                    raise UnknownTopicError(f"no handler for topic {envelope.topic!r}")
                handler(envelope)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("outbox message %s (%s) failed: %s", envelope.id, envelope.topic, error)
            self._settle(envelope, error)
            delivered += error is None
        return delivered

    def _settle(self, envelope: Envelope, error: str | None) -> None:
        now = self._clock.now()
        with self._factory() as session, session.begin():
            row = session.get(OutboxMessage, envelope.id)
            if row is None:
                return
            row.leased_until = None
            if error is None:
                row.status, row.delivered_at, row.last_error = DELIVERED, now, None
            elif row.attempts >= self.max_attempts:
                row.status, row.last_error = DEAD, error[:4000]
            else:
                row.last_error = error[:4000]
                row.available_at = now + backoff(row.attempts, self.backoff_seconds)


def _blocked(session: Session, row: OutboxMessage) -> bool:
    """An earlier message of the same key is not delivered yet (pending, leased or dead)."""
    if row.ordering_key is None:
        return False
    earlier = session.execute(select(OutboxMessage.id).where(
        OutboxMessage.ordering_key == row.ordering_key, OutboxMessage.ordering_seq < row.ordering_seq,
        OutboxMessage.status != DELIVERED,
    ).limit(1)).first()
    return earlier is not None


def _first_per_key(rows: list[OutboxMessage]) -> list[OutboxMessage]:
    """At most one message per key in a batch: the next is claimed once this one is delivered."""
    seen: set[str] = set()
    kept = []
    for row in sorted(rows, key=lambda r: (r.created_at, r.ordering_seq or 0)):
        if row.ordering_key is not None:
            if row.ordering_key in seen:
                continue
            seen.add(row.ordering_key)
        kept.append(row)
    return kept


def retry_dead(session: Session, message_id: uuid.UUID, *, now: datetime) -> bool:
    """Give a dead message a fresh set of attempts. Returns False if it was not dead."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == DEAD)
        .values(status=PENDING, attempts=0, available_at=now, leased_until=None)
    )
    return bool(getattr(result, "rowcount", 0))


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    ).all()
    return {status: n for status, n in rows}
