"""deprovisioning: the generic outbox (messages by priority, idempotency key, channel state);
provisioning's outbox rows move onto it; person_revocations (idp.revocation)

Revision ID: 0007_deprovisioning
Revises: 0005_merge_features
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_deprovisioning"
down_revision = "0005_merge_features"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
PRIORITY = ("CASE action WHEN 'deactivate' THEN 0 WHEN 'create' THEN 10 "
            "WHEN 'reactivate' THEN 10 ELSE 50 END")


def upgrade():
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("ordering_key", sa.String(128), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("batch_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
    )
    op.create_index("ix_outbox_messages_batch_id", "outbox_messages", ["batch_id"])
    op.create_index("ix_outbox_messages_ready", "outbox_messages", ["channel", "priority", "id"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_outbox_messages_key", "outbox_messages",
                    ["channel", "ordering_key", "id"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_outbox_messages_status", "outbox_messages", ["status", "id"])
    op.create_table(
        "outbox_channels",
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("breaker", sa.String(16), nullable=False, server_default="closed"),
        sa.Column("paused_until", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", TS, nullable=True),
        sa.Column("last_success_at", TS, nullable=True),
        sa.Column("capabilities", postgresql.JSONB(astext_type=sa.Text()), nullable=False,
                  server_default=sa.text("'{}'::jsonb")),
        sa.Column("checked_at", TS, nullable=True),
    )
    op.create_table(
        "person_revocations",
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("revoked_at", TS, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.execute(
        "INSERT INTO outbox_messages (channel, kind, ordering_key, priority, idempotency_key, "
        "batch_id, payload, status, attempts, next_attempt_at, last_error, created_at, "
        "changed_at, delivered_at) "
        f"SELECT 'zulip', 'provision.' || action, subject, {PRIORITY}, 'provision:' || id, "
        "run_id, payload, status, attempts, next_attempt_at, last_error, created_at, "
        "changed_at, delivered_at FROM provision_outbox ORDER BY id")
    op.drop_table("provision_outbox")


def downgrade():
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
    op.execute(
        "INSERT INTO provision_outbox (run_id, subject, action, payload, status, attempts, "
        "next_attempt_at, last_error, created_at, changed_at, delivered_at) "
        "SELECT coalesce(batch_id, 0), ordering_key, substr(kind, 11), payload, "
        "CASE status WHEN 'unsupported' THEN 'failed' ELSE status END, attempts, "
        "next_attempt_at, last_error, created_at, changed_at, delivered_at "
        "FROM outbox_messages WHERE kind LIKE 'provision.%' ORDER BY id")
    op.drop_table("person_revocations")
    op.drop_table("outbox_channels")
    op.drop_table("outbox_messages")
