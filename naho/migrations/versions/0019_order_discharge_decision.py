"""order discharge decision

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 09:10:00

The prescriber's decision on each order at discharge (continue / stop), for the treatments at
discharge the letter lists. A nullable column: the running code ignores it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('medication_order') as batch:
        batch.add_column(sa.Column('at_discharge', sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('medication_order') as batch:
        batch.drop_column('at_discharge')
