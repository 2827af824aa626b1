"""Request facts that depend on the deployment: the client address behind trusted proxies."""

from __future__ import annotations

from flask import request


def client_ip() -> str:
    """The client address. ``IDP_TRUSTED_PROXY_COUNT`` proxies are trusted through
    ProxyFix (installed in create_app), so ``remote_addr`` is already the real client."""
    return (request.remote_addr or "unknown")[:64]
