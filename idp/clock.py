"""The one clock of the bridge.

Every module asks :func:`now` for the time so tests can move it (DESIGN.md, conventions).
"""

from __future__ import annotations

import datetime as _dt

_offset = _dt.timedelta(0)


def now() -> _dt.datetime:
    """Current time, timezone-aware UTC (plus any offset a test has set)."""
    return _dt.datetime.now(_dt.UTC) + _offset


def timestamp() -> int:
    """Current time as integer seconds since the epoch (JWT ``iat``/``exp``)."""
    return int(now().timestamp())


def advance(seconds: float) -> None:
    """Move the clock forward (tests only)."""
    global _offset
    _offset += _dt.timedelta(seconds=seconds)


def reset() -> None:
    """Undo :func:`advance` (tests only)."""
    global _offset
    _offset = _dt.timedelta(0)
