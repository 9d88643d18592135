"""discharge letters

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 08:50:00

The discharge letter (lettre de liaison), one per stay: its content, status, signer, the PDF
filed in the chart and its structured twin. A new table only: the running code does not see it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, naho.platform.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table('messaging_discharge_letter',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('encounter_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    _at('created_at'),
    sa.Column('created_by', sa.String(length=300), nullable=False),
    _at('updated_at'),
    sa.Column('updated_by', sa.String(length=300), nullable=False),
    _at('signed_at', nullable=True),
    sa.Column('signed_by', sa.String(length=300), nullable=True),
    sa.Column('signer_account_id', sa.Uuid(), nullable=True),
    sa.Column('document_id', sa.Uuid(), nullable=True),
    sa.Column('structured', sa.LargeBinary(), nullable=True),
    sa.Column('structured_media_type', sa.String(length=60), nullable=True),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounter.id'],
                            name=op.f('fk_messaging_discharge_letter_encounter_id_encounter')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'],
                            name=op.f('fk_messaging_discharge_letter_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messaging_discharge_letter')),
    sa.UniqueConstraint('encounter_id', name=op.f('uq_messaging_discharge_letter_encounter_id'))
    )
    with op.batch_alter_table('messaging_discharge_letter', schema=None) as batch_op:
        batch_op.create_index('ix_messaging_discharge_letter_patient', ['patient_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messaging_discharge_letter', schema=None) as batch_op:
        batch_op.drop_index('ix_messaging_discharge_letter_patient')
    op.drop_table('messaging_discharge_letter')
