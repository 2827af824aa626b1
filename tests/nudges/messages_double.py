"""A Zulip double for the messages API, following ../shared/ZULIP.md ("Messages and bots",
"Versions"): ``GET /api/v1/server_settings`` (feature level chosen by the test), HTTP basic
auth with the bot's key, ``GET /api/v1/users/{email}``, ``POST /api/v1/messages`` (``direct``
from feature level 174, ``private`` always; ``to`` a JSON list of user ids; content at most
10,000 bytes), ``GET /api/v1/messages`` with a ``dm``/``pm-with`` narrow. Refusals: 400
``BAD_REQUEST`` for an unknown or deactivated recipient, 403 where the bot may not send, 429
``RATE_LIMIT_HIT`` with ``Retry-After`` over the rate limit (requests per window).

Timestamps come from :func:`idp.clock.now`, so tests that move the clock see consistent
times. ``delay`` makes POST /messages answer slowly after recording the message (a worker
killed while waiting has reached Zulip)."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass, field

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from idp import clock

BOT_EMAIL = "nudge-bot@zulip.example.edu"
BOT_KEY = "nudge-bot-key-0123456789"
BOT_ID = 9000


def _answer(status: int = 200, headers: dict | None = None, **body) -> Response:
    body.setdefault("result", "success" if status == 200 else "error")
    body.setdefault("msg", "")
    return Response(json.dumps(body), status=status, content_type="application/json",
                    headers=headers or {})


@dataclass
class User:
    id: int
    email: str
    active: bool = True


@dataclass
class MessagesRealm:
    feature_level: int = 400
    users: dict[int, User] = field(default_factory=dict)
    forbidden: set[int] = field(default_factory=set)     # the bot may not DM these (403)
    messages: list[dict] = field(default_factory=list)
    rate_limit: int = 1000                               # POST /messages per window
    window: float = 60.0                                 # seconds (clock time)
    retry_after: int = 30
    delay: float = 0.0
    answer_500: int = 0                                  # the next N sends answer 500
    _sent_times: list[float] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add(self, user_id: int, email: str, active: bool = True) -> User:
        self.users[user_id] = User(user_id, email, active)
        return self.users[user_id]

    def to(self, user_id: int) -> list[dict]:
        return [m for m in self.messages if m["to"] == user_id]


class MessagesApp:
    def __init__(self, realm: MessagesRealm):
        self.realm = realm
        self.auth = "Basic " + base64.b64encode(f"{BOT_EMAIL}:{BOT_KEY}".encode()).decode()

    def __call__(self, environ, start_response):
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        realm = self.realm
        path = request.path.removeprefix("/api/v1")
        if path == "/server_settings":
            return _answer(zulip_version="11.0" if realm.feature_level >= 300 else "6.2",
                           zulip_feature_level=realm.feature_level, realm_uri="x")
        if request.headers.get("Authorization") != self.auth:
            return _answer(401, code="UNAUTHORIZED", msg="Invalid API key")
        if path.startswith("/users/") and request.method == "GET":
            email = path.removeprefix("/users/")
            with realm.lock:
                user = next((u for u in realm.users.values() if u.email == email), None)
            if user is None:
                return _answer(400, code="BAD_REQUEST", msg="No such user")
            return _answer(user={"user_id": user.id, "email": user.email,
                                 "is_active": user.active})
        if path == "/messages" and request.method == "POST":
            return self.send(request.form)
        if path == "/messages" and request.method == "GET":
            return self.history(request.args)
        return _answer(404, code="BAD_REQUEST", msg="Not found")

    def send(self, form) -> Response:
        realm = self.realm
        kind = form.get("type")
        if kind not in ("private", "direct") or (kind == "direct"
                                                 and realm.feature_level < 174):
            return _answer(400, code="BAD_REQUEST", msg="Invalid message type")
        try:
            to = json.loads(form.get("to", ""))
            assert isinstance(to, list) and to and all(isinstance(i, int) for i in to)
        except (ValueError, AssertionError):
            return _answer(400, code="BAD_REQUEST", msg="Invalid user ID")
        content = form.get("content", "")
        if not content.strip() or len(content.encode()) > 10_000:
            return _answer(400, code="BAD_REQUEST", msg="Message must not be empty or long")
        now = clock.now().timestamp()
        with realm.lock:
            if realm.answer_500:
                realm.answer_500 -= 1
                return Response("<h1>Server Error</h1>", 500, content_type="text/html")
            realm._sent_times = [t for t in realm._sent_times if t > now - realm.window]
            if len(realm._sent_times) >= realm.rate_limit:
                return _answer(429, headers={"Retry-After": str(realm.retry_after)},
                               code="RATE_LIMIT_HIT", msg="API usage exceeded rate limit",
                               **{"retry-after": realm.retry_after})
            realm._sent_times.append(now)
            for uid in to:
                user = realm.users.get(uid)
                if user is None:
                    return _answer(400, code="BAD_REQUEST", msg=f"Invalid user ID {uid}")
                if not user.active:
                    return _answer(400, code="BAD_REQUEST",
                                   msg=f"'{user.email}' is no longer using Zulip.")
                if uid in realm.forbidden:
                    return _answer(403, code="BAD_REQUEST",
                                   msg="You do not have permission to send to this user")
            message = {"id": len(realm.messages) + 1, "to": to[0], "type": kind,
                       "content": content, "timestamp": int(now)}
            realm.messages.append(message)
            delay = realm.delay
        if delay:
            time.sleep(delay)  # the double being slow, not test synchronisation
        return _answer(id=message["id"])

    def history(self, args) -> Response:
        realm = self.realm
        try:
            narrow = json.loads(args.get("narrow", "[]"))
            (term,) = narrow
            operator, operand = term["operator"], term["operand"]
        except (ValueError, KeyError, TypeError):
            return _answer(400, code="BAD_REQUEST", msg="Invalid narrow")
        if operator not in ("dm", "pm-with") or (operator == "dm"
                                                 and realm.feature_level < 177):
            return _answer(400, code="BAD_REQUEST", msg="Invalid narrow operator")
        with realm.lock:
            found = [m for m in realm.messages if [m["to"]] == operand]
        count = int(args.get("num_before", "20"))
        return _answer(messages=[{**m, "sender_id": BOT_ID} for m in found[-count:]])


class MessagesServer:
    def __init__(self, realm: MessagesRealm):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.realm = realm
        self.server = make_server("127.0.0.1", 0, MessagesApp(realm), threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
