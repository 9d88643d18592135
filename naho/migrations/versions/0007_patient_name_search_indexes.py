"""patient name search indexes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 20:40:00.000000

A page of a name search is read in (name, first names, id) order from the birth name or the
used name: these indexes let it be an ordered range scan that stops at the page (FHIR Patient
search at 1,000,000 patients, bench/fhir_ingest.py). On a large PostgreSQL index, create them
beforehand with CREATE INDEX CONCURRENTLY under the same names; this migration then skips them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db  # noqa: F401

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = {
    "ix_patient_birth_name_first_names": ["birth_name", "first_names", "id"],
    "ix_patient_used_name_first_names": ["used_name", "first_names", "id"],
}


def upgrade() -> None:
    bind = op.get_bind()
    existing = {i["name"] for i in sa.inspect(bind).get_indexes("patient")}
    with op.batch_alter_table('patient', schema=None) as batch_op:
        for name, columns in _INDEXES.items():
            if name not in existing:
                batch_op.create_index(name, columns, unique=False)
    if bind.dialect.name == "postgresql":
        # With the default 100 histogram buckets, a rare prefix among 1,000,000 names was estimated
        # at 16 rows for 1,309: the planner then fetched and sorted them all (25 ms) instead of
        # reading the page in index order (0.5 ms). Finer statistics on the searched names.
        for column in ("birth_name", "used_name"):
            op.execute(f"ALTER TABLE patient ALTER COLUMN {column} SET STATISTICS 1000")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in ("birth_name", "used_name"):
            op.execute(f"ALTER TABLE patient ALTER COLUMN {column} SET STATISTICS -1")
    with op.batch_alter_table('patient', schema=None) as batch_op:
        for name in reversed(list(_INDEXES)):
            batch_op.drop_index(name)
