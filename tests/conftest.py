"""Shared fixtures: a fresh migrated database per test, on SQLite or PostgreSQL.

The suite runs once per database: `NAHO_TEST_DATABASE_URL` selects it (SQLite by default;
`.ci/run` runs it again on PostgreSQL). A template database is migrated and seeded once per
session; each test gets its own copy (a file copy on SQLite, CREATE DATABASE ... TEMPLATE on
PostgreSQL), so tests own their data and may commit freely.

A test needing a service that is absent is skipped with a reason when run by hand, and fails
when `NAHO_REQUIRE_SERVICES=1` (as in CI).
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from naho.app import create_app
from naho.config import Settings
from naho.migrations import upgrade
from naho.platform.clock import FixedClock, SystemClock
from naho.platform.db import make_engine, make_session_factory, normalise_url
from naho.platform.events import EventBus
from naho.platform.uow import UnitOfWork

DATABASE_URL = os.environ.get("NAHO_TEST_DATABASE_URL", "sqlite://")
REQUIRE_SERVICES = os.environ.get("NAHO_REQUIRE_SERVICES") == "1"
IS_POSTGRES = DATABASE_URL.startswith("postgres")


def service_missing(reason: str) -> None:
    """Skip by hand, fail in CI: a missing service must never turn CI green."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DatabaseFactory:
    """Makes fresh databases from a migrated (and optionally seeded) template."""

    def __init__(self, base_url: str, workdir: Path) -> None:
        self.base_url = normalise_url(base_url)
        self.workdir = workdir
        self.templates: dict[str, str] = {}
        self.created: list[str] = []
        self.tag = uuid.uuid4().hex[:8]

    def _admin(self):  # type: ignore[no-untyped-def]
        url = make_url(self.base_url).set(database="postgres")
        return create_engine(url, isolation_level="AUTOCOMMIT")

    def _new_name(self, prefix: str) -> str:
        return f"naho_{prefix}_{self.tag}_{uuid.uuid4().hex[:8]}"

    def template(self, name: str, build) -> str:  # type: ignore[no-untyped-def]
        if name in self.templates:
            return self.templates[name]
        if IS_POSTGRES:
            db = self._new_name(f"tpl_{name}")
            engine = self._admin()
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{db}"'))
            engine.dispose()
            url = make_url(self.base_url).set(database=db).render_as_string(hide_password=False)
            self.created.append(db)
        else:
            url = f"sqlite:///{self.workdir / f'template_{name}.sqlite3'}"
        upgrade(url)
        build(url)
        self.templates[name] = url
        return url

    def copy(self, template_url: str) -> str:
        if IS_POSTGRES:
            db = self._new_name("t")
            source = make_url(template_url).database
            engine = self._admin()
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{db}" TEMPLATE "{source}"'))
            engine.dispose()
            self.created.append(db)
            return make_url(self.base_url).set(database=db).render_as_string(hide_password=False)
        source_path = Path(make_url(template_url).database or "")
        target = self.workdir / f"db_{uuid.uuid4().hex[:10]}.sqlite3"
        shutil.copyfile(source_path, target)
        return f"sqlite:///{target}"

    def drop_all(self) -> None:
        if not IS_POSTGRES or not self.created:
            return
        engine = self._admin()
        with engine.connect() as conn:
            for db in reversed(self.created):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    if IS_POSTGRES:
        url = make_url(normalise_url(DATABASE_URL))
        if not port_open(url.host or "127.0.0.1", url.port or 5432):
            pytest.exit(f"PostgreSQL is not reachable at {url.host}:{url.port}", returncode=3)
    factory = DatabaseFactory(DATABASE_URL, tmp_path_factory.mktemp("databases"))
    yield factory
    factory.drop_all()


def _seed(url: str) -> None:
    from naho.sandbox.seed import seed

    # Tests create the patients they need; the demo's synthetic patients are tested on their own.
    settings = Settings(mode="development", database_url=url, demo_patients=0)
    engine = make_engine(url)
    seed(UnitOfWork(make_session_factory(engine), SystemClock(), EventBus()), settings)
    engine.dispose()


@pytest.fixture
def empty_db_url(databases: DatabaseFactory) -> str:
    """A migrated database with no rows."""
    return databases.copy(databases.template("empty", lambda url: None))


@pytest.fixture
def db_url(databases: DatabaseFactory) -> str:
    """A migrated database holding the group's structure, synthetic staff and demo accounts."""
    return databases.copy(databases.template("seeded", _seed))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 25, 9, 30, tzinfo=UTC))


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(mode="test", database_url=db_url, workers=False)


@pytest.fixture
def uow_factory(settings: Settings, clock: FixedClock) -> Iterator:  # type: ignore[type-arg]
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    yield lambda: UnitOfWork(factory, clock, EventBus())
    engine.dispose()


@pytest.fixture
def app(settings: Settings, clock: FixedClock):  # type: ignore[no-untyped-def]
    application = create_app(settings, clock=clock)
    yield application
    application.state.container.engine.dispose()


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client
