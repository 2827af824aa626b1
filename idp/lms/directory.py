"""The directory: find, authenticate and list LMS people as :class:`~idp.people.Person`.

Protocol code never queries LMS tables; it asks the directory (DESIGN.md, "Layout").
Lookups are one indexed query (``lower(username)`` / ``lower(email)`` expression indexes, see
docs/lms-indexes.md); listing streams rows through a server-side cursor.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import text
from sqlalchemy.engine import Engine, RowMapping

from ..events import inactive_login_attempt, send_after_response
from ..people import Person, RoleMapping, parse_subject
from .db import LMSBreaker, lms_fetch_one, lms_query, ping
from .passwords import hash_password, scheme_of, verify_password

_STUDENT_COLUMNS = """
    'student' AS kind, s.id, s.username, s.email, s.first_name, s.last_name, s.display_name,
    s.is_active AS active, s.batch_id, b.name AS batch_name, c.id AS course_id,
    c.name AS course_name, s.mentor_id"""
_MENTOR_COLUMNS = """
    'mentor' AS kind, m.id, m.username, m.email, m.first_name, m.last_name, m.display_name,
    true AS active, NULL::integer AS batch_id, NULL::text AS batch_name,
    NULL::integer AS course_id, NULL::text AS course_name, NULL::integer AS mentor_id"""
_STUDENT_FROM = """
    FROM students s LEFT JOIN batches b ON b.id = s.batch_id
    LEFT JOIN courses c ON c.id = b.course_id"""

# Mentors first: when one login names both a mentor and a student, the mentor account wins.
_FIND_BY_LOGIN = text(f"""
    SELECT {_MENTOR_COLUMNS}, m.password FROM mentors m
     WHERE lower(m.username) = :login OR lower(m.email) = :login
    UNION ALL
    SELECT {_STUDENT_COLUMNS}, s.password {_STUDENT_FROM}
     WHERE lower(s.username) = :login OR lower(s.email) = :login
    LIMIT 2""")
# On the driver (idp.dbapi): the active check runs for every signed-in request.
_GET_STUDENT = f"SELECT {_STUDENT_COLUMNS} {_STUDENT_FROM} WHERE s.id = %(id)s"
_GET_MENTOR = f"SELECT {_MENTOR_COLUMNS} FROM mentors m WHERE m.id = %(id)s"
_ALL_PEOPLE = text(f"""
    SELECT {_MENTOR_COLUMNS} FROM mentors m
    UNION ALL
    SELECT {_STUDENT_COLUMNS} {_STUDENT_FROM}""")
_SAMPLE_HASH = text("SELECT password FROM students WHERE password IS NOT NULL LIMIT 1")

_FALLBACK_DUMMY = ("django_pbkdf2_sha256", {"rounds": 600_000})
MAX_LOGIN_CHARS = 254


@dataclass
class Directory:
    """Read-only directory over the LMS engine. ``breaker`` is THE circuit breaker of this
    LMS: the readers that guard their queries with one (liveness, context) use this one."""

    engine: Engine
    mapping: RoleMapping
    _dummy_hash: str | None = None
    breaker: LMSBreaker = field(default_factory=LMSBreaker)

    def _person(self, row: Mapping[str, Any]) -> Person:
        return self.mapping.build(
            kind=row["kind"], lms_id=row["id"], username=row["username"], email=row["email"],
            first_name=row["first_name"], last_name=row["last_name"],
            display_name=row["display_name"], active=bool(row["active"]),
            batch_id=row["batch_id"], batch_name=row["batch_name"], course_id=row["course_id"],
            course_name=row["course_name"], mentor_id=row["mentor_id"])

    def _find_row(self, login: str) -> RowMapping | None:
        login = login.strip().lower()
        if not login or len(login) > MAX_LOGIN_CHARS or "\x00" in login:
            return None
        with lms_query(self.engine, "find_by_login") as conn:
            return conn.execute(_FIND_BY_LOGIN, {"login": login}).mappings().first()

    def find(self, login: str) -> Person | None:
        """The person whose username or email is ``login`` (case-insensitive), active or not."""
        row = self._find_row(login)
        return self._person(row) if row else None

    def get(self, subject: str) -> Person | None:
        """The person with this stable subject id (``student:42``), active or not."""
        parsed = parse_subject(subject)
        if parsed is None:
            return None
        kind, lms_id = parsed
        if lms_id > 2**31 - 1:
            return None
        row = lms_fetch_one(self.engine, f"get_{kind}",
                            _GET_STUDENT if kind == "student" else _GET_MENTOR, {"id": lms_id})
        return self._person(row) if row else None

    def get_active(self, subject: str) -> Person | None:
        """The person if they exist and are active in the LMS right now, else None."""
        person = self.get(subject)
        return person if person is not None and person.active else None

    def authenticate(self, login: str, password: str) -> Person | None:
        """The active person whose password this is, or None. Unknown, inactive and wrong all
        cost one hash verification (a dummy hash when there is no usable account), so the
        answer and its timing do not tell which it was."""
        row = self._find_row(login)
        if row is None or not row["active"] or not row["password"]:
            verify_password(password, self._dummy())
            if row is not None and not row["active"]:
                send_after_response(inactive_login_attempt, self,
                                    subject=self._person(row).subject)
            return None
        if not verify_password(password, row["password"]):
            return None
        return self._person(row)

    def iter_people(self, batch_size: int = 5000) -> Iterator[Person]:
        """Every student (active or not) and mentor, streamed through a server-side cursor."""
        with lms_query(self.engine, "list_people") as conn:
            result = conn.execution_options(
                isolation_level="REPEATABLE READ", stream_results=True,
                max_row_buffer=batch_size).execute(_ALL_PEOPLE)
            for row in result.mappings():
                yield self._person(row)

    def ping(self) -> None:
        ping(self.engine)

    def _dummy(self) -> str:
        """A hash in the same scheme and cost as the LMS's own, so a missing account takes as
        long as a wrong password. Sampled from the LMS once, then kept."""
        if self._dummy_hash is None:
            with lms_query(self.engine, "sample_hash") as conn:
                sample = conn.execute(_SAMPLE_HASH).scalar()
            self._dummy_hash = _dummy_like(sample)
        return self._dummy_hash


def _dummy_like(sample: str | None) -> str:
    scheme = scheme_of(sample) if sample else None
    if scheme == "django_pbkdf2_sha256":
        rounds = int(sample.split("$")[1])
        return hash_password("dummy-password", scheme, rounds=rounds)
    if scheme in ("bcrypt", "django_bcrypt"):
        return hash_password("dummy-password", "bcrypt", rounds=int(sample.split("$")[-2]))
    if scheme is not None:
        return sample  # same scheme and cost; no password matches a stranger's hash by design
    scheme, settings = _FALLBACK_DUMMY
    return hash_password("dummy-password", scheme, **settings)


def get_directory() -> Directory:
    """The directory of the current app."""
    return current_app.extensions["lms_directory"]
