"""The audit trail is append-only and hash-chained: tampering is detected and located."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from naho.platform import audit
from naho.platform.audit import AuditHead, AuditProblem, AuditTag
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from tests.conftest import IS_POSTGRES

ALICE = Actor(uuid.uuid4(), "alice", "Alice MARTIN", frozenset({Role.NURSE}), address="10.1.2.3")
PATIENT = uuid.uuid4()


@pytest.fixture
def uow(uow_factory):  # type: ignore[no-untyped-def]
    return uow_factory()


def _write(uow, n: int) -> None:  # type: ignore[no-untyped-def]
    with uow:
        for i in range(n):
            audit.record(uow.session, ALICE, AuditTag.STAFF_VIEWED, at=uow.clock.now(), patient_id=PATIENT,
                         target=f"row-{i}", reason="soins", details={"i": i, "note": "é"})
        uow.commit()


def _problems(uow, head: AuditHead | None = None) -> list[AuditProblem]:  # type: ignore[no-untyped-def]
    with uow:
        return [p for p in audit.verify(uow.session, head) if isinstance(p, AuditProblem)]


def _without_guard(uow, statement: str) -> None:  # type: ignore[no-untyped-def]
    """What an attacker with database rights does: bypass the append-only triggers."""
    with uow:
        s = uow.session
        if IS_POSTGRES:
            s.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
            s.execute(text(statement))
            s.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))
        else:
            s.execute(text("DROP TRIGGER audit_event_no_update"))
            s.execute(text("DROP TRIGGER audit_event_no_delete"))
            s.execute(text(statement))
        uow.commit()


def test_an_untouched_chain_verifies(uow) -> None:  # type: ignore[no-untyped-def]
    with uow:
        before = audit.head(uow.session)
    _write(uow, 5)
    assert _problems(uow) == []
    with uow:
        head = audit.head(uow.session)
    assert head is not None and head.seq == (before.seq if before else 0) + 5


def test_each_event_links_to_the_previous_one(uow) -> None:  # type: ignore[no-untyped-def]
    _write(uow, 3)
    with uow:
        rows = uow.session.execute(text("SELECT seq, prev_hash, hash FROM audit_event ORDER BY seq")).all()
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    assert rows[-1].seq == rows[0].seq + len(rows) - 1


def test_the_database_refuses_update_and_delete(uow) -> None:  # type: ignore[no-untyped-def]
    _write(uow, 2)
    for statement in ("UPDATE audit_event SET reason = 'x'", "DELETE FROM audit_event"):
        with uow, pytest.raises(DBAPIError, match="append-only"):
            uow.session.execute(text(statement))
            uow.session.flush()


def test_an_altered_row_is_detected_and_named(uow) -> None:  # type: ignore[no-untyped-def]
    _write(uow, 5)
    with uow:
        target = uow.session.execute(text("SELECT seq FROM audit_event WHERE target = 'row-2'")).scalar_one()
    _without_guard(uow, f"UPDATE audit_event SET reason = 'nothing to see' WHERE seq = {target}")
    problems = _problems(uow)
    assert [(p.seq, p.kind) for p in problems] == [(target, "altered")]


def test_a_deleted_row_is_detected(uow) -> None:  # type: ignore[no-untyped-def]
    _write(uow, 5)
    with uow:
        target = uow.session.execute(text("SELECT seq FROM audit_event WHERE target = 'row-3'")).scalar_one()
    _without_guard(uow, f"DELETE FROM audit_event WHERE seq = {target}")
    problems = _problems(uow)
    assert any(p.kind == "missing" and p.seq == target for p in problems)


def test_a_rewritten_hash_breaks_the_next_link(uow) -> None:  # type: ignore[no-untyped-def]
    _write(uow, 4)
    with uow:
        first = uow.session.execute(text("SELECT min(seq) FROM audit_event")).scalar_one()
    # Rewrite a row *and* its own hash: the next row's link still betrays it.
    _without_guard(uow, f"UPDATE audit_event SET target = 'forged', hash = '{'f' * 64}' WHERE seq = {first}")
    kinds = {(p.seq, p.kind) for p in _problems(uow)}
    assert (first, "altered") in kinds and (first + 1, "broken-link") in kinds


def test_truncating_the_newest_rows_is_caught_by_a_saved_head(uow) -> None:  # type: ignore[no-untyped-def]
    _write(uow, 4)
    with uow:
        head = audit.head(uow.session)
    assert head is not None
    _without_guard(uow, f"DELETE FROM audit_event WHERE seq >= {head.seq - 1}")
    assert _problems(uow) == []  # the shorter chain is consistent in itself...
    assert any(p.kind == "missing" for p in _problems(uow, head))  # ...but not with the saved head


def test_hashes_survive_the_round_trip_through_the_database(uow) -> None:  # type: ignore[no-untyped-def]
    with uow:
        audit.record(uow.session, None, AuditTag.LOGIN_FAILURE, at=uow.clock.now(), target="x",
                     details={"float": 0.1, "nested": {"b": [1, 2], "a": None}})
        uow.commit()
    assert _problems(uow) == []
