"""inbound letters

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 08:30:00

The group mailbox's inbound side: one row per received Message-ID with its outcome (filed,
unmatched, refused, report). A new table only: the running code does not see it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db

revision: str = '0017'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, naho.platform.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table('messaging_inbound_letter',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('message_id', sa.String(length=250), nullable=False),
    sa.Column('sender', sa.String(length=254), nullable=False),
    sa.Column('professional_id', sa.Uuid(), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=False),
    _at('received_at'),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('rule', sa.String(length=60), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('patient_as_sent', sa.String(length=500), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=True),
    sa.Column('document_ids', sa.JSON(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('answer', sa.LargeBinary(), nullable=True),
    sa.Column('answer_outbox_id', sa.Uuid(), nullable=True),
    _at('resolved_at', nullable=True),
    sa.Column('resolved_by', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'],
                            name=op.f('fk_messaging_inbound_letter_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messaging_inbound_letter')),
    sa.UniqueConstraint('message_id', name=op.f('uq_messaging_inbound_letter_message_id'))
    )
    with op.batch_alter_table('messaging_inbound_letter', schema=None) as batch_op:
        batch_op.create_index('ix_messaging_inbound_letter_status_received', ['status', 'received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messaging_inbound_letter', schema=None) as batch_op:
        batch_op.drop_index('ix_messaging_inbound_letter_status_received')
    op.drop_table('messaging_inbound_letter')
