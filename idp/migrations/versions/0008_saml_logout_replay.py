"""saml: seen LogoutRequest IDs (replay), SP Single Logout binding, requested Subject

Revision ID: 0008_saml_logout_replay
Revises: 0005_merge_features
Create Date: 2026-11-27 07:10:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0008_saml_logout_replay'
down_revision = '0005_merge_features'
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect'


def upgrade():
    op.create_table('saml_seen_logout_requests',
    sa.Column('sp_entity_id', sa.String(length=1024), nullable=False),
    sa.Column('request_id', sa.String(length=256), nullable=False),
    sa.Column('expires_at', TZ, nullable=False),
    sa.PrimaryKeyConstraint('sp_entity_id', 'request_id')
    )
    op.create_index('ix_saml_seen_logout_requests_expires_at', 'saml_seen_logout_requests',
                    ['expires_at'], unique=False)
    op.add_column('saml_service_providers',
                  sa.Column('slo_binding', sa.String(length=80), nullable=False,
                            server_default=REDIRECT))
    op.add_column('saml_pending_requests',
                  sa.Column('subject_name_id', sa.String(length=320), nullable=True))


def downgrade():
    op.drop_column('saml_pending_requests', 'subject_name_id')
    op.drop_column('saml_service_providers', 'slo_binding')
    op.drop_index('ix_saml_seen_logout_requests_expires_at',
                  table_name='saml_seen_logout_requests')
    op.drop_table('saml_seen_logout_requests')
