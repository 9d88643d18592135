"""teleconsultation

Revision ID: 0020
Revises: 0025
Create Date: 2026-12-05 11:40:00

One session per video appointment: arrival, admission, identity check, consent, end and
duration; the note itself goes to clinical_note. A new table only: the running code does not
see it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db

revision: str = '0020'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('teleconsultation_session',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('appointment_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('practitioner_account_id', sa.Uuid(), nullable=False),
    sa.Column('opened_at', naho.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('patient_arrived_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('admitted_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('identity_confirmed_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('consent_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=True),
    sa.Column('note_id', sa.Uuid(), nullable=True),
    sa.Column('ended_by', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teleconsultation_session')),
    sa.UniqueConstraint('appointment_id', name=op.f('uq_teleconsultation_session_appointment_id'))
    )
    with op.batch_alter_table('teleconsultation_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_teleconsultation_session_patient_id'), ['patient_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('teleconsultation_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_teleconsultation_session_patient_id'))
    op.drop_table('teleconsultation_session')
