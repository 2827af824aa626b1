"""saml: service providers, pending AuthnRequests, SAML logins, logout chains

Revision ID: 0002_saml
Revises: 0001_foundation
Create Date: 2026-11-25 01:45:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002_saml'
down_revision = '0001_foundation'
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade():
    op.create_table('saml_service_providers',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('entity_id', sa.String(length=1024), nullable=False),
    sa.Column('acs_urls', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('slo_url', sa.String(length=2048), nullable=True),
    sa.Column('certificate', sa.Text(), nullable=True),
    sa.Column('want_authn_requests_signed', sa.Boolean(), nullable=False),
    sa.Column('sign_assertion', sa.Boolean(), nullable=False),
    sa.Column('sign_response', sa.Boolean(), nullable=False),
    sa.Column('attribute_profile', sa.String(length=32), nullable=False),
    sa.Column('created_at', TZ, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('entity_id')
    )
    op.create_table('saml_pending_requests',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('sp_entity_id', sa.String(length=1024), nullable=False),
    sa.Column('request_id', sa.String(length=256), nullable=False),
    sa.Column('acs_url', sa.String(length=2048), nullable=False),
    sa.Column('relay_state', sa.String(length=1024), nullable=True),
    sa.Column('force_authn', sa.Boolean(), nullable=False),
    sa.Column('is_passive', sa.Boolean(), nullable=False),
    sa.Column('created_at', TZ, nullable=False),
    sa.Column('expires_at', TZ, nullable=False),
    sa.Column('answered_at', TZ, nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index('ix_saml_pending_requests_expires_at', 'saml_pending_requests',
                    ['expires_at'])
    op.create_index('ux_saml_pending_sp_request', 'saml_pending_requests',
                    ['sp_entity_id', 'request_id'], unique=True)
    op.create_table('saml_logins',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('login_session_id', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('sp_entity_id', sa.String(length=1024), nullable=False),
    sa.Column('name_id', sa.String(length=320), nullable=False),
    sa.Column('session_index', sa.String(length=64), nullable=False),
    sa.Column('created_at', TZ, nullable=False),
    sa.Column('ended_at', TZ, nullable=True),
    sa.Column('logout_request_id', sa.String(length=64), nullable=True),
    sa.Column('logout_chain', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['login_session_id'], ['login_sessions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_index')
    )
    op.create_index('ix_saml_logins_login_session_id', 'saml_logins', ['login_session_id'])
    op.create_index('ix_saml_logins_subject', 'saml_logins', ['subject'])
    op.create_index('ix_saml_logins_logout_chain', 'saml_logins', ['logout_chain'])
    op.create_table('saml_logout_chains',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('login_session_id', sa.String(length=64), nullable=False),
    sa.Column('initiator_entity_id', sa.String(length=1024), nullable=True),
    sa.Column('initiator_request_id', sa.String(length=256), nullable=True),
    sa.Column('initiator_relay_state', sa.String(length=1024), nullable=True),
    sa.Column('created_at', TZ, nullable=False),
    sa.Column('expires_at', TZ, nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index('ix_saml_logout_chains_expires_at', 'saml_logout_chains', ['expires_at'])


def downgrade():
    op.drop_table('saml_logout_chains')
    op.drop_table('saml_logins')
    op.drop_table('saml_pending_requests')
    op.drop_table('saml_service_providers')
