"""imaging orders and reports

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 12:00:00

Imaging exams ordered in naho (accession numbers) and the radiologists' reports on the studies
the PACS holds. New tables only: the running code ignores them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'imaging_order',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('patient_id', sa.Uuid(), nullable=False),
        sa.Column('encounter_id', sa.Uuid(), nullable=False),
        sa.Column('accession_number', sa.String(length=16), nullable=False),
        sa.Column('modality', sa.String(length=4), nullable=False),
        sa.Column('body_part', sa.String(length=100), nullable=False),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('urgency', sa.String(length=10), nullable=False),
        sa.Column('ordered_at', naho.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ordered_by', sa.String(length=300), nullable=False),
        sa.Column('ordered_by_account', sa.Uuid(), nullable=True),
        sa.Column('cancelled_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_imaging_order_patient_id_patient')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_imaging_order')),
        sa.UniqueConstraint('accession_number', name=op.f('uq_imaging_order_accession_number')),
    )
    op.create_index('ix_imaging_order_patient_ordered', 'imaging_order', ['patient_id', 'ordered_at'])
    op.create_table(
        'imaging_report',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('patient_id', sa.Uuid(), nullable=False),
        sa.Column('study_uid', sa.String(length=64), nullable=False),
        sa.Column('accession_number', sa.String(length=16), nullable=True),
        sa.Column('order_id', sa.Uuid(), nullable=True),
        sa.Column('findings', sa.Text(), nullable=False),
        sa.Column('conclusion', sa.Text(), nullable=False),
        sa.Column('author', sa.String(length=300), nullable=False),
        sa.Column('author_account', sa.Uuid(), nullable=True),
        sa.Column('signed_at', naho.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['imaging_order.id'], name=op.f('fk_imaging_report_order_id_imaging_order')),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_imaging_report_patient_id_patient')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_imaging_report')),
    )
    op.create_index('ix_imaging_report_patient_study', 'imaging_report', ['patient_id', 'study_uid'])


def downgrade() -> None:
    op.drop_index('ix_imaging_report_patient_study', table_name='imaging_report')
    op.drop_table('imaging_report')
    op.drop_index('ix_imaging_order_patient_ordered', table_name='imaging_order')
    op.drop_table('imaging_order')
