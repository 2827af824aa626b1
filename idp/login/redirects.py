"""Where a browser may be sent after login or launch: local paths, or registered service URLs.

A rejected target falls back to the start page; nothing from the request is ever redirected to
unchecked (open-redirect defence).
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_NEXT = 2048


def safe_local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site (``/x?y``), else None. Refuses scheme-relative
    (``//evil``), backslash tricks (``/\\evil``), control characters and absolute URLs."""
    if not target or len(target) > MAX_NEXT or not target.startswith("/"):
        return None
    if any(ch in target for ch in "\\\r\n\t\x00") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def safe_service_url(target: str | None, registered: tuple[str, ...]) -> str | None:
    """``target`` when it lies under one of the ``registered`` base URLs (same scheme, host and
    port, and a path below the registered path), else None."""
    if not target or len(target) > MAX_NEXT or any(ch in target for ch in "\\\r\n\t\x00"):
        return None
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return None
    for base in registered:
        b = urlsplit(base)
        if (parts.scheme, parts.netloc.lower()) != (b.scheme, b.netloc.lower()):
            continue
        base_path = b.path.rstrip("/")
        if parts.path == base_path or parts.path.startswith(base_path + "/") or not base_path:
            return target
    return None


def safe_next(target: str | None, registered: tuple[str, ...] = ()) -> str:
    """The checked target, or ``/`` when it is not acceptable."""
    return safe_local_path(target) or safe_service_url(target, registered) or "/"
