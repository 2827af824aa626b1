"""Zulip doubles for SCIM 2.0 and the REST API that follow ../shared/ZULIP.md to the letter,
refusals included: 501 on discovery, 400 on DELETE, no ``externalId`` filter, booleans only
(a string ``active`` makes Zulip answer 500), PATCH ``replace`` only, PUT requires
``userName``, POST requires ``active: true``, 409 ``uniqueness`` on a duplicate email.

One :class:`ZulipRealm` holds the accounts; :class:`DoubleServer` serves the SCIM app (under
``/scim/v2``) and the REST app (under ``/api/v1``) on a real socket, can be stopped and started
on the same port (Zulip down), and injects 5xx answers and slow answers (timeouts).
``realm.effects`` lists every change of state, so a test can tell "applied twice in effect".
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ROLES = {"owner": 100, "administrator": 200, "moderator": 300, "member": 400, "guest": 600}
ROLE_NAMES = {v: k for k, v in ROLES.items()}
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_TOKEN = "scim-token-0123456789abcdef"
BOT_EMAIL = "provisioner-bot@zulip.example.edu"
BOT_KEY = "bot-api-key-0123456789"


@dataclass
class Account:
    id: int
    email: str
    full_name: str
    role: str = "member"
    is_active: bool = True
    is_bot: bool = False


@dataclass
class ZulipRealm:
    """The realm's state plus a log of requests and effects."""

    accounts: dict[int, Account] = field(default_factory=dict)
    groups: dict[int, dict] = field(default_factory=dict)
    effects: list[tuple] = field(default_factory=list)
    requests: list[tuple] = field(default_factory=list)  # (monotonic time, method, path, body)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer, one per request
    rate_limit_next: list[float] = field(default_factory=list)  # 429 Retry-After, per request
    delay: float = 0.0  # seconds to wait before answering (timeouts)
    version: str = "11.0"  # zulip_version in server_settings; SCIM /Groups only from 11.0
    feature_level: int = 400
    lock: threading.RLock = field(default_factory=threading.RLock)
    _next_id: int = 1

    def add(self, email: str, full_name: str, role: str = "member", *, active: bool = True,
            bot: bool = False) -> Account:
        with self.lock:
            account = Account(self._next_id, email, full_name, role, active, bot)
            self.accounts[account.id] = account
            self._next_id += 1
            return account

    def add_group(self, name: str) -> int:
        with self.lock:
            gid = 1000 + len(self.groups)
            self.groups[gid] = {"name": name, "members": set()}
            return gid

    @property
    def has_scim_groups(self) -> bool:
        return int(self.version.split(".")[0]) >= 11

    def by_email(self, email: str) -> Account | None:
        for account in self.accounts.values():
            if account.email.lower() == email.lower():
                return account
        return None

    def group_named(self, name: str) -> int | None:
        return next((gid for gid, g in self.groups.items() if g["name"] == name), None)

    def effect(self, *entry) -> None:
        self.effects.append(entry)

    def effects_of(self, kind: str, user_id: int | None = None) -> list[tuple]:
        return [e for e in self.effects if e[0] == kind and (user_id is None or e[1] == user_id)]

    # state changes shared by SCIM and REST; each records an effect only if something changed
    def set_active(self, account: Account, active: bool) -> None:
        if account.is_active != active:
            account.is_active = active
            self.effect("reactivate" if active else "deactivate", account.id)

    def set_email(self, account: Account, email: str) -> bool:
        other = self.by_email(email)
        if other is not None and other.id != account.id:
            return False
        if account.email != email:
            self.effect("rename", account.id, account.email, email)
            account.email = email
        return True

    def set_name(self, account: Account, name: str) -> None:
        if account.full_name != name:
            account.full_name = name
            self.effect("name", account.id, name)

    def set_role(self, account: Account, role: str) -> None:
        if account.role != role:
            account.role = role
            self.effect("role", account.id, role)

    def group_add(self, gid: int, user_id: int) -> None:
        if user_id not in self.groups[gid]["members"]:
            self.groups[gid]["members"].add(user_id)
            self.effect("group_add", user_id, self.groups[gid]["name"])

    def group_remove(self, gid: int, user_id: int) -> None:
        if user_id in self.groups[gid]["members"]:
            self.groups[gid]["members"].discard(user_id)
            self.effect("group_remove", user_id, self.groups[gid]["name"])

    def groups_of(self, user_id: int) -> set[str]:
        return {g["name"] for g in self.groups.values() if user_id in g["members"]}


