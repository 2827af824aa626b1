"""LMS directory: lookups, every hash format, streaming, read-only access."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from idp.lms.directory import get_directory
from idp.lms.passwords import hash_password, verify_password
from tests.helpers import DEMO_PASSWORD


@pytest.mark.parametrize("login", ["student1", "STUDENT1", " student1@example.edu ",
                                   "Student1@Example.EDU"])
def test_find_by_username_or_email_case_insensitive(app_ctx, login):
    person = get_directory().find(login)
    assert person is not None and person.subject == "student:1"
    assert person.kind == "student" and person.email == "student1@example.edu"


def test_find_unknown_and_silly_logins(app_ctx):
    directory = get_directory()
    for login in ["", "   ", "nobody", "x" * 300, "a\x00b", "' OR 1=1 --"]:
        assert directory.find(login) is None


def test_person_mapping_for_student_mentor_staff(app_ctx):
    directory = get_directory()
    student = directory.get("student:1")
    assert student.zulip_role == "member" and student.active
    assert student.groups[0] == "students"
    assert student.batch_name and student.course_name
    assert any(g.startswith("course-") for g in student.groups)
    assert student.mentor_id == 1
    mentor = directory.get("mentor:1")
    assert mentor.zulip_role == "moderator" and mentor.groups == ("mentors",)
    staff = directory.find("staff1")
    assert staff.zulip_role == "administrator" and "staff" in staff.groups and staff.is_staff


def test_inactive_student_is_found_but_not_active(app_ctx):
    directory = get_directory()
    assert directory.get("student:5").active is False
    assert directory.get_active("student:5") is None


@pytest.mark.parametrize("subject", ["student:999999", "teacher:1", "student:", "student:-1",
                                     "student:99999999999999999999", "mentor:abc", ""])
def test_get_bad_or_missing_subject(app_ctx, subject):
    assert get_directory().get(subject) is None


@pytest.mark.parametrize("login,scheme_prefix", [
    ("student1", "pbkdf2_sha256$"), ("student2", "$2y$"), ("student3", "$6$"),
    ("student4", "$argon2")])
def test_authenticate_each_hash_format(app_ctx, lms, login, scheme_prefix):
    directory = get_directory()
    with directory.engine.connect() as conn:
        stored = conn.execute(text("SELECT password FROM students WHERE username = :u"),
                              {"u": login}).scalar()
    assert stored.startswith(scheme_prefix)
    assert directory.authenticate(login, DEMO_PASSWORD).subject.startswith("student:")
    assert directory.authenticate(login, DEMO_PASSWORD + "x") is None


def test_stored_iteration_count_is_honoured():
    low = hash_password("pw", "django_pbkdf2_sha256", rounds=1000)
    high = hash_password("pw", "django_pbkdf2_sha256", rounds=2000)
    assert low.split("$")[1] == "1000" and high.split("$")[1] == "2000"
    assert verify_password("pw", low) and verify_password("pw", high)
    assert not verify_password("pw", low.replace("$1000$", "$2000$"))


def test_django_variants_and_php_bcrypt():
    for scheme, settings in [("django_bcrypt_sha256", {"rounds": 4}),
                             ("django_argon2", {"rounds": 1, "memory_cost": 1024}),
                             ("bcrypt", {"rounds": 4, "ident": "2b"})]:
        stored = hash_password("pw", scheme, **settings)
        assert verify_password("pw", stored) and not verify_password("px", stored)


def test_bcrypt_73_byte_password_is_cut_like_php_not_a_crash():
    seventy_two = "a" * 72
    stored = hash_password(seventy_two, "bcrypt", rounds=4, ident="2y")
    assert verify_password(seventy_two + "b", stored)  # PHP's password_verify agrees
    assert not verify_password("a" * 71, stored)


@pytest.mark.parametrize("stored", [None, "", "plaintext", "$1$abc$def", "pbkdf2_sha256$x$y$z",
                                    "$2y$04$short", "!unusable"])
def test_unknown_or_broken_hashes_never_verify(stored):
    assert verify_password("anything", stored) is False


def test_overlong_password_is_refused_before_hashing(monkeypatch):
    from idp.lms import passwords

    monkeypatch.setattr(passwords._context, "verify", lambda *a: pytest.fail("hashed"))
    assert verify_password("x" * 5000, "pbkdf2_sha256$1000$salt$hash") is False


def test_iter_people_streams_everyone(app_ctx):
    people = list(get_directory().iter_people(batch_size=7))
    subjects = {p.subject for p in people}
    assert len(people) == len(subjects) == 60 + 2  # 60 students, 2 mentors (60 // 40 -> 2)
    assert "student:5" in subjects and not next(p for p in people
                                                 if p.subject == "student:5").active


def test_lms_role_is_read_only(app_ctx):
    with get_directory().engine.connect() as conn:
        with pytest.raises(Exception, match="read-only|permission denied"):
            conn.execute(text("UPDATE students SET first_name = 'x' WHERE id = 1"))


def test_lookup_is_one_indexed_query(app_ctx, lms_admin):
    with lms_admin.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute("EXPLAIN SELECT id FROM students WHERE lower(username) = 'student1' "
                    "OR lower(email) = 'student1'")
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "students_lower_username_idx" in plan and "students_lower_email_idx" in plan
