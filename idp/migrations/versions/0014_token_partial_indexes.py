"""oidc: partial indexes on oidc_tokens (refresh_token_hash unique, subject) that leave out the
NULLs of service tokens, so a client-credentials token's INSERT maintains two indexes fewer

Revision ID: 0014_token_partial_indexes
Revises: 0013_slo_response_location
Create Date: 2026-11-27 11:20:00

Every query on these columns compares with "=" (a strict operator, which implies IS NOT NULL),
so the planner uses the partial indexes as it used the full ones; no ON CONFLICT names them.
The unique index is built before the constraint it replaces is dropped.
"""
from alembic import op
import sqlalchemy as sa

revision = '0014_token_partial_indexes'
down_revision = '0013_slo_response_location'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('uq_oidc_tokens_refresh_token_hash', 'oidc_tokens', ['refresh_token_hash'],
                    unique=True, postgresql_where=sa.text('refresh_token_hash IS NOT NULL'))
    op.drop_constraint('oidc_tokens_refresh_token_hash_key', 'oidc_tokens', type_='unique')
    op.drop_index('ix_oidc_tokens_subject', table_name='oidc_tokens')
    op.create_index('ix_oidc_tokens_subject', 'oidc_tokens', ['subject'],
                    postgresql_where=sa.text('subject IS NOT NULL'))


def downgrade():
    op.drop_index('ix_oidc_tokens_subject', table_name='oidc_tokens')
    op.create_index('ix_oidc_tokens_subject', 'oidc_tokens', ['subject'])
    op.create_unique_constraint('oidc_tokens_refresh_token_hash_key', 'oidc_tokens',
                                ['refresh_token_hash'])
    op.drop_index('uq_oidc_tokens_refresh_token_hash', table_name='oidc_tokens')
