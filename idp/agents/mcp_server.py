"""The MCP server (Model Context Protocol, Streamable HTTP transport) with the official SDK.

It runs inside the bridge's WSGI process: the SDK's Starlette app, in stateless mode with JSON
responses (no server-side MCP sessions, so any worker or replica answers any request), is
wrapped by a2wsgi into a WSGI app that :mod:`idp.agents.views` calls after it has checked the
bearer token. a2wsgi drives the ASGI app on one event loop per worker process (started on the
first MCP request, after gunicorn forked), and the SDK runs each (synchronous) tool in a worker
thread with the bridge's app context. The view hands the authenticated caller to the tool
through a per-request key in a header it sets itself (:func:`enter_call`); nothing the client
sends can name a caller.

Tools (MCP spec 2025-06-18 "Tools", structured content with an output schema): find_student,
get_student_profile, get_student_performance, get_learning_patterns, list_my_students,
students_needing_attention. Refusals and bad arguments are tool errors (``isError``), never
HTTP errors.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from flask import Flask
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from . import answers
from .answers import AgentCaller, BadArgument, NotVisible, Unavailable

CALL_HEADER = "x-bridge-agent-call"
_CALLS: dict[str, AgentCaller] = {}
_CALLS_LOCK = threading.Lock()

INSTRUCTIONS = (
    "Academic context from the school's LMS for the person who signed in: a mentor sees only "
    "their own students, a student only themselves. Start with find_student or "
    "list_my_students to get a student id, then ask for the profile, performance or learning "
    "patterns. Every result has a plain-language 'summary'. Students who opted out of sharing "
    "with AI agents are not found.")


# -- structured output -----------------------------------------------------------------------
class StudentMatch(BaseModel):
    id: int
    display_name: str
    username: str
    batch: str | None = None
    email: str | None = Field(None, description="only with the scope lms.context.email")


class FindStudentResult(BaseModel):
    summary: str
    matches: list[StudentMatch]


class StudentProfile(BaseModel):
    summary: str
    student: dict[str, Any]
    performance_metrics: dict[str, Any]
    current_courses: list[dict[str, Any]]
    struggling_subjects: list[str]
    strong_subjects: list[str]
    recent_activity: dict[str, Any]
    stale: bool
    as_of: str


class StudentPerformance(BaseModel):
    summary: str
    student: dict[str, Any]
    exam_history: list[dict[str, Any]]
    subject_performance: list[dict[str, Any]]
    learning_patterns: dict[str, Any]
    recommendations: list[dict[str, Any]]
    stale: bool
    as_of: str


class LearningPatterns(BaseModel):
    summary: str
    student: dict[str, Any]
    activity_by_weekday: list[dict[str, Any]]
    most_active_weekday: str | None
    score_trend: dict[str, Any]
    stale: bool
    as_of: str


class StudentList(BaseModel):
    summary: str
    students: list[dict[str, Any]]
    limit: int
    offset: int
    stale: bool
    as_of: str


class AttentionList(BaseModel):
    summary: str
    students: list[dict[str, Any]]


StudentId = Annotated[int, Field(ge=1, le=2**31 - 1, description="the LMS student id")]


# -- the caller hand-over ------------------------------------------------------------------
def enter_call(caller: AgentCaller) -> str:
    key = secrets.token_urlsafe(24)
    with _CALLS_LOCK:
        _CALLS[key] = caller
    return key


def leave_call(key: str) -> None:
    with _CALLS_LOCK:
        _CALLS.pop(key, None)


def build_server(app: Flask):
    """The SDK server with the six tools; each runs in ``app``'s context for the caller the
    view authenticated."""
    server = MCPServer("lms-context", title="LMS academic context",
                       instructions=INSTRUCTIONS, version="1")

    def run(ctx: Context, answer: Callable[[AgentCaller], dict], model: type[BaseModel]):
        key = (ctx.headers or {}).get(CALL_HEADER, "")
        with _CALLS_LOCK:
            caller = _CALLS.get(key)
        if caller is None:
            raise ToolError("This call is not authenticated.")
        with app.app_context():
            try:
                return model.model_validate(answer(caller))
            except (NotVisible, BadArgument, Unavailable) as refused:
                raise ToolError(str(refused)) from None

    @server.tool(title="Find a student")
    def find_student(query: Annotated[str, Field(min_length=1, max_length=100,
                     description="part of a name, a username or an e-mail address")],
                     ctx: Context) -> FindStudentResult:
        """Find students you may see by name, username or e-mail address."""
        return run(ctx, lambda c: answers.find_student(c, query), FindStudentResult)

    @server.tool(title="Student profile")
    def get_student_profile(student_id: StudentId, ctx: Context) -> StudentProfile:
        """A student's profile: batch, mentor, streaks, average and percentile, struggling and
        strong subjects, recent activity."""
        return run(ctx, lambda c: answers.student_profile(c, student_id), StudentProfile)

    @server.tool(title="Student performance")
    def get_student_performance(student_id: StudentId, ctx: Context) -> StudentPerformance:
        """Exam history, per-subject performance, score trend and recommendations with their
        reasons."""
        return run(ctx, lambda c: answers.student_performance(c, student_id),
                   StudentPerformance)

    @server.tool(title="Learning patterns")
    def get_learning_patterns(student_id: StudentId, ctx: Context) -> LearningPatterns:
        """When the student practises (attempts per weekday) and how their scores move."""
        return run(ctx, lambda c: answers.learning_patterns(c, student_id), LearningPatterns)

    @server.tool(title="My students")
    def list_my_students(ctx: Context,
                         limit: Annotated[int, Field(ge=1, le=200)] = 50,
                         offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0) -> StudentList:
        """A page of your students (mentors), by name, with key metrics and flags."""
        return run(ctx, lambda c: answers.list_my_students(c, limit, offset), StudentList)

    @server.tool(title="Students needing attention")
    def students_needing_attention(ctx: Context) -> AttentionList:
        """Your students who need attention now (broken streaks, falling scores), most
        urgent first, each with the reasons."""
        return run(ctx, answers.students_needing_attention, AttentionList)

    return server


class MCPBridge:
    """The SDK's Starlette app as a WSGI app, with its session manager running on a2wsgi's
    event loop. Built lazily per process (:func:`get_bridge`)."""

    def __init__(self, app: Flask, issuer: str, path: str):
        from a2wsgi import ASGIMiddleware
        from mcp.server.transport_security import TransportSecuritySettings

        origin = urlsplit(issuer)
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=[origin.netloc],
            allowed_origins=[f"{origin.scheme}://{origin.netloc}"])
        self.server = build_server(app)
        self.asgi = self.server.streamable_http_app(
            streamable_http_path=path, json_response=True, stateless_http=True,
            transport_security=security)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="mcp-loop", daemon=True).start()
        started = threading.Event()

        async def keep_session_manager_running() -> None:
            async with self.server.session_manager.run():
                started.set()
                await asyncio.Event().wait()

        self._runner = asyncio.run_coroutine_threadsafe(keep_session_manager_running(),
                                                        self.loop)
        if not started.wait(10):
            raise RuntimeError("the MCP session manager did not start")
        self.wsgi = ASGIMiddleware(self.asgi, loop=self.loop)


_BRIDGES: dict[int, MCPBridge] = {}
_BRIDGE_LOCK = threading.Lock()


def get_bridge(app: Flask, issuer: str, path: str) -> MCPBridge:
    with _BRIDGE_LOCK:
        bridge = _BRIDGES.get(id(app))
        if bridge is None:
            bridge = _BRIDGES[id(app)] = MCPBridge(app, issuer, path)
        return bridge
