"""Alembic environment: every domain's tables, lock and statement timeouts on PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

import naho.identity.models
import naho.medication.models
import naho.messaging.models
import naho.platform.access
import naho.platform.audit
import naho.platform.counters
import naho.platform.inbox
import naho.platform.outbox
import naho.platform.security.models
import naho.portal.models
import naho.record.models
import naho.results.imaging_models
import naho.results.models
import naho.scheduling.models
import naho.sites.models
import naho.staff.models
import naho.telehealth.models  # noqa: F401  (registers the tables)
from naho.platform.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # A migration must never queue behind live traffic for long (Warehouse's rule).
            connection.execute(text("SET lock_timeout = '4s'"))
            connection.execute(text("SET statement_timeout = '60s'"))
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `naho migrate`")
run_migrations_online()