def _json(body, status: int = 200, content_type: str = "application/scim+json") -> Response:
    return Response(json.dumps(body), status=status, content_type=content_type)


def _scim_error(status: int, detail: str, scim_type: str | None = None) -> Response:
    body = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return _json(body, status)


_FILTER = re.compile(r'^\s*(userName|name\.formatted|active|displayName)\s+eq\s+'
                     r'("(?:[^"\\]|\\.)*"|true|false)\s*$', re.I)


class ScimApp:
    """Zulip's ``zerver/lib/scim.py`` as ZULIP.md describes it."""

    def __init__(self, realm: ZulipRealm, token: str = SCIM_TOKEN):
        self.realm, self.token = realm, token

    def user_json(self, a: Account) -> dict:
        return {"schemas": [USER_SCHEMA], "id": str(a.id), "userName": a.email,
                "name": {"formatted": a.full_name}, "displayName": a.full_name,
                "active": a.is_active, "role": a.role,
                "meta": {"resourceType": "User", "location": f"/scim/v2/Users/{a.id}"}}

    def __call__(self, environ, start_response):
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _scim_error(401, "Invalid credentials")
        path = request.path.removeprefix("/scim/v2")
        if path.split("/")[1] in ("ServiceProviderConfig", "ResourceTypes", "Schemas", "Bulk",
                                  "Me"):
            return _scim_error(501, "Not implemented")
        with self.realm.lock:
            if path == "/Users" and request.method == "GET":
                return self.list_users(request.args.get("filter"), request.args)
            if path == "/Users/.search" and request.method == "POST":
                body = request.get_json(silent=True) or {}
                return self.list_users(body.get("filter"), body)
            if path == "/Users" and request.method == "POST":
                return self.create(request.get_json(silent=True))
            match = re.fullmatch(r"/Users/(\d+)", path)
            if match:
                account = self.realm.accounts.get(int(match.group(1)))
                if account is None or account.is_bot:
                    return _scim_error(404, "Resource not found")
                return self.user_op(request, account)
            if path.startswith("/Groups") and not self.realm.has_scim_groups:
                return _scim_error(501, "Not implemented")  # Zulip before 11.0
            if path == "/Groups" and request.method == "GET":
                return self.list_groups(request.args.get("filter"))
            match = re.fullmatch(r"/Groups/(\d+)", path)
            if match and int(match.group(1)) in self.realm.groups:
                if request.method == "PATCH":
                    return self.patch_group(int(match.group(1)), request.get_json(silent=True))
                return _json(self.group_json(int(match.group(1))))
        return _scim_error(404, "Resource not found")

    def _matches(self, account: Account, attr: str, value) -> bool:
        if attr == "username":
            return account.email.lower() == value.lower()
        if attr == "name.formatted":
            return account.full_name == value
        return account.is_active == value

    def list_users(self, flt: str | None, params) -> Response:
        people = [a for a in self.realm.accounts.values() if not a.is_bot]
        if flt:
            match = _FILTER.match(flt)
            if not match or match.group(1).lower() == "displayname":
                return _scim_error(400, f"Filter not supported: {flt}", "invalidFilter")
            raw = match.group(2)
            value = json.loads(raw) if raw.startswith('"') else raw.lower() == "true"
            people = [a for a in people if self._matches(a, match.group(1).lower(), value)]
        try:
            start = max(int(params.get("startIndex", 1)), 1)
            count = max(int(params.get("count", 50)), 0)
        except (TypeError, ValueError):
            return _scim_error(400, "Invalid startIndex or count", "invalidValue")
        page = people[start - 1:start - 1 + count]
        return _json({"schemas": [LIST_SCHEMA], "totalResults": len(people),
                      "startIndex": start, "itemsPerPage": len(page),
                      "Resources": [self.user_json(a) for a in page]})

    def create(self, body) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("userName"), str):
            return _scim_error(400, "userName required", "invalidValue")
        if body.get("active") is not True:
            return _scim_error(400, "New user must have active=True", "invalidValue")
        if self.realm.by_email(body["userName"]) is not None:
            return _scim_error(409, "Email address already in use", "uniqueness")
        role = body.get("role", "member")
        if role not in ROLES:
            return _scim_error(400, f"Invalid role: {role}", "invalidValue")
        name = (body.get("name") or {}).get("formatted") or body["userName"]
        account = self.realm.add(body["userName"], name, role)
        self.realm.effect("create", account.id, account.email)
        return _json(self.user_json(account), 201)

    def user_op(self, request: Request, account: Account) -> Response:
        if request.method == "GET":
            return _json(self.user_json(account))
        if request.method == "DELETE":
            return _scim_error(400, "DELETE operation not supported. Use PUT or PATCH to modify "
                                    "the 'active' attribute instead.")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _scim_error(400, "Invalid JSON body", "invalidSyntax")
        if request.method == "PUT":
            if not isinstance(body.get("userName"), str):
                return _scim_error(400, "userName required", "invalidValue")
            changes = [("userName", body["userName"])]
            if "name" in body:
                changes.append(("name.formatted", (body["name"] or {}).get("formatted")))
            if "active" in body:
                changes.append(("active", body["active"]))
            if "role" in body:
                changes.append(("role", body["role"]))
            return self.apply(account, changes)
        if request.method == "PATCH":
            ops = body.get("Operations")
            if body.get("schemas") != [PATCH_SCHEMA] or not isinstance(ops, list):
                return _scim_error(400, "Invalid PatchOp", "invalidSyntax")
            changes = []
            for op in ops:
                if not isinstance(op, dict) or op.get("op") != "replace":
                    return _scim_error(400, "Only 'replace' operations are supported",
                                       "invalidSyntax")
                changes.append((op.get("path"), op.get("value")))
            return self.apply(account, changes)
        return _scim_error(405, "Method not allowed")

    def apply(self, account: Account, changes: list[tuple]) -> Response:
        for path, value in changes:
            if path not in ("userName", "name.formatted", "active", "role"):
                return _scim_error(400, f"Not supported: path {path}", "invalidPath")
            if path == "active" and not isinstance(value, bool):
                # Zulip compares the value to True/False and crashes on anything else.
                return Response("<h1>Server Error (500)</h1>", 500, content_type="text/html")
            if path == "role" and value not in ROLES:
                return _scim_error(400, f"Invalid role: {value}", "invalidValue")
            if path in ("userName", "name.formatted") and not isinstance(value, str):
                return _scim_error(400, f"Invalid value for {path}", "invalidValue")
        for path, value in changes:
            if path == "userName" and not self.realm.set_email(account, value):
                return _scim_error(409, "Email address already in use", "uniqueness")
            if path == "name.formatted":
                self.realm.set_name(account, value)
            if path == "active":
                self.realm.set_active(account, value)
            if path == "role":
                self.realm.set_role(account, value)
        return _json(self.user_json(account))

    def group_json(self, gid: int) -> dict:
        group = self.realm.groups[gid]
        return {"schemas": [GROUP_SCHEMA], "id": str(gid), "displayName": group["name"],
                "members": [{"value": str(m)} for m in sorted(group["members"])]}

    def list_groups(self, flt: str | None) -> Response:
        gids = list(self.realm.groups)
        if flt:
            match = _FILTER.match(flt)
            if not match or match.group(1).lower() != "displayname":
                return _scim_error(400, f"Filter not supported: {flt}", "invalidFilter")
            name = json.loads(match.group(2))
            gids = [g for g in gids if self.realm.groups[g]["name"] == name]
        return _json({"schemas": [LIST_SCHEMA], "totalResults": len(gids), "startIndex": 1,
                      "itemsPerPage": len(gids), "Resources": [self.group_json(g) for g in gids]})

    def patch_group(self, gid: int, body) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("Operations"), list):
            return _scim_error(400, "Invalid PatchOp", "invalidSyntax")
        for op in body["Operations"]:
            if op.get("op") == "add" and op.get("path") == "members":
                for member in op.get("value") or []:
                    uid = int(member["value"])
                    if uid not in self.realm.accounts:
                        return _scim_error(400, "Unknown member", "invalidValue")
                    self.realm.group_add(gid, uid)
                continue
            match = re.fullmatch(r'members\[value eq "(\d+)"\]', op.get("path") or "")
            if op.get("op") == "remove" and match:
                self.realm.group_remove(gid, int(match.group(1)))
                continue
            return _scim_error(400, "Unsupported group operation", "invalidSyntax")
        return Response(status=204)


