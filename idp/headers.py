"""Security headers of every answer (:class:`SecurityHeaders`, run by create_app's
after_request hook), and the one widening of their ``form-action 'self'``: a form whose answer
redirects to another site.

CSP Level 3 §6.4.1: the browser checks every redirect of a submitted form's navigation against
the ``form-action`` of the page that holds the form (Chromium uses that page's policy; the
redirect's own does not count). So a page whose form is answered by a redirect to a peer names
exactly that peer's origin: the login form in front of an OIDC authorization request (its
client's redirect_uri), the consent form (the same), the sign-out forms (the SAML SPs'
logout endpoints). Feature packages say which, through the hooks in ``app.extensions``:
``login_form_targets`` (called with the login form's ``next`` path) and
``logout_form_targets`` (no argument); each returns URLs.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Response, current_app
from werkzeug.datastructures import Headers

from .csrf import origin_of

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


class SecurityHeaders:
    """The headers every answer carries unless its view set its own value (a page's widened
    CSP, the SAML auto-POST page's own CSP): built once per app, added in one pass over the
    response's headers. The same result as ``headers.setdefault(name, value)`` for each, in
    this order, at a quarter of the cost (it was ~5 % of a token grant)."""

    def __init__(self, https: bool) -> None:
        pairs = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                 ("X-Frame-Options", "DENY"),
                 # Same-origin form POSTs keep Origin and Referer (the CSRF check needs them);
                 # other sites see the origin only, never a path or query.
                 ("Referrer-Policy", "strict-origin-when-cross-origin")]
        if https:
            pairs.append(("Strict-Transport-Security", "max-age=31536000"))
        # Validated once, as Headers.add would on every answer (no newline in a value).
        self.pairs = tuple(Headers(pairs).to_wsgi_list())
        self._names = frozenset(name.lower() for name, _ in self.pairs)

    def __call__(self, response: Response) -> Response:
        headers = response.headers
        present = {name.lower() for name, _ in headers}
        if present.isdisjoint(self._names):
            # Headers' own list: the pairs were checked above; Headers.extend would check
            # them again on each answer (two thirds of this hook's cost).
            headers._list.extend(self.pairs)
        else:
            headers.extend([(name, value) for name, value in self.pairs
                            if name.lower() not in present])
        return response


def allow_form_targets(response: Response, urls: Iterable[str]) -> Response:
    """This page's forms may be redirected to the origins of ``urls`` (and to the bridge)."""
    origins = sorted({origin for origin in map(origin_of, urls) if origin})
    if origins:
        response.headers["Content-Security-Policy"] = CSP.replace(
            "form-action 'self'", "form-action 'self' " + " ".join(origins))
    return response


def hook_targets(name: str, *args) -> list[str]:
    """The URLs the ``name`` hooks of the feature packages return."""
    return [url for hook in current_app.extensions[name] for url in hook(*args)]


def allow_logout_redirects(response: Response) -> Response:
    """A page with a sign-out form: the logout chain may continue at the SAML SPs."""
    return allow_form_targets(response, hook_targets("logout_form_targets"))
