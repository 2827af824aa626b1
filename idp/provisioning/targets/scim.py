"""SCIM 2.0 target (RFC 7644) for Zulip's ``/scim/v2/`` with ``scim2-client`` over httpx2.

Zulip answers 501 to discovery (``/ServiceProviderConfig``, ``/ResourceTypes``, ``/Schemas``),
so the client is given its resource models explicitly and never discovers. Payloads follow
ZULIP.md: ``userName`` is the email, ``name.formatted`` the full name, ``active`` a JSON
boolean, ``role`` one of Zulip's five role names; PATCH uses ``replace`` only (RFC 7644
§3.5.2.3); deprovisioning is ``PATCH active=false`` (DELETE answers 400). There is no
``externalId`` filter: accounts are found by ``userName eq "<email>"`` (RFC 7644 §3.4.2.2).
Groups (Zulip 11.0+) are changed with RFC 7644 §3.5.2.1/§3.5.2.2 ``add``/``remove`` on
``members``; a group Zulip does not have is skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_client.errors import (
    RequestNetworkException,
    SCIMClientException,
    UnexpectedStatusCodeException,
)
from scim2_models import Group, SCIMException, ScimProvider, User

from .base import TargetError, ZulipAccount

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PAGE_SIZE = 500
GROUP_ID_TTL = 300.0  # seconds a group name → id lookup is reused


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (RFC 9110 §10.2.3: delay-seconds; an HTTP-date is read as
    "unknown", the backoff then applies)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _quote(value: str) -> str:
    """A SCIM filter string literal (RFC 7644 §3.4.2.2: JSON string syntax)."""
    return json.dumps(value)


def _transient(status: int | None) -> bool:
    return status is None or status >= 500 or status in (408, 429)


class ScimTarget:
    """Zulip over SCIM 2.0; one ``httpx2.Client`` with a bearer token and a timeout."""

    name = "scim"

    def __init__(self, base_url: str, token: str, *, timeout: float, sync_role: bool = True):
        self.base_url = base_url.rstrip("/")
        self.sync_role = sync_role
        self._retry_after: float | None = None
        self._group_ids: dict[str, tuple[str | None, float]] = {}
        self._http = httpx2.Client(base_url=self.base_url + "/",
                                   headers={"Authorization": f"Bearer {token}"},
                                   timeout=timeout,
                                   event_hooks={"response": [self._remember_retry_after]})
        self.client = SyncSCIMClient(self._http, provider=ScimProvider(models=[User, Group]),
                                     check_request_payload=False,
                                     check_response_payload=False)

    def close(self) -> None:
        self._http.close()

    # -- transport -----------------------------------------------------------------------
    def _remember_retry_after(self, response: httpx2.Response) -> None:
        self._retry_after = (retry_after_seconds(response.headers.get("Retry-After"))
                             if response.status_code in (429, 503) else None)

    def _error(self, message: str, status: int | None, feature: str | None) -> TargetError:
        return TargetError(message, transient=_transient(status), status=status,
                           retry_after=self._retry_after, feature=feature)

    def _call(self, what: str, method, *args: Any, feature: str | None = None,
              **kwargs: Any) -> Any:
        """Run one scim2-client call; every failure becomes a TargetError (``feature``: the
        endpoint belongs to a feature some Zulip versions lack)."""
        self._retry_after = None
        try:
            result = method(*args, expected_status_codes=None, **kwargs)
        except RequestNetworkException as exc:
            raise TargetError(f"{what}: Zulip unreachable ({'; '.join(exc.__notes__ or [])})",
                              transient=True) from exc
        except UnexpectedStatusCodeException as exc:
            status = getattr(exc.source, "status_code", None)
            raise self._error(f"{what}: HTTP {status} without a SCIM error", status,
                              feature) from exc
        except SCIMException as exc:
            status = int(getattr(exc, "status", 0) or 0) or None
            raise self._error(f"{what}: {exc}", status, feature) from exc
        except SCIMClientException as exc:
            status = getattr(exc.source, "status_code", None)
            raise self._error(f"{what}: {exc}", status, feature) from exc
        if isinstance(result, dict) and ERROR_SCHEMA in (result.get("schemas") or []):
            status = int(result.get("status") or 0) or None
            detail = str(result.get("detail") or result.get("scimType") or "error")[:300]
            raise self._error(f"{what}: HTTP {status} {detail}", status, feature)
        return result

    @staticmethod
    def _account(data: dict) -> ZulipAccount:
        name = data.get("name") or {}
        formatted = name.get("formatted") or " ".join(
            filter(None, (name.get("givenName"), name.get("familyName"))))
        return ZulipAccount(id=str(data["id"]), email=data.get("userName") or "",
                            full_name=formatted or data.get("displayName") or "",
                            role=data.get("role"), active=data.get("active") is not False)

    def _patch(self, what: str, user_id: str, path: str, value: Any) -> None:
        body = {"schemas": [PATCH_SCHEMA],
                "Operations": [{"op": "replace", "path": path, "value": value}]}
        self._call(what, self.client.modify, User, user_id, body)

    # -- operations ----------------------------------------------------------------------
    def check(self) -> None:
        """One cheap authenticated query (never a discovery call)."""
        self._call("check", self.client.query, User, query_parameters={"count": 1})

    def find_by_email(self, email: str) -> ZulipAccount | None:
        found = self._call("find", self.client.query, User, query_parameters={
            "filter": f"userName eq {_quote(email)}"})
        resources = (found or {}).get("Resources") or []
        return self._account(resources[0]) if resources else None

    def iter_accounts(self) -> Iterator[ZulipAccount]:
        start = 1
        while True:
            page = self._call("list", self.client.query, User, query_parameters={
                "startIndex": start, "count": PAGE_SIZE}) or {}
            resources = page.get("Resources") or []
            for data in resources:
                yield self._account(data)
            start += len(resources)
            if not resources or start > int(page.get("totalResults") or 0):
                return

    def create(self, email: str, full_name: str, role: str) -> ZulipAccount:
        body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": email,
                                "name": {"formatted": full_name}, "active": True}
        if self.sync_role:
            body["role"] = role
        return self._account(self._call("create", self.client.create, User, body,
                                        url="Users"))

    def set_active(self, user_id: str, active: bool) -> None:
        self._patch("activate" if active else "deactivate", user_id, "active", bool(active))

    def rename(self, user_id: str, email: str) -> None:
        self._patch("rename", user_id, "userName", email)

    def set_name(self, user_id: str, full_name: str) -> None:
        self._patch("name", user_id, "name.formatted", full_name)

    def set_role(self, user_id: str, role: str) -> None:
        if self.sync_role:
            self._patch("role", user_id, "role", role)

    def _group_id(self, name: str) -> str | None:
        """The group's id, looked up once per GROUP_ID_TTL (not once per action)."""
        cached = self._group_ids.get(name)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        found = self._call("find group", self.client.query, Group, feature="groups",
                           query_parameters={"filter": f"displayName eq {_quote(name)}"}) or {}
        resources = found.get("Resources") or []
        group_id = str(resources[0]["id"]) if resources else None
        self._group_ids[name] = (group_id, time.monotonic() + GROUP_ID_TTL)
        return group_id

    def set_groups(self, user_id: str, add: list[str], remove: list[str]) -> list[str]:
        missing = []
        for name, op in [(n, "add") for n in add] + [(n, "remove") for n in remove]:
            group_id = self._group_id(name)
            if group_id is None:
                missing.append(name)
                continue
            operation = ({"op": "add", "path": "members", "value": [{"value": user_id}]}
                         if op == "add" else
                         {"op": "remove", "path": f"members[value eq {_quote(user_id)}]"})
            self._call(f"group {op}", self.client.modify, Group, group_id,
                       {"schemas": [PATCH_SCHEMA], "Operations": [operation]},
                       feature="groups")
        return missing