def _rest(status: int = 200, **body) -> Response:
    body.setdefault("result", "success" if status == 200 else "error")
    body.setdefault("msg", "")
    return Response(json.dumps(body), status=status, content_type="application/json")


class RestApp:
    """Zulip's REST API endpoints of ZULIP.md's table, HTTP basic auth with the bot's key."""

    def __init__(self, realm: ZulipRealm, email: str = BOT_EMAIL, key: str = BOT_KEY):
        self.realm = realm
        self.auth = "Basic " + base64.b64encode(f"{email}:{key}".encode()).decode()

    def user_json(self, a: Account) -> dict:
        return {"user_id": a.id, "email": a.email, "delivery_email": a.email,
                "full_name": a.full_name, "role": ROLES[a.role], "is_active": a.is_active,
                "is_bot": a.is_bot, "is_owner": a.role == "owner"}

    def __call__(self, environ, start_response):
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        path = request.path.removeprefix("/api/v1")
        if path == "/server_settings":
            return _rest(zulip_version=self.realm.version,
                         zulip_feature_level=self.realm.feature_level, realm_uri="x")
        if request.headers.get("Authorization") != self.auth:
            return _rest(401, code="UNAUTHORIZED", msg="Invalid API key")
        with self.realm.lock:
            if path == "/users/me" and request.method == "GET":
                return _rest(user_id=0, email=BOT_EMAIL, is_bot=True, role=200)
            if path == "/users" and request.method == "GET":
                return _rest(members=[self.user_json(a) for a in self.realm.accounts.values()])
            if path == "/users" and request.method == "POST":
                return self.create(request.form)
            if path == "/user_groups" and request.method == "GET":
                return _rest(user_groups=[
                    {"id": gid, "name": g["name"], "members": sorted(g["members"])}
                    for gid, g in self.realm.groups.items()])
            match = re.fullmatch(r"/user_groups/(\d+)/members", path)
            if match and request.method == "POST":
                return self.group_members(int(match.group(1)), request.form)
            match = re.fullmatch(r"/users/(\d+)(/reactivate)?", path)
            if match:
                account = self.realm.accounts.get(int(match.group(1)))
                if account is None:
                    return _rest(400, code="BAD_REQUEST", msg="No such user")
                return self.user_op(request, account, bool(match.group(2)))
            match = re.fullmatch(r"/users/([^/]+@[^/]+)", path)
            if match and request.method == "GET":
                account = self.realm.by_email(match.group(1))
                if account is None:
                    return _rest(400, code="BAD_REQUEST", msg="No such user")
                return _rest(user=self.user_json(account))
        return _rest(404, code="BAD_REQUEST", msg="Not found")

    def create(self, form) -> Response:
        email, name = form.get("email"), form.get("full_name")
        if not email or not name or not form.get("password"):
            return _rest(400, code="BAD_REQUEST", msg="Missing argument")
        if self.realm.by_email(email) is not None:
            return _rest(400, code="BAD_REQUEST", msg=f"Email '{email}' already in use")
        account = self.realm.add(email, name)
        self.realm.effect("create", account.id, email)
        return _rest(user_id=account.id)

    def user_op(self, request: Request, account: Account, reactivate: bool) -> Response:
        if reactivate and request.method == "POST":
            if account.is_active:
                return _rest(400, code="BAD_REQUEST", msg="User is already active")
            self.realm.set_active(account, True)
            return _rest()
        if request.method == "DELETE":
            if not account.is_active:
                return _rest(400, code="BAD_REQUEST", msg="User is already deactivated")
            if account.role == "owner":
                return _rest(400, code="BAD_REQUEST", msg="Cannot deactivate the only owner")
            self.realm.set_active(account, False)
            return _rest()
        if request.method == "GET":
            return _rest(user=self.user_json(account))
        if request.method == "PATCH":
            form = request.form
            if "role" in form:
                try:
                    role = ROLE_NAMES[int(form["role"])]
                except (KeyError, ValueError):
                    return _rest(400, code="BAD_REQUEST", msg="Invalid role")
                self.realm.set_role(account, role)
            if "full_name" in form:
                self.realm.set_name(account, json.loads(form["full_name"])
                                    if form["full_name"].startswith('"') else form["full_name"])
            return _rest()
        return _rest(405, code="BAD_REQUEST", msg="Method not allowed")

    def group_members(self, gid: int, form) -> Response:
        if gid not in self.realm.groups:
            return _rest(400, code="BAD_REQUEST", msg="Invalid user group")
        for uid in json.loads(form.get("add", "[]")):
            self.realm.group_add(gid, int(uid))
        for uid in json.loads(form.get("delete", "[]")):
            self.realm.group_remove(gid, int(uid))
        return _rest()


