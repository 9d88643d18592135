"""Background workers that run inside `naho serve`, one active copy across all processes.

On PostgreSQL the runner holds a session-level advisory lock on a dedicated connection: the
other processes stand by and take over when the holder dies (its connection closes). On SQLite
(one machine) a file lock next to the database does the same.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

WORKER_LOCK_KEY = 0x6E61686F0002


@dataclass
class Job:
    name: str
    run: Callable[[], Any]
    every_seconds: float


class SingletonLock:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Any = None
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        if self._engine.dialect.name == "postgresql":
            conn = self._engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": WORKER_LOCK_KEY}).scalar()
            conn.commit()
            if got:
                self._conn = conn
                return True
            conn.close()
            return False
        database = self._engine.url.database or "naho"
        path = Path(database if database != ":memory:" else "naho").with_suffix(".workers.lock")
        handle = path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._conn is not None:
            # The pool would keep the connection (and its session-level lock) alive: unlock first.
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": WORKER_LOCK_KEY})
            self._conn.commit()
            self._conn.close()
            self._conn = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class WorkerRunner:
    """Runs jobs periodically in one daemon thread, while holding the singleton lock."""

    def __init__(self, engine: Engine, jobs: list[Job], *, standby_seconds: float = 5.0) -> None:
        self.jobs = jobs
        self._lock = SingletonLock(engine)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._standby = standby_seconds
        self.active = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="naho-workers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        self._lock.release()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._lock.try_acquire():
                break
            self._stop.wait(self._standby)
        else:
            return
        self.active.set()
        log.info("background workers active in this process")
        last_run: dict[str, float] = {}
        tick = min((job.every_seconds for job in self.jobs), default=1.0)
        clock = 0.0
        while not self._stop.is_set():
            for job in self.jobs:
                if clock - last_run.get(job.name, -job.every_seconds) >= job.every_seconds:
                    last_run[job.name] = clock
                    try:
                        job.run()
                    except Exception:
                        log.exception("background job %s failed", job.name)
            self._stop.wait(tick)
            clock += tick
