"""agents: AI-sharing choices, RFC 8707 resource bindings, RFC 7591 registrations

Revision ID: 0011_agents
Revises: 0005_merge_features
Create Date: 2026-11-27 07:10:00

"""
from alembic import op
import sqlalchemy as sa

revision = "0011_agents"
down_revision = "0005_merge_features"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "agent_sharing",
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("shares", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject"),
    )
    op.create_table(
        "oauth_resource_bindings",
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("family_id"),
    )
    op.create_index("ix_oauth_resource_bindings_created_at", "oauth_resource_bindings",
                    ["created_at"])
    op.create_table(
        "oauth_client_registrations",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["oidc_clients.client_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("client_id"),
    )
    op.create_index("ix_oauth_client_registrations_ip_created", "oauth_client_registrations",
                    ["client_ip", "created_at"])


def downgrade():
    op.drop_table("oauth_client_registrations")
    op.drop_table("oauth_resource_bindings")
    op.drop_table("agent_sharing")
