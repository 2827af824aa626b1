"""Attribute-release profiles: which SAML attributes an SP receives about a Person (SAML core
§2.7.3). Names are plain ``Name`` values in the basic name format; Zulip matches by Name.

Profile ``zulip`` (default): ``email``, ``first_name``, ``last_name``, ``zulip_role`` (one of
Zulip's five role names), multi-valued ``zulip_groups``, ``lms_id`` and ``lms_kind``.
Profile ``basic``: ``email``, ``first_name``, ``last_name``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..people import Person

Attributes = list[tuple[str, list[str]]]


def basic_attributes(person: Person) -> Attributes:
    return [("email", [person.email]), ("first_name", [person.first_name]),
            ("last_name", [person.last_name])]


def zulip_attributes(person: Person) -> Attributes:
    return basic_attributes(person) + [
        ("zulip_role", [person.zulip_role]),
        ("zulip_groups", list(person.groups)),
        ("lms_id", [str(person.lms_id)]),
        ("lms_kind", [person.kind]),
    ]


PROFILES: dict[str, Callable[[Person], Attributes]] = {
    "zulip": zulip_attributes,
    "basic": basic_attributes,
}
DEFAULT_PROFILE = "zulip"


def release(profile: str, person: Person) -> Attributes:
    """The attributes ``profile`` releases for ``person`` (unknown profile → KeyError, which
    the registry prevents by refusing unknown names)."""
    return PROFILES[profile](person)
