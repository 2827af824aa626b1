"""SAML metrics on the shared registry (/metrics)."""

from prometheus_client import Counter

from ..metrics import REGISTRY

SAML_RESPONSES = Counter("idp_saml_responses_total", "SAML Responses sent, by flow and outcome",
                         ["flow", "outcome"], registry=REGISTRY)
SAML_REFUSED = Counter("idp_saml_refused_total", "SAML messages refused with an error page",
                       ["endpoint"], registry=REGISTRY)
SAML_LOGOUTS = Counter("idp_saml_logouts_total", "Single Logout messages, by direction and "
                       "outcome", ["direction", "outcome"], registry=REGISTRY)
