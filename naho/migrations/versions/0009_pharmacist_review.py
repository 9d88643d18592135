"""pharmacist review

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 07:30:00

The pharmacist's review of medication order versions (analyse pharmaceutique): one decision per
version, its SFPC-coded intervention and the prescriber's answer. A new table only: the running
code does not see it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('pharmacist_review',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('establishment_code', sa.String(length=20), nullable=True),
    sa.Column('decision', sa.String(length=20), nullable=False),
    sa.Column('problem_code', sa.String(length=5), nullable=True),
    sa.Column('intervention_code', sa.String(length=5), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('pharmacist_id', sa.Uuid(), nullable=False),
    sa.Column('pharmacist_label', sa.String(length=300), nullable=False),
    sa.Column('decided_at', naho.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('response', sa.String(length=20), nullable=True),
    sa.Column('response_comment', sa.Text(), nullable=True),
    sa.Column('responded_by_id', sa.Uuid(), nullable=True),
    sa.Column('responded_by', sa.String(length=300), nullable=True),
    sa.Column('responded_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("decision IN ('validated', 'refused')", name=op.f('ck_pharmacist_review_decision')),
    sa.CheckConstraint("response IS NULL OR response IN ('accepted', 'declined')",
                       name=op.f('ck_pharmacist_review_response')),
    sa.ForeignKeyConstraint(['order_id'], ['medication_order.id'],
                            name=op.f('fk_pharmacist_review_order_id_medication_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pharmacist_review')),
    sa.UniqueConstraint('order_id', name=op.f('uq_pharmacist_review_order_id'))
    )
    with op.batch_alter_table('pharmacist_review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pharmacist_review_patient_id'), ['patient_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pharmacist_review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pharmacist_review_patient_id'))
    op.drop_table('pharmacist_review')
