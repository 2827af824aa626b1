"""Fixtures of the agent tests: an MCP client (the official SDK) that signs in through the
bridge's OAuth in headless Chromium, clean context caches, and tokens for direct calls."""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.context.conftest import _fresh_context  # noqa: F401  (autouse: clean caches)
from tests.helpers import DEMO_PASSWORD

REDIRECT = "http://127.0.0.1:33418/callback"
DEADLINE = 60


@pytest.fixture(autouse=True)
def _fresh_sharing_choices(app):
    """Every test starts with no cached AI-sharing choice (the tables are emptied after each)."""
    app.extensions["agents"].sharing_choices.clear()
    yield
    app.extensions["agents"].sharing_choices.clear()


@dataclass
class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory."""

    tokens: object = None
    client_info: object = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info) -> None:
        self.client_info = client_info


@dataclass
class AgentRun:
    results: list = field(default_factory=list)
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    tools: list = field(default_factory=list)
    seen_urls: list = field(default_factory=list)


def _client_metadata():
    from mcp.shared.auth import OAuthClientMetadata

    return OAuthClientMetadata(client_name="Test agent", redirect_uris=[REDIRECT],
                               grant_types=["authorization_code", "refresh_token"],
                               response_types=["code"], token_endpoint_auth_method="none")


async def _session_calls(url: str, run: AgentRun, calls, provider=None, headers=None):
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def record(request):
        run.seen_urls.append((request.method, str(request.url)))

    async with httpx2.AsyncClient(auth=provider, headers=headers,
                                  event_hooks={"request": [record]}) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                run.tools = (await session.list_tools()).tools
                for name, arguments in calls:
                    run.results.append(await session.call_tool(name, arguments))


def mcp_calls_with_token(base_url: str, token: str, calls) -> AgentRun:
    """Tool calls with a token already in hand (no OAuth flow). The client's event loop runs
    on a thread of its own: the test thread may already run one (Playwright's sync API keeps
    its loop on the thread that started it, e.g. after the browser tests)."""
    from concurrent.futures import ThreadPoolExecutor

    run = AgentRun()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _session_calls(
            base_url + "/mcp", run, calls,
            headers={"Authorization": f"Bearer {token}"})).result(timeout=DEADLINE)
    return run


@pytest.fixture
def mcp_agent(live_server, page):
    """``mcp_agent(login, calls)``: an SDK client meets the 401, discovers the metadata,
    registers, has ``login`` sign in and allow it in Chromium, gets a token and makes
    ``calls`` ([(tool, arguments)]); returns the :class:`AgentRun`."""
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import AuthorizationCodeResult

    def run_agent(login: str, calls, decide: str = "Allow") -> AgentRun:
        run = AgentRun()
        to_browser: queue.Queue = queue.Queue()
        to_agent: queue.Queue = queue.Queue()
        failure: list[BaseException] = []

        async def redirect_handler(url: str) -> None:
            to_browser.put(url)

        async def callback_handler() -> AuthorizationCodeResult:
            params = await asyncio.to_thread(to_agent.get, True, DEADLINE)
            return AuthorizationCodeResult(code=params["code"], state=params.get("state"))

        def agent() -> None:
            provider = OAuthClientProvider(
                server_url=live_server + "/mcp", client_metadata=_client_metadata(),
                storage=run.storage, redirect_handler=redirect_handler,
                callback_handler=callback_handler)
            try:
                asyncio.run(_session_calls(live_server + "/mcp", run, calls, provider))
            except BaseException as exc:  # handed to the test thread
                failure.append(exc)
                to_browser.put(None)

        thread = threading.Thread(target=agent, daemon=True)
        thread.start()
        url = to_browser.get(timeout=DEADLINE)
        if url is not None:
            callbacks: list[str] = []
            page.route("http://127.0.0.1:33418/**", lambda route: (
                callbacks.append(route.request.url),
                route.fulfill(status=200, body="callback reached", content_type="text/plain")))
            page.goto(url)
            page.get_by_label("Username or email").fill(login)
            page.get_by_label("Password").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("button", name=decide).click()
            page.wait_for_url("http://127.0.0.1:33418/**")
            to_agent.put({k: v[0] for k, v in parse_qs(urlsplit(callbacks[-1]).query).items()})
        thread.join(DEADLINE)
        assert not thread.is_alive(), "the MCP client did not finish"
        if failure:
            raise failure[0]
        return run

    return run_agent


def register_agent(client, **metadata) -> dict:
    """RFC 7591 registration through the endpoint; returns the client information."""
    body = {"client_name": "Test agent", "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none", **metadata}
    response = client.post("/oauth/register", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json


def authorize_code(client, client_id: str, *, resource: str | None, scope: str = "lms.context",
                   challenge: str) -> str:
    """The code of a signed-in test client after allowing on the consent page."""
    import re

    query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
             "scope": scope, "state": "s1", "code_challenge": challenge,
             "code_challenge_method": "S256"}
    if resource is not None:
        query["resource"] = resource
    page = client.get("/oauth/authorize", query_string=query)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    response = client.post("/oauth/authorize/consent", data={
        **query, "csrf_token": csrf.group(1), "decision": "allow"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def bound_token(app, login: str, *, resource: str | None, scope: str = "lms.context") -> dict:
    """A real token from the bridge's endpoints (registration, sign-in, consent, token), for
    ``login``, bound to ``resource`` (None: an unbound token)."""
    from tests.helpers import client_login, pkce_pair

    client = app.test_client()
    info = register_agent(client, scope=scope)
    client_login(client, login)
    verifier, challenge = pkce_pair()
    code = authorize_code(client, info["client_id"], resource=resource, scope=scope,
                          challenge=challenge)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": info["client_id"], "code_verifier": verifier}
    if resource is not None:
        form["resource"] = resource
    response = client.post("/oauth/token", data=form)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {**response.json, "client_id": info["client_id"]}
