"""oidc: remembered consents; the claims request and the sign-in method kept with codes/tokens

Revision ID: 0009_oidc_consent
Revises: 0005_merge_features

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0009_oidc_consent"
down_revision = "0005_merge_features"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "oidc_consents",
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scopes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["oidc_clients.client_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subject", "client_id"),
    )
    op.create_index("ix_oidc_consents_client_id", "oidc_consents", ["client_id"])
    op.add_column("oidc_authorization_codes", sa.Column("claims", sa.Text(), nullable=True))
    op.add_column("oidc_authorization_codes",
                  sa.Column("auth_method", sa.String(length=16), nullable=True))
    op.add_column("oidc_tokens", sa.Column("claims", sa.Text(), nullable=True))


def downgrade():
    op.drop_column("oidc_tokens", "claims")
    op.drop_column("oidc_authorization_codes", "auth_method")
    op.drop_column("oidc_authorization_codes", "claims")
    op.drop_index("ix_oidc_consents_client_id", table_name="oidc_consents")
    op.drop_table("oidc_consents")
