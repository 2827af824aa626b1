"""Zulip REST API target (``zulip`` client, ZULIP.md "REST API").

Deactivate is ``DELETE /api/v1/users/{id}``, reactivate ``POST /api/v1/users/{id}/reactivate``,
name and role ``PATCH /api/v1/users/{id}`` (role as Zulip's integer), groups
``POST /api/v1/user_groups/{id}/members``. ``zulip.Client`` calls ``GET /api/v1/server_settings``
in its constructor, so the client is built on first use, never at import or app start. The
client's own retry loop is off: the outbox retries with backoff. The REST API cannot change
another user's email; renames need the SCIM target.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import requests
import zulip

from .base import TargetError, ZulipAccount

ROLE_CODES = {"owner": 100, "administrator": 200, "moderator": 300, "member": 400, "guest": 600}
ROLE_NAMES = {code: name for name, code in ROLE_CODES.items()}


class RestTarget:
    """Zulip over its REST API, authenticated as an administrator bot."""

    name = "rest"

    def __init__(self, site: str, email: str, api_key: str, *, timeout: float):
        self.site, self._email, self._key, self.timeout = site, email, api_key, timeout
        self._client: zulip.Client | None = None

    def _api(self) -> zulip.Client:
        if self._client is None:
            try:
                self._client = zulip.Client(email=self._email, api_key=self._key, site=self.site,
                                            retry_on_errors=False, client="lms-zulip-bridge")
            except (zulip.ZulipError, requests.RequestException, OSError,
                    AssertionError) as exc:  # the client asserts server_settings answered
                raise TargetError(f"connect: Zulip unreachable ({type(exc).__name__})",
                                  transient=True) from exc
        return self._client

    def _call(self, what: str, url: str, method: str = "GET",
              request: dict[str, Any] | None = None, *, allow: tuple[str, ...] = (),
              feature: str | None = None) -> dict:
        try:
            result = self._api().call_endpoint(url=url, method=method, request=request or {},
                                               timeout=self.timeout)
        except (zulip.ZulipError, requests.RequestException, OSError) as exc:
            raise TargetError(f"{what}: Zulip unreachable ({type(exc).__name__})",
                              transient=True) from exc
        if result.get("result") == "success":
            return result
        status = result.get("status_code")
        message = str(result.get("msg") or "error")[:300]
        if any(text in message for text in allow):
            return result
        if result.get("code") == "RATE_LIMIT_HIT":  # ZULIP.md: 429 with "retry-after"
            wait = result.get("retry-after")
            raise TargetError(f"{what}: HTTP 429 {message}", transient=True, status=429,
                              retry_after=float(wait) if isinstance(wait, int | float) else None)
        if result.get("result") == "http-error":
            transient = status is None or status >= 500 or status in (408, 429)
            raise TargetError(f"{what}: HTTP {status} {message}", transient=transient,
                              status=status, feature=feature)
        if result.get("code") == "UNAUTHORIZED":
            raise TargetError(f"{what}: {message}", transient=False, status=401)
        raise TargetError(f"{what}: {message}", transient=False, status=status or 400,
                          feature=feature)

    @staticmethod
    def _account(data: dict) -> ZulipAccount:
        return ZulipAccount(id=str(data["user_id"]),
                            email=data.get("delivery_email") or data.get("email") or "",
                            full_name=data.get("full_name") or "",
                            role=ROLE_NAMES.get(data.get("role")),
                            active=bool(data.get("is_active", True)),
                            is_bot=bool(data.get("is_bot")))

    def check(self) -> None:
        self._call("check", "users/me")

    def find_by_email(self, email: str) -> ZulipAccount | None:
        result = self._call("find", f"users/{requests.utils.quote(email, safe='@')}",
                            allow=("No such user",))
        return self._account(result["user"]) if result.get("result") == "success" else None

    def iter_accounts(self) -> Iterator[ZulipAccount]:
        for data in self._call("list", "users").get("members", []):
            yield self._account(data)

    def create(self, email: str, full_name: str, role: str) -> ZulipAccount:
        result = self._call("create", "users", "POST", {
            "email": email, "full_name": full_name, "password": secrets.token_urlsafe(24)})
        user_id = str(result["user_id"])
        if role != "member":
            self.set_role(user_id, role)
        return ZulipAccount(id=user_id, email=email, full_name=full_name, role=role, active=True)

    def set_active(self, user_id: str, active: bool) -> None:
        if active:
            self._call("reactivate", f"users/{int(user_id)}/reactivate", "POST",
                       allow=("already active",))
        else:
            self._call("deactivate", f"users/{int(user_id)}", "DELETE",
                       allow=("already deactivated",))

    def rename(self, user_id: str, email: str) -> None:
        raise TargetError("rename: Zulip's REST API cannot change another user's email; use the "
                          "SCIM target (ZULIP_SCIM_TOKEN) to follow LMS email changes",
                          transient=False)

    def set_name(self, user_id: str, full_name: str) -> None:
        self._call("name", f"users/{int(user_id)}", "PATCH", {"full_name": full_name})

    def set_role(self, user_id: str, role: str) -> None:
        self._call("role", f"users/{int(user_id)}", "PATCH", {"role": ROLE_CODES[role]})

    def set_groups(self, user_id: str, add: list[str], remove: list[str]) -> list[str]:
        ids = {g["name"]: g["id"] for g in
               self._call("groups", "user_groups", feature="groups")["user_groups"]}
        missing = [name for name in add + remove if name not in ids]
        for name in add:
            if name in ids:
                self._call("group add", f"user_groups/{ids[name]}/members", "POST",
                           {"add": [int(user_id)]}, feature="groups")
        for name in remove:
            if name in ids:
                self._call("group remove", f"user_groups/{ids[name]}/members", "POST",
                           {"delete": [int(user_id)]}, feature="groups")
        return missing
