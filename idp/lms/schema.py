"""The LMS contract as SQLAlchemy Core tables (DESIGN.md, "The LMS contract").

These tables belong to the LMS: the bridge only reads them. They live on their own MetaData so
the bridge's migrations never touch them; the demo generator creates them in a demo LMS.
Where a real LMS differs, its DBA provides SQL views with these names and columns.
"""

from sqlalchemy import (
                        Boolean,
                        Column,
                        Date,
                        DateTime,
                        Float,
                        ForeignKey,
                        Integer,
                        MetaData,
                        String,
                        Table,
                        Text,
)

lms_metadata = MetaData()

courses = Table(
    "courses", lms_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
)

batches = Table(
    "batches", lms_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("url", Text),
    Column("course_id", Integer, ForeignKey("courses.id")),
    Column("is_local", Boolean, default=False),
    Column("created", DateTime(timezone=True)),
)

mentors = Table(
    "mentors", lms_metadata,
    Column("id", Integer, primary_key=True),
    Column("username", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("display_name", Text),
    Column("students_count", Integer),
    Column("created", DateTime(timezone=True)),
    Column("password", Text),
)

students = Table(
    "students", lms_metadata,
    Column("id", Integer, primary_key=True),
    Column("username", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("display_name", Text),
    Column("is_active", Boolean, nullable=False),
    Column("created", DateTime(timezone=True)),
    Column("batch_id", Integer, ForeignKey("batches.id")),
    Column("mentor_id", Integer, ForeignKey("mentors.id")),
    Column("password", Text),
)

student_activities = Table(
    "student_activities", lms_metadata,
    Column("id", Integer, primary_key=True),
    Column("student_id", String(32), nullable=False),  # text in the LMS
    Column("current_streak", Integer),
    Column("highest_streak", Integer),
    Column("total_videos_watched", Integer),
    Column("total_exams_taken", Integer),
    Column("timestamp", DateTime(timezone=True)),
    Column("fetch_date", Date),
)

attempts = Table(
    "attempts", lms_metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("date", DateTime(timezone=True), nullable=False),
    Column("percentage", Float),
)

subject_stats = Table(
    "subject_stats", lms_metadata,
    Column("id", Integer, primary_key=True),
    Column("attempt_id", Integer, nullable=False),
    Column("subject", Text, nullable=False),
    Column("score", Float),
)

# Indexes the bridge relies on (created by the demo generator; docs/lms-indexes.md lists them
# for a real LMS's DBA).
RECOMMENDED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS students_lower_username_idx ON students (lower(username))",
    "CREATE INDEX IF NOT EXISTS students_lower_email_idx ON students (lower(email))",
    "CREATE INDEX IF NOT EXISTS students_mentor_id_idx ON students (mentor_id)",
    "CREATE INDEX IF NOT EXISTS students_batch_id_idx ON students (batch_id)",
    "CREATE INDEX IF NOT EXISTS mentors_lower_username_idx ON mentors (lower(username))",
    "CREATE INDEX IF NOT EXISTS mentors_lower_email_idx ON mentors (lower(email))",
    "CREATE INDEX IF NOT EXISTS student_activities_student_id_idx "
    "ON student_activities (student_id, fetch_date)",
    # covering: index-only scans for per-student aggregates and batch percentile ranks
    "CREATE INDEX IF NOT EXISTS attempts_user_id_date_pct_idx "
    "ON attempts (user_id, date) INCLUDE (percentage)",
    "CREATE INDEX IF NOT EXISTS subject_stats_attempt_id_idx ON subject_stats (attempt_id)",
)
