"""messaging directory and letters

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 07:25:00.000000

Secure messaging: the directory of community professionals (from the national extract), the
patient's correspondents (GP and others), the letters sent with their sealed bytes and status,
and the patient's objections to sharing (consent registry). New tables only: the running code
does not see them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, naho.platform.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table('messaging_professional',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('rpps', sa.String(length=11), nullable=False),
    sa.Column('title', sa.String(length=40), nullable=False),
    sa.Column('last_name', sa.String(length=120), nullable=False),
    sa.Column('first_name', sa.String(length=120), nullable=False),
    sa.Column('profession', sa.String(length=120), nullable=False),
    sa.Column('specialty', sa.String(length=200), nullable=False),
    sa.Column('practice_name', sa.String(length=200), nullable=False),
    sa.Column('street', sa.String(length=300), nullable=False),
    sa.Column('postcode', sa.String(length=10), nullable=False),
    sa.Column('city', sa.String(length=120), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=False),
    sa.Column('mss_address', sa.String(length=254), nullable=True),
    sa.Column('certificate_pem', sa.Text(), nullable=True),
    sa.Column('search_name', sa.String(length=250), nullable=False),
    sa.Column('search_city', sa.String(length=120), nullable=False),
    _at('imported_at'),
    _at('updated_at'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messaging_professional')),
    sa.UniqueConstraint('rpps', name=op.f('uq_messaging_professional_rpps'))
    )
    with op.batch_alter_table('messaging_professional', schema=None) as batch_op:
        batch_op.create_index('ix_messaging_professional_search_name', ['search_name'], unique=False)
        batch_op.create_index('ix_messaging_professional_search_city', ['search_city'], unique=False)

    op.create_table('messaging_correspondent',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('professional_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    _at('since'),
    sa.Column('added_by', sa.String(length=300), nullable=False),
    _at('ended_at', nullable=True),
    sa.Column('ended_by', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_messaging_correspondent_patient_id_patient')),
    sa.ForeignKeyConstraint(['professional_id'], ['messaging_professional.id'],
                            name=op.f('fk_messaging_correspondent_professional_id_messaging_professional')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messaging_correspondent'))
    )
    with op.batch_alter_table('messaging_correspondent', schema=None) as batch_op:
        batch_op.create_index('ix_messaging_correspondent_patient', ['patient_id', 'ended_at'], unique=False)

    op.create_table('messaging_letter',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('document_id', sa.Uuid(), nullable=False),
    sa.Column('document_title', sa.String(length=200), nullable=False),
    sa.Column('document_sha256', sa.String(length=64), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=250), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('sender', sa.String(length=254), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('status_detail', sa.String(length=1000), nullable=True),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('outbox_id', sa.Uuid(), nullable=False),
    _at('created_at'),
    sa.Column('created_by', sa.String(length=300), nullable=False),
    _at('sent_at', nullable=True),
    _at('delivered_at', nullable=True),
    _at('read_at', nullable=True),
    _at('updated_at'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_messaging_letter_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messaging_letter')),
    sa.UniqueConstraint('message_id', name=op.f('uq_messaging_letter_message_id')),
    sa.UniqueConstraint('number', name=op.f('uq_messaging_letter_number'))
    )
    with op.batch_alter_table('messaging_letter', schema=None) as batch_op:
        batch_op.create_index('ix_messaging_letter_patient_at', ['patient_id', 'created_at'], unique=False)

    op.create_table('messaging_sharing_objection',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('objects', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    _at('recorded_at'),
    sa.Column('recorded_by', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'],
                            name=op.f('fk_messaging_sharing_objection_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messaging_sharing_objection'))
    )
    with op.batch_alter_table('messaging_sharing_objection', schema=None) as batch_op:
        batch_op.create_index('ix_messaging_sharing_objection_patient', ['patient_id', 'purpose', 'recorded_at'],
                              unique=False)


def downgrade() -> None:
    for table in ('messaging_sharing_objection', 'messaging_letter', 'messaging_correspondent',
                  'messaging_professional'):
        op.drop_table(table)
