"""Person: everything any protocol says about someone, built from one LMS row.

SAML attributes, OIDC claims, SCIM payloads and context-API answers are views of this object.
The role and group mapping (README, "Roles and groups") is :class:`RoleMapping`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

KINDS = ("student", "mentor")


def slug(text: str) -> str:
    """``"JEE 2026 – Morning"`` → ``"jee-2026-morning"`` (ASCII, lower case, dashes)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "unnamed"


def make_subject(kind: str, lms_id: int) -> str:
    return f"{kind}:{lms_id}"


def parse_subject(subject: str) -> tuple[str, int] | None:
    """``"student:42"`` → ``("student", 42)``; anything else → None."""
    kind, sep, number = subject.partition(":")
    if not sep or kind not in KINDS or not number.isdigit() or len(number) > 18:
        return None
    return kind, int(number)


@dataclass(frozen=True)
class Person:
    """One LMS identity. ``subject`` is stable for life (``student:42``); ``email`` may change."""

    subject: str
    kind: str
    lms_id: int
    username: str
    email: str
    first_name: str
    last_name: str
    display_name: str
    zulip_role: str
    groups: tuple[str, ...]
    active: bool
    is_staff: bool = False
    batch_id: int | None = None
    batch_name: str | None = None
    course_id: int | None = None
    course_name: str | None = None
    mentor_id: int | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def full_name(self) -> str:
        return self.display_name or f"{self.first_name} {self.last_name}".strip() or self.username


@dataclass(frozen=True)
class RoleMapping:
    """LMS kind → Zulip role and groups.

    Defaults: active student → ``member``; mentor → ``moderator``; an email listed in
    ``IDP_STAFF_EMAILS`` → ``administrator`` (whatever its kind). Groups: ``students`` or
    ``mentors``, ``staff`` for staff, one group per batch (slug of the batch name) and one per
    course (``course-`` + slug of the course name).
    """

    roles: dict[str, str]
    staff_emails: frozenset[str] = frozenset()

    def build(self, *, kind: str, lms_id: int, username: str, email: str, first_name: str,
              last_name: str, display_name: str, active: bool, batch_id: int | None = None,
              batch_name: str | None = None, course_id: int | None = None,
              course_name: str | None = None, mentor_id: int | None = None) -> Person:
        email = (email or "").strip()
        is_staff = email.lower() in self.staff_emails
        groups = ["students" if kind == "student" else "mentors"]
        if is_staff:
            groups.append("staff")
        if batch_name:
            groups.append(slug(batch_name))
        if course_name:
            groups.append("course-" + slug(course_name))
        role = self.roles["staff"] if is_staff else self.roles[kind]
        return Person(
            subject=make_subject(kind, lms_id), kind=kind, lms_id=lms_id,
            username=username or "", email=email, first_name=first_name or "",
            last_name=last_name or "", display_name=(display_name or "").strip(),
            zulip_role=role, groups=tuple(dict.fromkeys(groups)), active=active,
            is_staff=is_staff, batch_id=batch_id, batch_name=batch_name, course_id=course_id,
            course_name=course_name, mentor_id=mentor_id)
