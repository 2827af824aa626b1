"""CSRF protection: Flask-WTF's token, plus a check that a form was sent from the bridge's own
pages, i.e. from exactly the origin of ``IDP_ISSUER``.

The comparison is against the configured issuer, never against the request's ``Host`` or
``X-Forwarded-Host``: those come from the client (or, behind the proxy, from what the client
sent it), so a check against them proves nothing. The ``Origin`` header (RFC 6454 §7, Fetch
"serializing a request origin") is sent by browsers on every form POST; the bridge's
``Referrer-Policy: strict-origin-when-cross-origin`` keeps both it and a same-origin
``Referer`` (its fallback) on the bridge's own forms.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, request
from flask_wtf.csrf import CSRFError, CSRFProtect

_DEFAULT_PORTS = {"http": 80, "https": 443}
_OTHER_SITE = "The form was sent from another site"
_NO_ORIGIN = "The browser sent neither Origin nor Referer"
CROSS_SITE_REASONS = (_OTHER_SITE, _NO_ORIGIN)
"""How the reasons of this module's refusals start (errors.py words the page after them)."""


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, the default port left out and the
    host lower-cased; None for anything else (``null``, a relative or malformed URL)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def check_request_origin(issuer: str) -> str | None:
    """Why this state-changing request does not come from the issuer's origin, or None.

    ``Origin`` decides when present (``null`` is refused: a hostile page can make a browser
    send it by hiding its referrer); otherwise the ``Referer``'s origin. With neither header,
    an https bridge refuses (every browser it serves sends one); a plain-http development
    bridge relies on the token alone."""
    expected = origin_of(issuer)
    origin = request.headers.get("Origin")
    if origin is not None:
        return None if origin_of(origin) == expected else \
            f"{_OTHER_SITE} (Origin)."
    referer = request.headers.get("Referer")
    if referer is not None:
        return None if origin_of(referer) == expected else \
            f"{_OTHER_SITE} (Referer)."
    if expected is not None and expected.startswith("https://"):
        return f"{_NO_ORIGIN}."
    return None


class IssuerCSRFProtect(CSRFProtect):
    """Flask-WTF's CSRFProtect (token in the session, exemptions) whose same-origin check
    compares with ``IDP_ISSUER`` (Flask-WTF's own ``WTF_CSRF_SSL_STRICT`` compares the
    ``Referer`` with the request's Host and is switched off)."""

    def protect(self, apply_exemptions: bool = False) -> None:
        if apply_exemptions and (not request.endpoint or self._is_exempt()):
            return
        if request.method not in current_app.config["WTF_CSRF_METHODS"]:
            return
        problem = check_request_origin(current_app.config["IDP"].issuer)
        if problem is not None:
            raise CSRFError(problem)
        super().protect(apply_exemptions=False)
