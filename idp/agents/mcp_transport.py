"""Stateless Streamable HTTP with JSON responses for the SDK's MCP server, answered on the
calling WSGI thread.

MCP 2025-06-18 "Transports" §2 (Streamable HTTP) lets a server answer each POST on its own:
no ``Mcp-Session-Id`` (§2.5), one JSON-RPC request in and one ``application/json`` response
out (§2.2.5), notifications and responses acknowledged with 202 (§2.2.4). That is the SDK's
stateless JSON mode, whose session manager builds a transport, a pair of memory streams, a
JSON-RPC dispatcher and a task per request, behind a thread hop into its event loop. This module
keeps what the SDK's transport checks and answers, in the same order and with the same
responses (``StreamableHTTPServerTransport._handle_request`` / ``_handle_post_request``), and
hands the request to the SDK's own single-request driver :func:`mcp.server.runner.serve_one`,
the one its 2026-07-28 entry uses: protocol-version negotiation, request validation, the
server middleware and the tool handlers are the SDK's. A request naming a protocol version
outside the handshake era goes to the SDK's own entry for it (``handle_modern_request``),
as its session manager routes it.

Threads: the coroutine runs on an event loop taken from a small pool, on the thread that
serves the HTTP request, so a tool runs with the view's Flask contexts and context variables
and nothing crosses threads. A loop serves one request at a time; the pool grows to the number
of requests in flight in the process (the WSGI server's threads), and is rebuilt after a fork.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
import weakref
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

import anyio
import pydantic_core
from mcp.server.connection import Connection
from mcp.server.runner import serve_one
from mcp.server.streamable_http import CONTENT_TYPE_JSON, check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp.shared.message import MessageMetadata, ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import (
    DEFAULT_NEGOTIATED_VERSION,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    jsonrpc_message_adapter,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response as ASGIResponse
from starlette.types import Message, Receive, Scope, Send
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)
T = TypeVar("T")


class LoopPool:
    """Event loops lent to one calling thread at a time (asyncio lets a loop run on any thread,
    one run at a time). Thread-safe; emptied in a forked child, whose copies of the parent's
    loops share the parent's self-pipes."""

    def __init__(self):
        self._free: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()
        pool = weakref.ref(self)   # the hook must not keep a pool (and its loops) alive
        os.register_at_fork(after_in_child=lambda: (p := pool()) is not None and p._forget())

    def _forget(self) -> None:
        self._free = []
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion on this thread, in a copy of this thread's context (on a
        helper thread, with that copy, if this thread is already inside a running loop: an
        embedding or a test harness, never a WSGI server's thread)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._run_here(coro)
        with ThreadPoolExecutor(1, thread_name_prefix="mcp-loop") as helper:
            return helper.submit(contextvars.copy_context().run, self._run_here, coro).result()

    def _run_here(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            loop = self._free.pop() if self._free else None
        if loop is None:
            loop = asyncio.new_event_loop()
        try:
            result = loop.run_until_complete(coro)
        except BaseException:
            loop.close()   # a loop left mid-task is not lent again
            raise
        with self._lock:
            self._free.append(loop)
        return result


@dataclass
class _OneExchange:
    """The SDK's per-request ``DispatchContext`` for a stateless POST answered in JSON: no
    back-channel (the client's reply would have nowhere to land), and request-scoped
    notifications have no wire in a JSON response, as in the SDK's JSON mode."""

    transport: TransportContext
    request_id: RequestId
    message_metadata: MessageMetadata
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = field(default=False, init=False)

    async def send_raw_request(self, method: str, params: Mapping[str, Any] | None,
                               opts: CallOptions | None = None) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None,
                     opts: CallOptions | None = None) -> None:
        return None

    async def progress(self, progress: float, total: float | None = None,
                       message: str | None = None) -> None:
        return None


def _error(message: str, status: int, code: int = INVALID_REQUEST) -> ASGIResponse:
    """The SDK transport's error answer: a JSON-RPC error without an id."""
    body = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=code, message=message))
    return ASGIResponse(body.model_dump_json(by_alias=True, exclude_unset=True),
                        status_code=status, headers={"Content-Type": CONTENT_TYPE_JSON})


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return CONTENT_TYPE_JSON in (part.strip() for part in content_type.split(";")[0].split(","))


def _asgi_scope(environ: Mapping[str, Any]) -> Scope:
    headers = [(key[5:].replace("_", "-").lower().encode("latin-1"), value.encode("latin-1"))
               for key, value in environ.items() if key.startswith("HTTP_")]
    for key, name in (("CONTENT_TYPE", b"content-type"), ("CONTENT_LENGTH", b"content-length")):
        if environ.get(key):
            headers.append((name, environ[key].encode("latin-1")))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": environ["REQUEST_METHOD"], "scheme": environ.get("wsgi.url_scheme", "http"),
            "path": environ.get("PATH_INFO", ""), "raw_path": None, "root_path": "",
            "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
            "headers": headers, "client": (environ.get("REMOTE_ADDR", ""), 0),
            "server": (environ.get("SERVER_NAME", ""), int(environ.get("SERVER_PORT") or 0))}


