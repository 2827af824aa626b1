"""The Zulip SCIM double refuses what ZULIP.md says Zulip refuses (so the other tests mean
something), and the bridge's SCIM target never asks for any of it."""

from __future__ import annotations

import pytest
import requests

from .zulip_double import PATCH_SCHEMA, SCIM_TOKEN, USER_SCHEMA

AUTH = {"Authorization": f"Bearer {SCIM_TOKEN}"}


@pytest.fixture
def scim(zulip, realm):
    realm.add("a@example.edu", "A")
    return zulip.url + "/scim/v2"


def _patch(op: str, path: str, value) -> dict:
    return {"schemas": [PATCH_SCHEMA], "Operations": [{"op": op, "path": path, "value": value}]}


@pytest.mark.parametrize("path", ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas",
                                  "/Bulk", "/Me"])
def test_discovery_is_501(scim, path):
    assert requests.get(scim + path, headers=AUTH, timeout=5).status_code == 501


def test_refusals(scim, realm):
    user = scim + "/Users/1"
    assert requests.delete(user, headers=AUTH, timeout=5).status_code == 400
    answer = requests.get(scim + "/Users", params={"filter": 'externalId eq "x"'},
                          headers=AUTH, timeout=5)
    assert answer.status_code == 400 and answer.json()["scimType"] == "invalidFilter"
    assert requests.patch(user, json=_patch("replace", "active", "false"), headers=AUTH,
                          timeout=5).status_code == 500
    assert requests.patch(user, json=_patch("add", "active", False), headers=AUTH,
                          timeout=5).status_code == 400
    assert requests.put(user, json={"schemas": [USER_SCHEMA], "active": False}, headers=AUTH,
                        timeout=5).status_code == 400
    new = {"schemas": [USER_SCHEMA], "userName": "b@example.edu", "active": False}
    assert requests.post(scim + "/Users", json=new, headers=AUTH, timeout=5).status_code == 400
    dup = {"schemas": [USER_SCHEMA], "userName": "A@example.edu", "active": True}
    answer = requests.post(scim + "/Users", json=dup, headers=AUTH, timeout=5)
    assert answer.status_code == 409 and answer.json()["scimType"] == "uniqueness"
    assert requests.get(scim + "/Users", timeout=5).status_code == 401
    assert realm.accounts[1].is_active is True and len(realm.accounts) == 1


def test_filters_zulip_supports(scim):
    for flt in ('userName eq "A@EXAMPLE.EDU"', 'name.formatted eq "A"', "active eq true"):
        found = requests.get(scim + "/Users", params={"filter": flt}, headers=AUTH, timeout=5)
        assert found.json()["totalResults"] == 1, flt
