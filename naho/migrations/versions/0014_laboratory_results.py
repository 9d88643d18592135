"""laboratory results

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 07:40:00.000000

Laboratory reports (OBR) with the order numbers that will match them to orders, every received
version of each result (OBX: preliminary, final, corrected, cancelled), and the critical value
alerts with their acknowledgement and escalation. New tables only: the running code does not
see them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, naho.platform.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table('lab_report',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('encounter_id', sa.Uuid(), nullable=True),
    sa.Column('sender', sa.String(length=200), nullable=False),
    sa.Column('report_key', sa.String(length=200), nullable=False),
    sa.Column('placer_number', sa.String(length=100), nullable=True),
    sa.Column('filler_number', sa.String(length=100), nullable=True),
    sa.Column('service_code', sa.String(length=60), nullable=False),
    sa.Column('service_label', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=2), nullable=False),
    _at('observed_at'),
    _at('reported_at', True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('document_id', sa.Uuid(), nullable=True),
    _at('updated_at'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_lab_report_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lab_report')),
    sa.UniqueConstraint('sender', 'report_key', name=op.f('uq_lab_report_sender_report_key'))
    )
    with op.batch_alter_table('lab_report', schema=None) as batch_op:
        batch_op.create_index('ix_lab_report_patient_observed', ['patient_id', 'observed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lab_report_placer_number'), ['placer_number'], unique=False)

    op.create_table('lab_result',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('report_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('chain', sa.String(length=60), nullable=False),
    sa.Column('loinc', sa.String(length=20), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('value_type', sa.String(length=3), nullable=False),
    sa.Column('number', sa.Float(), nullable=True),
    sa.Column('comparator', sa.String(length=2), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('unit', sa.String(length=40), nullable=False),
    sa.Column('reference', sa.String(length=60), nullable=False),
    sa.Column('reference_low', sa.Float(), nullable=True),
    sa.Column('reference_high', sa.Float(), nullable=True),
    sa.Column('flags', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=1), nullable=False),
    _at('observed_at'),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('current', sa.Boolean(), nullable=False),
    _at('received_at'),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('observation_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['report_id'], ['lab_report.id'], name=op.f('fk_lab_result_report_id_lab_report')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lab_result'))
    )
    with op.batch_alter_table('lab_result', schema=None) as batch_op:
        batch_op.create_index('ix_lab_result_patient_current', ['patient_id', 'current', 'loinc', 'observed_at'],
                              unique=False)
        batch_op.create_index('ix_lab_result_report_chain', ['report_id', 'chain'], unique=False)

    op.create_table('lab_result_alert',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('result_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('encounter_id', sa.Uuid(), nullable=True),
    sa.Column('unit_code', sa.String(length=40), nullable=True),
    sa.Column('loinc', sa.String(length=20), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('shown', sa.String(length=60), nullable=False),
    sa.Column('direction', sa.String(length=4), nullable=False),
    _at('raised_at'),
    _at('acknowledged_at', True),
    sa.Column('acknowledged_by', sa.String(length=300), nullable=True),
    _at('escalated_at', True),
    sa.Column('escalated_to', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['result_id'], ['lab_result.id'], name=op.f('fk_lab_result_alert_result_id_lab_result')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lab_result_alert'))
    )
    with op.batch_alter_table('lab_result_alert', schema=None) as batch_op:
        batch_op.create_index('ix_lab_result_alert_open', ['acknowledged_at', 'raised_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lab_result_alert_patient_id'), ['patient_id'], unique=False)


def downgrade() -> None:
    op.drop_table('lab_result_alert')
    op.drop_table('lab_result')
    op.drop_table('lab_report')
