"""Validation of what a caller puts in the path and query string of the context API and the
mentor pages. Every refusal names the parameter and what it accepts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .queries import MENTOR_SORTS

MAX_ID = 2**31 - 1          # PostgreSQL integer: the LMS's id columns
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_OFFSET = 1_000_000
_DIGITS = re.compile(r"[0-9]{1,12}")


class BadParameter(ValueError):
    """A path or query parameter is malformed; the message is safe to show the caller."""


def parse_id(raw: str, what: str) -> int:
    """``"42"`` → 42; anything but a whole number from 1 to 2147483647 is refused."""
    if not _DIGITS.fullmatch(raw or "") or not 1 <= int(raw) <= MAX_ID:
        raise BadParameter(f"{what} id must be a whole number from 1 to {MAX_ID}")
    return int(raw)


def _int(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadParameter(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


@dataclass(frozen=True)
class ListQuery:
    sort: str
    descending: bool
    limit: int
    offset: int

    @property
    def order(self) -> str:
        return "desc" if self.descending else "asc"


def parse_list_query(args: Mapping[str, str], *, default_limit: int = DEFAULT_LIMIT) -> ListQuery:
    """``limit`` (1-200), ``offset`` (0-1000000), ``sort`` (a known key), ``order`` (asc|desc).

    The mentor pages use ``page`` (1-based) instead of ``offset``; it is turned into one."""
    sort = args.get("sort", "name")
    if sort not in MENTOR_SORTS:
        raise BadParameter(f"sort must be one of {', '.join(MENTOR_SORTS)}")
    order = args.get("order", "asc")
    if order not in ("asc", "desc"):
        raise BadParameter("order must be asc or desc")
    limit = _int(args, "limit", default_limit, 1, MAX_LIMIT)
    if "page" in args:
        if "offset" in args:
            raise BadParameter("give either page or offset, not both")
        page = _int(args, "page", 1, 1, MAX_OFFSET // limit + 1)
        offset = (page - 1) * limit
    else:
        offset = _int(args, "offset", 0, 0, MAX_OFFSET)
    return ListQuery(sort, order == "desc", limit, offset)
