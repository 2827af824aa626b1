"""Shape checks on raw protocol input, before Authlib sees it.

Every value must be printable ASCII (RFC 6749 Appendix A: VSCHAR) and short; no parameter may
repeat (RFC 6749 §3.1, §3.2); the whole authorization request must fit in a login ``next`` URL.
A failed check becomes an ``invalid_request`` (or ``invalid_client``) answer, never a crash.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote

from werkzeug.datastructures import MultiDict

MAX_VALUE_CHARS = 1024
MAX_AUTHORIZE_QUERY_CHARS = 1800   # next=... must stay under the login form's 2048 limit
MAX_BODY_BYTES = 16 * 1024
MAX_AUTH_HEADER_CHARS = 1024
_VSCHAR = re.compile(r"^[\x20-\x7e]*$")
_URI_SAFE = re.compile(r'^[\x21\x23-\x5b\x5d-\x7e]*$')  # VSCHAR minus space, " and \
_SPACED = re.compile(r'^[\x20\x21\x23-\x5b\x5d-\x7e]*$')  # the same plus space
SPACED = frozenset({"scope", "prompt", "response_type"})
LONG_VALUES = {"id_token_hint": 8192, "claims": 4096}
OPAQUE = frozenset({"state", "nonce", "login_hint", "id_token_hint", "ui_locales",
                    "claims_locales", "acr_values", "display", "claims"})


class ParamProblem(Exception):
    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def check_values(values: MultiDict, *, opaque: frozenset[str] = OPAQUE) -> None:
    """Raise :class:`ParamProblem` for repeated, oversize or non-ASCII parameters."""
    for key in values:
        items = values.getlist(key)
        if len(key) > 64 or not _URI_SAFE.match(key):
            raise ParamProblem("invalid_request", "A parameter name is malformed.")
        if len(items) > 1:
            raise ParamProblem("invalid_request", f"The parameter {key} is repeated.")
        value = items[0]
        if len(value) > LONG_VALUES.get(key, MAX_VALUE_CHARS):
            raise ParamProblem("invalid_request", f"The parameter {key} is too long.")
        pattern = _VSCHAR if key in opaque else _SPACED if key in SPACED else _URI_SAFE
        if not pattern.match(value):
            raise ParamProblem("invalid_request", f"The parameter {key} has characters that "
                                                  f"are not allowed.")


def well_formed(value: str | None, *, opaque: bool = False) -> bool:
    """True when ``value`` alone would pass :func:`check_values` (used to decide whether an
    error may be redirected to ``redirect_uri`` and may echo ``state``)."""
    if value is None or len(value) > MAX_VALUE_CHARS:
        return False
    return bool((_VSCHAR if opaque else _URI_SAFE).match(value))


def check_machine_request(request, form: MultiDict | None = None) -> None:
    """Size, repetition and Basic-header checks for token, revocation and introspection, on a
    werkzeug request (Flask's, or the service-token layer's own) and its form body (``form``
    when already parsed, else ``request.form``, parsed only after the size check): raise
    :class:`ParamProblem`."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise ParamProblem("invalid_request", "The request body is too large.", 413)
    check_basic_auth(request.headers.get("Authorization"))
    check_values(request.form if form is None else form, opaque=frozenset())
    check_values(request.args, opaque=frozenset())


def check_basic_auth(header: str | None) -> None:
    """RFC 6749 §2.3.1 / RFC 7617: a Basic header must decode to UTF-8 ``id:secret``."""
    if not header:
        return
    if len(header) > MAX_AUTH_HEADER_CHARS:
        raise ParamProblem("invalid_client", "The Authorization header is too long.", 401)
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        return
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ParamProblem("invalid_client", "The Basic credentials are malformed.",
                           401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or not _VSCHAR.match(unquote(client_id) + unquote(secret)):
        raise ParamProblem("invalid_client", "The Basic credentials are malformed.", 401)
