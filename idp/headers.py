"""Security headers of the bridge's pages (set in create_app's after_request hook), and the one
widening of their ``form-action 'self'``: a form whose answer redirects to another site.

CSP Level 3 §6.4.1: the browser checks every redirect of a submitted form against the
``form-action`` of the page that holds the form (Chromium does; the redirect's own policy does
not count). The sign-out forms' answer may redirect to a SAML SP's logout endpoint, so the pages
carrying them admit exactly the origins of the registered SPs' SLO URLs.
"""

from __future__ import annotations

from flask import Response, current_app

from .csrf import origin_of

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def allow_logout_redirects(response: Response) -> Response:
    """Let this page's sign-out form follow the logout chain to the origins that the
    ``logout_form_targets`` hooks (feature packages) name."""
    origins = sorted({origin for hook in current_app.extensions["logout_form_targets"]
                      for origin in map(origin_of, hook()) if origin})
    if origins:
        response.headers["Content-Security-Policy"] = CSP.replace(
            "form-action 'self'", "form-action 'self' " + " ".join(origins))
    return response