class Dispatcher:
    """SCIM under /scim/v2, REST under /api/v1, with fault injection in front of both."""

    def __init__(self, realm: ZulipRealm):
        self.realm, self.scim, self.rest = realm, ScimApp(realm), RestApp(realm)

    def __call__(self, environ, start_response):
        request = Request(environ)
        raw = request.get_data()
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))
        body = raw.decode("utf-8", "replace")
        with self.realm.lock:
            self.realm.requests.append((time.monotonic(), request.method, request.path, body))
            status = self.realm.fail_next.pop(0) if self.realm.fail_next else None
            limited = (self.realm.rate_limit_next.pop(0)
                       if self.realm.rate_limit_next and status is None else None)
            delay = self.realm.delay
        if delay:
            time.sleep(delay)  # the double being slow, not test synchronisation
        if status is not None:
            return Response("<h1>Server Error</h1>", status, content_type="text/html")(
                environ, start_response)
        if limited is not None:  # ZULIP.md "Rate limit": 429, Retry-After, RATE_LIMIT_HIT
            response = _rest(429, code="RATE_LIMIT_HIT", msg="API usage exceeded rate limit",
                             **{"retry-after": limited})
            response.headers["Retry-After"] = str(int(limited))
            return response(environ, start_response)
        app = self.scim if request.path.startswith("/scim/") else self.rest
        return app(environ, start_response)


class DoubleServer:
    """The doubles on a real socket; ``stop()``/``start()`` keep the port (Zulip down/back)."""

    def __init__(self, realm: ZulipRealm):
        self.realm = realm
        self.app = Dispatcher(realm)
        self.port = 0
        self.server = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
