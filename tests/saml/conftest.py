"""SAML fixtures: Zulip registered as SP in the bridge, and the Zulip-faithful SP."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.saml.registry import SPDefinition, clear_cache, save_sp

from .zulip_sp import ZULIP_ACS, ZULIP_ENTITY_ID, ZulipSP


def register_sp(app, **fields) -> None:
    definition = SPDefinition(**{"entity_id": ZULIP_ENTITY_ID, "acs_urls": [ZULIP_ACS],
                                 "slo_url": ZULIP_ACS, **fields})
    with app.app_context():
        save_sp(definition, replace=True)
        db.session.commit()


@pytest.fixture
def zulip_registered(app):
    register_sp(app)
    return ZULIP_ENTITY_ID


@pytest.fixture
def idp_entity_id(app) -> str:
    return app.extensions["saml"].entity_id


@pytest.fixture
def zulip(app, live_server, zulip_registered, idp_entity_id) -> ZulipSP:
    cert = app.extensions["signing_keys"].current().certificate_b64
    return ZulipSP(idp_entity_id=idp_entity_id, idp_base_url=live_server, idp_cert_b64=cert)


@pytest.fixture(autouse=True)
def _fresh_sp_cache():
    """Tables are emptied between tests; the in-process SP cache must be too."""
    yield
    clear_cache()