class _Exchange:
    """ASGI receive/send over a body already read, collecting the response."""

    def __init__(self, body: bytes):
        self._body: bytes | None = body
        self.status = 500
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []

    async def receive(self) -> Message:
        if self._body is None:
            return {"type": "http.disconnect"}
        body, self._body = self._body, None
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [(k.decode("latin-1"), v.decode("latin-1"))
                            for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    def response(self) -> Response:
        return Response(b"".join(self.chunks), status=self.status, headers=self.headers)


class StatelessStreamableHTTP:
    """POST /mcp for ``server`` (the SDK's low-level ``Server``), with the SDK transport's DNS
    rebinding protection (``security``). One per app; safe to call from many threads."""

    def __init__(self, server, security: TransportSecuritySettings):
        self.server = server
        self.settings = security
        self.security = TransportSecurityMiddleware(security)
        self.loops = LoopPool()
        # The server's lifespan, entered once for the process as the SDK's session manager
        # does (the bridge's server keeps the SDK's default, which holds nothing).
        self._lifespan = AsyncExitStack()
        self.lifespan_state = self.loops.run(
            self._lifespan.enter_async_context(server.lifespan(server)))

    def __call__(self, environ: Mapping[str, Any], body: bytes) -> Response:
        """Answer one POST whose ``body`` the caller has read (and bounded)."""
        exchange = _Exchange(body)
        self.loops.run(self.asgi(_asgi_scope(environ), exchange.receive, exchange.send))
        return exchange.response()

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        version = next((v.decode("latin-1") for k, v in scope["headers"]
                        if k == MCP_PROTOCOL_VERSION_HEADER.encode("ascii")), None)
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            # the SDK session manager's era routing: its own single-exchange entry validates
            # the version (and refuses unknown ones) for the 2026-07-28 protocol
            from mcp.server._streamable_http_modern import handle_modern_request

            await handle_modern_request(self.server, self.settings, True, self.lifespan_state,
                                        scope, receive, send)
            return
        response = await self._answer(Request(scope, receive), version)
        await response(scope, receive, send)

    async def _answer(self, request: Request, version: str | None) -> ASGIResponse:
        refused = await self.security.validate_request(request, is_post=True)
        if refused is not None:
            return refused
        has_json, _has_sse = check_accept_headers(request)
        if not has_json:
            return _error("Not Acceptable: Client must accept application/json",
                          HTTPStatus.NOT_ACCEPTABLE)
        if not _is_json(request):
            return _error("Unsupported Media Type: Content-Type must be application/json",
                          HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        try:
            raw = pydantic_core.from_json(await request.body())
        except ValueError as exc:
            return _error(f"Parse error: {exc}", HTTPStatus.BAD_REQUEST, PARSE_ERROR)
        try:
            message = jsonrpc_message_adapter.validate_python(raw, by_name=False)
        except ValidationError as exc:
            return _error(f"Validation error: {exc}", HTTPStatus.BAD_REQUEST, INVALID_PARAMS)
        if not isinstance(message, JSONRPCRequest):
            # a notification or a response: accepted (§2.2.4); a stateless server keeps
            # nothing for one to act on
            return ASGIResponse(None, status_code=HTTPStatus.ACCEPTED,
                                headers={"Content-Type": CONTENT_TYPE_JSON})
        reply = await self._dispatch(request, message, version or DEFAULT_NEGOTIATED_VERSION)
        return ASGIResponse(reply.model_dump_json(by_alias=True, exclude_unset=True),
                            status_code=HTTPStatus.OK,
                            headers={"Content-Type": CONTENT_TYPE_JSON})

    async def _dispatch(self, request: Request, message: JSONRPCRequest,
                        version: str) -> JSONRPCResponse | JSONRPCError:
        """The SDK's stateless legacy path: a born-ready connection at the header's version."""
        dctx = _OneExchange(
            transport=TransportContext(kind="streamable-http", can_send_request=False,
                                       headers=request.headers),
            request_id=message.id,
            message_metadata=ServerMessageMetadata(request_context=request,
                                                   can_send_request=False))
        try:
            result = await serve_one(self.server, dctx, message.method, message.params,
                                     connection=Connection.from_envelope(version, None, None),
                                     lifespan_state=self.lifespan_state)
        except Exception as exc:
            error = handler_exception_to_error_data(exc)
            if error is None:   # never a handler's internals on the wire
                log.exception("MCP handler for %r raised", message.method)
                error = ErrorData(code=INTERNAL_ERROR, message="Internal server error")
            return JSONRPCError(jsonrpc="2.0", id=message.id, error=error)
        return JSONRPCResponse(jsonrpc="2.0", id=message.id, result=result)
