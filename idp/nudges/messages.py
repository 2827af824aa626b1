"""Zulip's messages API for nudges (ZULIP.md, "Messages and bots"), as a plain bot.

``POST /api/v1/messages`` with ``type=direct`` (``private`` before feature level 174) to a
user id: from the provisioning ledger when the bridge manages the account, else looked up by
email (``GET /api/v1/users/{email}``). The ``zulip`` client provides the configuration, the
authenticated session and the server's feature level; calls go through its session so that the
HTTP status and ``Retry-After`` are seen (the client's own helpers return the body only, and
400 and 403 must be told apart). Its retry loop is off: the nudge queue retries with backoff.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from urllib.parse import quote, urljoin

import requests
import zulip

from ..extensions import db
from ..outbox import Refused as OutboxRefused
from ..outbox import Transient
from ..zulip_accounts import zulip_user_id

API_VERSION = zulip.API_VERSTRING  # "v1/", as the client's own calls add it
DIRECT_FROM_LEVEL = 174      # "direct" replaces "private" (Zulip 7.0)
DM_NARROW_FROM_LEVEL = 177   # narrow operator "dm" replaces "pm-with"


class Refused(OutboxRefused):
    """Zulip refused for good (400 unknown or deactivated recipient, 403 the bot may not
    send there); ``cause`` names which."""

    def __init__(self, message: str, cause: str):
        super().__init__(message)
        self.cause = cause


@dataclass
class ZulipMessages:
    site: str
    email: str
    api_key: str
    timeout: float
    _client: zulip.Client | None = None

    def _api(self) -> zulip.Client:
        if self._client is None:
            try:
                self._client = zulip.Client(email=self.email, api_key=self.api_key,
                                            site=self.site, retry_on_errors=False,
                                            client="lms-zulip-bridge-nudges")
            except (zulip.ZulipError, requests.RequestException, OSError) as exc:
                raise Transient(f"Zulip unreachable ({type(exc).__name__})") from exc
        return self._client

    def _request(self, method: str, path: str, params: dict) -> dict:
        client = self._api()
        client.ensure_session()
        kwarg = "params" if method == "GET" else "data"
        try:
            response = client.session.request(method, urljoin(client.base_url,
                                                              API_VERSION + path),
                                               timeout=self.timeout, **{kwarg: params})
        except (requests.RequestException, OSError) as exc:
            raise Transient(f"{path}: Zulip unreachable ({type(exc).__name__})") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        message = str(body.get("msg") or response.reason or "error")[:300]
        if response.status_code == 429:
            retry = response.headers.get("Retry-After") or body.get("retry-after")
            try:
                seconds = float(retry) if retry is not None else 60.0
            except ValueError:
                seconds = 60.0
            raise Transient(f"{path}: rate limited ({message})", retry_after=seconds)
        if response.status_code >= 500 or response.status_code == 401:
            raise Transient(f"{path}: HTTP {response.status_code} {message}")
        if response.status_code == 403:
            raise Refused(f"{path}: {message}", "bot_forbidden")
        if response.status_code >= 400 or body.get("result") != "success":
            raise Refused(f"{path}: {message}", "recipient_refused")
        return body

    def user_id(self, subject: str, email: str) -> int:
        """The recipient's Zulip user id: the ledger's, else Zulip's answer for the email."""
        known = zulip_user_id(db.session, subject)
        if known is not None:
            return known
        body = self._request("GET", f"users/{quote(email, safe='@')}", {})
        return int(body["user"]["user_id"])

    def send(self, user_id: int, content: str) -> int:
        kind = "direct" if self._api().feature_level >= DIRECT_FROM_LEVEL else "private"
        body = self._request("POST", "messages", {"type": kind, "to": json.dumps([user_id]),
                                                  "content": content})
        return int(body["id"])

    def sent_since(self, user_id: int, since: dt.datetime) -> list[tuple[int, str]]:
        """(id, raw content) of the latest messages in the bot's conversation with the user,
        sent at or after ``since``: to tell whether an interrupted send went out."""
        operator = "dm" if self._api().feature_level >= DM_NARROW_FROM_LEVEL else "pm-with"
        body = self._request("GET", "messages", {
            "anchor": "newest", "num_before": 50, "num_after": 0, "apply_markdown": "false",
            "narrow": json.dumps([{"operator": operator, "operand": [user_id]}])})
        cutoff = since.timestamp()
        return [(int(m["id"]), m["content"]) for m in body.get("messages", [])
                if m.get("timestamp", 0) >= cutoff]
