"""Business numbers (IPP, NDA…) handed out in sequence, safely under concurrency.

One row per counter; the increment happens in the caller's transaction under a row lock
(PostgreSQL `SELECT … FOR UPDATE`; SQLite already holds its single write lock), so two
admissions never get the same number and a rolled-back one leaves no gap to explain.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from naho.platform.db import Base


class Counter(Base):
    __tablename__ = "counter"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


def next_number(session: Session, name: str, *, start: int = 1) -> int:
    row = session.execute(select(Counter).where(Counter.name == name).with_for_update()).scalar_one_or_none()
    if row is None:
        row = Counter(name=name, value=start - 1)
        session.add(row)
    row.value += 1
    session.flush()
    return row.value


def reserve(session: Session, name: str, count: int, *, start: int = 1) -> range:
    """`count` consecutive numbers at once (bulk loads): one lock instead of one per number."""
    first = next_number(session, name, start=start)
    if count > 1:
        row = session.get(Counter, name)
        assert row is not None
        row.value += count - 1
        session.flush()
    return range(first, first + count)
