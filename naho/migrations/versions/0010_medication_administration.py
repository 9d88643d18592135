"""medication administration

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 07:30:00

The plan of care as given (eMAR): one row per administration event at the bedside (doses given,
partly given or not given, 'if needed' doses, infusion start, rate and bag changes, stop). A new
table only: the running code does not see it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('medication_administration',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('order_version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('due_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('due_sequence', sa.Integer(), nullable=True),
    sa.Column('at', naho.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('product_code', sa.String(length=60), nullable=True),
    sa.Column('lot', sa.String(length=40), nullable=True),
    sa.Column('expiry', sa.Date(), nullable=True),
    sa.Column('amount', sa.Double(), nullable=True),
    sa.Column('route', sa.String(length=10), nullable=True),
    sa.Column('dose_rate', sa.Double(), nullable=True),
    sa.Column('rate_ml_h', sa.Double(), nullable=True),
    sa.Column('bag_volume_ml', sa.Double(), nullable=True),
    sa.Column('reason_code', sa.String(length=30), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('patient_scan', sa.String(length=120), nullable=True),
    sa.Column('dose_scan', sa.String(length=200), nullable=True),
    sa.Column('no_scan_reason', sa.String(length=500), nullable=True),
    sa.Column('unreviewed', sa.Boolean(), nullable=False),
    sa.Column('checks', sa.JSON(), nullable=False),
    sa.Column('recorded_by_id', sa.Uuid(), nullable=False),
    sa.Column('recorded_by', sa.String(length=300), nullable=False),
    sa.CheckConstraint("kind IN ('dose', 'if_needed', 'infusion_start', 'rate_change', 'bag_change', "
                       "'infusion_stop')", name=op.f('ck_medication_administration_kind')),
    sa.CheckConstraint("outcome IN ('given', 'partly_given', 'not_given')",
                       name=op.f('ck_medication_administration_outcome')),
    sa.ForeignKeyConstraint(['order_id'], ['medication_order.id'],
                            name=op.f('fk_medication_administration_order_id_medication_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_medication_administration')),
    sa.UniqueConstraint('order_id', 'due_sequence',
                        name=op.f('uq_medication_administration_order_id_due_sequence'))
    )
    with op.batch_alter_table('medication_administration', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_medication_administration_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_medication_administration_patient_at', ['patient_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('medication_administration', schema=None) as batch_op:
        batch_op.drop_index('ix_medication_administration_patient_at')
        batch_op.drop_index(batch_op.f('ix_medication_administration_order_id'))
    op.drop_table('medication_administration')
