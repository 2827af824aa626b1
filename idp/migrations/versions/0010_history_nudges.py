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
        sa.Column("course_id", sa.SmallInteger(), nullable=True),
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


def downgrade():
    op.drop_table("history_days")
    op.drop_table("history_subjects")
    op.drop_index("ix_history_snapshots_day_brin", table_name="history_snapshots")
    op.drop_table("history_snapshots")
