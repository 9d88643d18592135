"""imaging report document

Revision ID: 0025
Revises: 0022
Create Date: 2026-12-05 12:40:00

The signed imaging report as a PDF in the chart (so that it can be sent by secure messaging like
any chart document). A nullable column: the running code of the previous version ignores it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0025'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('imaging_report') as batch:
        batch.add_column(sa.Column('document_id', sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('imaging_report') as batch:
        batch.drop_column('document_id')
