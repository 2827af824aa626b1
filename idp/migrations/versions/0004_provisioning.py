"""provisioning: ledger of managed Zulip accounts, plan runs, outbox

Revision ID: 0004_provisioning
Revises: 0001_foundation
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_provisioning"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "provision_ledger",
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("zulip_user_id", sa.String(64), nullable=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("groups", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("adopted_at", TS, nullable=False),
        sa.Column("last_synced_at", TS, nullable=True),
    )
    op.create_index("ix_provision_ledger_lower_email", "provision_ledger",
                    [sa.text("lower(email)")])
    op.create_table(
        "provision_runs",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("people_seen", sa.Integer(), nullable=False),
        sa.Column("managed", sa.Integer(), nullable=False),
        sa.Column("deactivations", sa.Integer(), nullable=False),
        sa.Column("counts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_provision_runs_started_at", "provision_runs", ["started_at"])
    op.create_index("ix_provision_runs_status", "provision_runs", ["status"])
    op.create_table(
        "provision_outbox",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
    )
    op.create_index("ix_provision_outbox_run_id", "provision_outbox", ["run_id"])
    op.create_index("ix_provision_outbox_pending", "provision_outbox", ["subject", "id"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_provision_outbox_status", "provision_outbox", ["status", "id"])


def downgrade():
    op.drop_table("provision_outbox")
    op.drop_table("provision_runs")
    op.drop_table("provision_ledger")
