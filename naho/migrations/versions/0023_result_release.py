"""result release to the patient portal

Revision ID: 0023
Revises: 0019
Create Date: 2026-12-05 12:00:00

One row per laboratory report: the release policy applied, who saw it, who told the patient,
when it reached the portal. A new table: the running code of the previous version ignores it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db

revision: str = '0023'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'lab_report_release',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('report_id', sa.Uuid(), nullable=False),
        sa.Column('patient_id', sa.Uuid(), nullable=False),
        sa.Column('policy', sa.String(length=20), nullable=False),
        sa.Column('waiting', sa.String(length=20), nullable=True),
        sa.Column('sensitive', sa.Boolean(), nullable=False),
        sa.Column('validated_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('seen_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('seen_by', sa.String(length=300), nullable=True),
        sa.Column('told_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('told_by', sa.String(length=300), nullable=True),
        sa.Column('released_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('updated_at', naho.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['report_id'], ['lab_report.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('report_id'),
    )
    op.create_index('ix_lab_report_release_patient', 'lab_report_release', ['patient_id', 'released_at'])


def downgrade() -> None:
    op.drop_index('ix_lab_report_release_patient', table_name='lab_report_release')
    op.drop_table('lab_report_release')
