"""Against scim2-server, a real SCIM 2.0 server (RFC 7644), run in-process on a thread.

It has no ``role`` attribute (Zulip's own extension), so role sync is off here
(``PROVISION_SYNC_ROLE=false``); role changes are covered against the Zulip double."""

from __future__ import annotations

import threading

import httpx2
import pytest
from scim2_server.applications.wsgi import WSGIApplication
from scim2_server.memory import InMemoryStorage
from scim2_server.utils import load_default_provider
from werkzeug.serving import make_server

from idp.lms.directory import get_directory

from .conftest import ledger, outbox, provisioner

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
def scim_server():
    server = make_server("127.0.0.1", 0, WSGIApplication(InMemoryStorage(),
                                                         load_default_provider()), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _users(base: str) -> dict[str, dict]:
    found = httpx2.get(base + "/v2/Users", params={"count": 1000}).json()
    return {u["userName"]: u for u in found.get("Resources", [])}


def _members(base: str, group: str) -> set[str]:
    found = httpx2.get(base + "/v2/Groups", params={"filter": f'displayName eq "{group}"'}).json()
    return {m["value"] for m in found["Resources"][0].get("members") or []}


def test_full_cycle_against_scim2_server(app, make_app, scim_server, lms_admin):
    for name in ("students", "mentors"):
        assert httpx2.post(scim_server + "/v2/Groups", json={
            "schemas": [GROUP_SCHEMA], "displayName": name}).status_code == 201
    bridge = make_app(ZULIP_URL=scim_server, ZULIP_SCIM_URL=scim_server + "/v2",
                      ZULIP_SCIM_TOKEN="not-checked-by-this-server", PROVISION_CREATE="true",
                      PROVISION_SYNC_ROLE="false")
    with bridge.app_context():
        plan, adopted, report = provisioner(bridge).apply_once()
        active = [p for p in get_directory().iter_people() if p.active]
        assert report.delivered == len(active) and report.failed == 0
        users = _users(scim_server)
        assert set(users) == {p.email for p in active}
        alice = users["student1@example.edu"]
        assert alice["active"] is True and alice["id"] in _members(scim_server, "students")
        # again: nothing to do, nothing created twice
        plan, _, report = provisioner(bridge).apply_once()
        assert plan.actions == [] and len(_users(scim_server)) == len(active)

        with lms_admin.cursor() as cur:
            cur.execute("UPDATE students SET is_active = false WHERE id = 1; "
                        "UPDATE students SET email = 'bob.new@example.edu', "
                        "display_name = 'Bob New' WHERE id = 2")
        provisioner(bridge).apply_once()
        users = _users(scim_server)
        assert users["student1@example.edu"]["active"] is False
        assert "student2@example.edu" not in users
        bob = users["bob.new@example.edu"]
        assert bob["name"]["formatted"] == "Bob New" and bob["active"] is True
        assert bob["id"] == ledger("student:2").zulip_user_id

        with lms_admin.cursor() as cur:
            cur.execute("UPDATE students SET is_active = true WHERE id = 1")
        provisioner(bridge).apply_once()
        assert _users(scim_server)["student1@example.edu"]["active"] is True
        assert {a.status for a in outbox()} == {"done"}
