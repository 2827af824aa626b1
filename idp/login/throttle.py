"""Failed-login throttling, checked before any password hash is computed.

Two keys per attempt: the account (``account:<login>``) and the client address
(``ip:<address>``). After ``limit`` failures inside the window (defaults: 5 per account, 30 per
address, 15 minutes), each further failure sets a delay of 2^(n-limit) seconds, capped at
``IDP_THROTTLE_MAX_DELAY`` (300 s). While a key is delayed, attempts are answered 429 with
Retry-After and no lookup or hash happens. Counters expire with the window: there is no
permanent lockout for anyone to trigger against someone else. Stored in the bridge database so
every replica sees the same counters.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import bindparam, case, delete, select
from sqlalchemy.dialects.postgresql import insert

from .. import clock
from ..config import Settings
from ..extensions import autocommit_connection, db
from ..models import LoginThrottle


@dataclass(frozen=True)
class ThrottleKey:
    key: str
    scope: str  # "account" | "ip"
    limit: int


def keys_for(settings: Settings, login: str, ip: str) -> list[ThrottleKey]:
    return [ThrottleKey("account:" + login.strip().lower()[:254], "account",
                        settings.throttle_account_failures),
            ThrottleKey("ip:" + ip, "ip", settings.throttle_ip_failures)]


@dataclass(frozen=True)
class ThrottleState:
    retry_after: int | None  # seconds to wait, when a key is delayed now
    scope: str | None  # which key delays ("account" | "ip")
    account_counted: bool  # the account has failures on record (to clear on success)


_CHECK = select(LoginThrottle.key, LoginThrottle.blocked_until).where(
    LoginThrottle.key.in_(bindparam("keys", expanding=True)))


def check(keys: list[ThrottleKey]) -> ThrottleState:
    """One query (no transaction around it): is any key delayed now, and does the account
    have failures on record?"""
    now = clock.now()
    with autocommit_connection() as conn:
        rows = conn.execute(_CHECK, {"keys": [k.key for k in keys]}).all()
    scopes = {k.key: k.scope for k in keys}
    blocked = [r for r in rows if r.blocked_until is not None and r.blocked_until > now]
    counted = any(scopes[r.key] == "account" for r in rows)
    if not blocked:
        return ThrottleState(None, None, counted)
    key, until = max(blocked, key=lambda r: r.blocked_until)
    return ThrottleState(max(1, math.ceil((until - now).total_seconds())), scopes[key], counted)


def record_failure(settings: Settings, keys: list[ThrottleKey]) -> None:
    """Count one failure on every key (atomic upsert; the caller commits)."""
    now = clock.now()
    window_floor = now - dt.timedelta(seconds=settings.throttle_window)
    table = LoginThrottle.__table__
    for k in keys:
        stmt = insert(table).values(key=k.key, failures=1, window_start=now, blocked_until=None)
        expired = table.c.window_start < window_floor
        stmt = stmt.on_conflict_do_update(index_elements=[table.c.key], set_={
            "failures": case((expired, 1), else_=table.c.failures + 1),
            "window_start": case((expired, now), else_=table.c.window_start),
        }).returning(table.c.failures)
        failures = db.session.execute(stmt).scalar_one()
        if failures >= k.limit:
            delay = min(settings.throttle_max_delay, 2 ** min(failures - k.limit, 30))
            db.session.execute(table.update().where(table.c.key == k.key)
                               .values(blocked_until=now + dt.timedelta(seconds=delay)))


def clear_account(keys: list[ThrottleKey]) -> None:
    """A successful login clears its account counter (never the address counter, which an
    attacker could otherwise reset with an account of their own)."""
    db.session.execute(delete(LoginThrottle).where(
        LoginThrottle.key.in_([k.key for k in keys if k.scope == "account"])))


def prune(settings: Settings) -> int:
    """Drop counters whose window and delay are both over (housekeeping)."""
    now = clock.now()
    floor = now - dt.timedelta(seconds=settings.throttle_window)
    result = db.session.execute(delete(LoginThrottle).where(
        LoginThrottle.window_start < floor,
        (LoginThrottle.blocked_until.is_(None)) | (LoginThrottle.blocked_until < now)))
    return result.rowcount or 0


def describe_delay(seconds: int) -> str:
    """``1 second``, ``45 seconds``, ``1 minute``, ``5 minutes`` (rounded up)."""
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    minutes = -(-seconds // 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
