"""lab orders

Revision ID: 0021
Revises: 0024
Create Date: 2026-12-05 12:10:00

Laboratory orders placed from the chart (one row per test: placer, group and specimen numbers,
status, the last message's acknowledgement). A new table only: the running code does not see it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db

revision: str = '0021'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, naho.platform.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table('lab_order',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('encounter_id', sa.Uuid(), nullable=False),
    sa.Column('placer_number', sa.String(length=20), nullable=False),
    sa.Column('group_number', sa.String(length=20), nullable=False),
    sa.Column('specimen_number', sa.String(length=20), nullable=False),
    sa.Column('test_code', sa.String(length=20), nullable=False),
    sa.Column('test_label', sa.String(length=200), nullable=False),
    sa.Column('loinc', sa.String(length=20), nullable=True),
    sa.Column('container_code', sa.String(length=20), nullable=False),
    sa.Column('container_label', sa.String(length=200), nullable=False),
    sa.Column('colour', sa.String(length=20), nullable=False),
    sa.Column('specimen_type', sa.String(length=10), nullable=False),
    sa.Column('urgency', sa.String(length=10), nullable=False),
    sa.Column('clinical_info', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    _at('ordered_at'),
    sa.Column('ordered_by', sa.String(length=300), nullable=False),
    _at('collected_at', True),
    sa.Column('collected_by', sa.String(length=300), nullable=True),
    _at('cancelled_at', True),
    sa.Column('cancelled_by', sa.String(length=300), nullable=True),
    sa.Column('cancel_reason', sa.String(length=500), nullable=True),
    sa.Column('transmission', sa.String(length=20), nullable=False),
    sa.Column('transmission_error', sa.String(length=1000), nullable=True),
    _at('accepted_at', True),
    sa.Column('report_id', sa.Uuid(), nullable=True),
    _at('updated_at'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_lab_order_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lab_order')),
    sa.UniqueConstraint('placer_number', name=op.f('uq_lab_order_placer_number'))
    )
    with op.batch_alter_table('lab_order', schema=None) as batch_op:
        batch_op.create_index('ix_lab_order_patient_ordered', ['patient_id', 'ordered_at'], unique=False)
        batch_op.create_index('ix_lab_order_specimen', ['specimen_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lab_order', schema=None) as batch_op:
        batch_op.drop_index('ix_lab_order_specimen')
        batch_op.drop_index('ix_lab_order_patient_ordered')
    op.drop_table('lab_order')
