"""Background workers: one active copy across processes, delivering the outbox inside serve."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from naho.app import create_app
from naho.config import Settings
from naho.platform import outbox
from naho.platform.clock import SystemClock
from naho.platform.db import make_engine
from naho.platform.outbox import Envelope
from naho.platform.workers import Job, WorkerRunner


def _wait(predicate, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_only_one_runner_is_active_and_the_standby_takes_over(db_url: str) -> None:
    engines = [make_engine(db_url), make_engine(db_url)]
    counts = [0, 0]

    def job(i: int):  # type: ignore[no-untyped-def]
        def run() -> None:
            counts[i] += 1
        return run

    first = WorkerRunner(engines[0], [Job("tick", job(0), 0.05)], standby_seconds=0.1)
    second = WorkerRunner(engines[1], [Job("tick", job(1), 0.05)], standby_seconds=0.1)
    first.start()
    assert first.active.wait(5)
    second.start()
    time.sleep(0.5)
    assert not second.active.is_set() and counts[1] == 0 and counts[0] > 0
    first.stop()  # the holder goes away: the standby takes the lock
    assert second.active.wait(5)
    assert _wait(lambda: counts[1] > 0)
    second.stop()
    for engine in engines:
        engine.dispose()


def test_serve_delivers_outbox_messages_in_the_background(db_url: str) -> None:
    delivered = threading.Event()
    received: list[Envelope] = []

    def handler(envelope: Envelope) -> None:
        received.append(envelope)
        delivered.set()

    settings = Settings(mode="test", database_url=db_url, workers=True, outbox_poll_seconds=0.05)
    app = create_app(settings, outbox_handlers={"test.ping": handler})
    with TestClient(app):
        container = app.state.container
        with container.uow() as uow:
            message_id = outbox.enqueue(uow.session, "test.ping", {"n": 1}, now=SystemClock().now())
            uow.commit()
        assert delivered.wait(10)
    assert [e.id for e in received] == [message_id]
