"""The transactional outbox: written with the change, delivered at least once, dead after N."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from naho.platform import outbox
from naho.platform.outbox import DEAD, DELIVERED, PENDING, Envelope, OutboxMessage, OutboxWorker


@pytest.fixture
def factory(uow_factory):  # type: ignore[no-untyped-def]
    uow = uow_factory()
    return uow._factory


def _enqueue(uow, topic: str = "letter.send", commit: bool = True) -> object:  # type: ignore[no-untyped-def]
    with uow:
        message_id = outbox.enqueue(uow.session, topic, {"to": "dr.martin@mssante.fr"}, now=uow.clock.now())
        if commit:
            uow.commit()
    return message_id


def _status(uow, message_id) -> OutboxMessage:  # type: ignore[no-untyped-def]
    with uow:
        row = uow.session.execute(select(OutboxMessage).where(OutboxMessage.id == message_id)).scalar_one()
        uow.session.expunge(row)  # keep the loaded values after the unit of work closes
        return row


def test_a_rolled_back_change_leaves_no_message(uow_factory) -> None:  # type: ignore[no-untyped-def]
    uow = uow_factory()
    _enqueue(uow, commit=False)
    with uow:
        assert uow.session.execute(select(OutboxMessage)).first() is None


def test_a_committed_message_is_delivered_once(uow_factory, clock) -> None:  # type: ignore[no-untyped-def]
    uow = uow_factory()
    message_id = _enqueue(uow)
    received: list[Envelope] = []
    worker = OutboxWorker(uow._factory, clock, {"letter.send": received.append})
    assert worker.run_once() == 1
    assert worker.run_once() == 0
    assert [e.id for e in received] == [message_id]
    assert received[0].payload == {"to": "dr.martin@mssante.fr"}
    assert _status(uow, message_id).status == DELIVERED


def test_a_failing_handler_is_retried_with_backoff_then_dead(uow_factory, clock) -> None:  # type: ignore[no-untyped-def]
    uow = uow_factory()
    message_id = _enqueue(uow)
    calls: list[int] = []

    def flaky(envelope: Envelope) -> None:
        calls.append(envelope.attempt)
        raise ConnectionError("relay down")

    worker = OutboxWorker(uow._factory, clock, {"letter.send": flaky}, max_attempts=3, backoff_seconds=10)
    worker.run_once()
    assert worker.run_once() == 0 and calls == [1]  # not due yet: backing off
    row = _status(uow, message_id)
    assert row.status == PENDING and "relay down" in (row.last_error or "")
    clock.advance(seconds=11)
    worker.run_once()
    clock.advance(seconds=21)
    worker.run_once()
    assert calls == [1, 2, 3]
    assert _status(uow, message_id).status == DEAD
    clock.advance(hours=2)
    worker.run_once()
    assert calls == [1, 2, 3]  # a dead message waits for a person


def test_a_dead_message_can_be_retried_by_an_administrator(uow_factory, clock) -> None:  # type: ignore[no-untyped-def]
    uow = uow_factory()
    message_id = _enqueue(uow, topic="nobody.listens")
    worker = OutboxWorker(uow._factory, clock, {}, max_attempts=1)
    worker.run_once()
    row = _status(uow, message_id)
    assert row.status == DEAD and "no handler" in (row.last_error or "")
    with uow:
        assert outbox.retry_dead(uow.session, message_id, now=clock.now())
        uow.commit()
    received: list[Envelope] = []
    worker.handlers["nobody.listens"] = received.append
    worker.run_once()
    assert len(received) == 1 and _status(uow, message_id).status == DELIVERED


def test_a_crash_after_delivery_redelivers_with_the_same_id(uow_factory, clock) -> None:  # type: ignore[no-untyped-def]
    """At least once: the lease expires, the message comes back, the handler dedupes on its id."""
    uow = uow_factory()
    _enqueue(uow)
    worker = OutboxWorker(uow._factory, clock, {})
    first = worker.claim()  # claimed, then the process dies before settling
    clock.advance(minutes=6)
    second = worker.claim()
    assert [e.id for e in first] == [e.id for e in second]
    assert second[0].attempt == 2


def test_backoff_grows_and_is_capped() -> None:
    assert [outbox.backoff(n, 2).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert outbox.backoff(40, 2).total_seconds() == 3600


def test_messages_of_one_key_are_delivered_in_order_even_after_a_failure(uow_factory, clock) -> None:  # type: ignore[no-untyped-def]
    uow = uow_factory()
    with uow:
        first = outbox.enqueue(uow.session, "hl7.adt", {"n": 1}, now=clock.now(), ordering_key="patient-1")
        second = outbox.enqueue(uow.session, "hl7.adt", {"n": 2}, now=clock.now(), ordering_key="patient-1")
        other = outbox.enqueue(uow.session, "hl7.adt", {"n": 9}, now=clock.now(), ordering_key="patient-2")
        uow.commit()
    sent: list[int] = []
    failing = {"on": True}

    def receiver(envelope: Envelope) -> None:
        if envelope.payload["n"] == 1 and failing["on"]:
            raise ConnectionError("receiver down")
        sent.append(envelope.payload["n"])

    worker = OutboxWorker(uow._factory, clock, {"hl7.adt": receiver}, max_attempts=2, backoff_seconds=10)
    worker.run_once()
    assert sent == [9]  # the other patient is not held up; the second waits for the first
    clock.advance(seconds=11)
    worker.run_once()  # second attempt fails too: the first is dead, the second still waits
    assert sent == [9] and _status(uow, first).status == DEAD and _status(uow, second).status == PENDING
    clock.advance(hours=2)
    worker.run_once()
    assert sent == [9]
    failing["on"] = False
    with uow:
        outbox.retry_dead(uow.session, first, now=clock.now())
        uow.commit()
    worker.run_once()
    worker.run_once()
    assert sent == [9, 1, 2]
    assert _status(uow, other).status == DELIVERED
