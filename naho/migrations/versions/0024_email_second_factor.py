"""email second factor

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 12:10:00

A second factor by e-mailed code for patients without an authenticator application: the
account's choice, and on the session the code owed (hashed), its expiry and the wrong tries.
Columns with defaults: the running code of the previous version ignores them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import naho.platform.db

revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('account') as batch:
        batch.add_column(sa.Column('email_second_factor', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('auth_session') as batch:
        batch.add_column(sa.Column('mfa_code_hash', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('mfa_code_expires_at', naho.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('mfa_attempts', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('auth_session') as batch:
        batch.drop_column('mfa_attempts')
        batch.drop_column('mfa_code_expires_at')
        batch.drop_column('mfa_code_hash')
    with op.batch_alter_table('account') as batch:
        batch.drop_column('email_second_factor')
