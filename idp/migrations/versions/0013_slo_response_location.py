"""saml: an SP's SingleLogoutService ResponseLocation (SAML metadata §2.2.2)

Revision ID: 0013_slo_response_location
Revises: 0012_merge_session_nine
Create Date: 2026-11-27 10:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0013_slo_response_location'
down_revision = '0012_merge_session_nine'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('saml_service_providers',
                  sa.Column('slo_response_url', sa.String(length=2048), nullable=True))


def downgrade():
    op.drop_column('saml_service_providers', 'slo_response_url')
