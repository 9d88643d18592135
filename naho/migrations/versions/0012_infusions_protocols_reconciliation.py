"""Continuous infusions, protocols and medication reconciliation

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 07:30:00

Medication orders gain the concentration of an infusion and the titration range of its rate, and
the protocol (order set) they were applied from; `home_medication` holds the home treatment listed
at admission and the prescriber's decision on each line (conciliation médicamenteuse). Only new
nullable columns and a new table: the code already running ignores them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('medication_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('concentration_value', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('concentration_unit', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('titration_min', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('titration_max', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('protocol_code', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('protocol_run_id', sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f('ix_medication_order_protocol_run_id'), ['protocol_run_id'], unique=False)

    op.create_table('home_medication',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('encounter_id', sa.Uuid(), nullable=True),
    sa.Column('drug', sa.String(length=300), nullable=False),
    sa.Column('product_code', sa.String(length=60), nullable=True),
    sa.Column('dose', sa.String(length=100), nullable=True),
    sa.Column('frequency', sa.String(length=100), nullable=True),
    sa.Column('source', sa.String(length=30), nullable=False),
    sa.Column('recorded_at', naho.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=300), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=True),
    sa.Column('decision_reason', sa.String(length=1000), nullable=True),
    sa.Column('decided_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=300), nullable=True),
    sa.Column('order_id', sa.Uuid(), nullable=True),
    sa.CheckConstraint("decision IS NULL OR decision IN ('continue', 'stop', 'substitute')",
                       name=op.f('ck_home_medication_decision')),
    sa.ForeignKeyConstraint(['order_id'], ['medication_order.id'],
                            name=op.f('fk_home_medication_order_id_medication_order')),
    sa.ForeignKeyConstraint(['product_code'], ['formulary_product.code'],
                            name=op.f('fk_home_medication_product_code_formulary_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_home_medication'))
    )
    with op.batch_alter_table('home_medication', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_home_medication_encounter_id'), ['encounter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_home_medication_patient_id'), ['patient_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('home_medication', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_home_medication_patient_id'))
        batch_op.drop_index(batch_op.f('ix_home_medication_encounter_id'))
    op.drop_table('home_medication')
    with op.batch_alter_table('medication_order', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_medication_order_protocol_run_id'))
        batch_op.drop_column('protocol_run_id')
        batch_op.drop_column('protocol_code')
        batch_op.drop_column('titration_max')
        batch_op.drop_column('titration_min')
        batch_op.drop_column('concentration_unit')
        batch_op.drop_column('concentration_value')
