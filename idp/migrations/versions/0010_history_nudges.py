"""history and nudges: daily learning snapshots, subject catalogue, nudge runs and mutes

Revision ID: 0010_history_nudges
Revises: 0005_merge_features
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010_history_nudges"
down_revision = "0005_merge_features"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "history_snapshots",
        sa.Column("student_id", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("course_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("exams_taken", sa.Integer(), nullable=True),
        sa.Column("videos_watched", sa.Integer(), nullable=True),
        sa.Column("current_streak", sa.SmallInteger(), nullable=True),
        sa.Column("best_streak", sa.SmallInteger(), nullable=True),
        sa.Column("scored_attempts", sa.Integer(), nullable=False),
        sa.Column("score_sum_tenths", sa.Integer(), nullable=False),
        sa.Column("percentile_tenths", sa.SmallInteger(), nullable=True),
        sa.Column("last_attempt_day", sa.Date(), nullable=True),
        sa.Column("subject_tenths", postgresql.ARRAY(sa.SmallInteger()), nullable=True),
    )
    # rows arrive day by day: a BRIN index finds "the last N days" in a few pages
    op.create_index("ix_history_snapshots_day_brin", "history_snapshots", ["day"],
                    postgresql_using="brin")
    op.create_table(
        "history_subjects",
        sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
    )
    op.create_table(
        "history_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("taken_at", TS, nullable=False),
        sa.Column("students", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
    )
    op.create_table(
        "nudge_runs",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("students", sa.Integer(), nullable=False),
        sa.Column("nudges", sa.Integer(), nullable=False),
        sa.Column("digests", sa.Integer(), nullable=False),
        sa.Column("suppressed", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("approved_at", TS, nullable=True),
    )
    op.create_table(
        "nudges",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("zulip_message_id", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_nudges_run_id", "nudges", ["run_id"])
    op.create_index("ix_nudges_status", "nudges", ["status"])
    op.create_index("ix_nudges_recipient_created", "nudges", ["recipient", "created_at"])
    op.create_table(
        "nudge_preferences",
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("nudges_off", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "nudge_mutes",
        sa.Column("mentor_id", sa.Integer(), primary_key=True),
        sa.Column("student_id", sa.Integer(), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade():
    for table in ("nudge_mutes", "nudge_preferences", "nudges", "nudge_runs"):
        op.drop_table(table)
    op.drop_table("history_days")
    op.drop_table("history_subjects")
    op.drop_index("ix_history_snapshots_day_brin", table_name="history_snapshots")
    op.drop_table("history_snapshots")
