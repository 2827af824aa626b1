"""The MCP server (Model Context Protocol, Streamable HTTP transport) with the official SDK.

It runs inside the bridge's WSGI process: the SDK's ``MCPServer`` with the six tools, served
statelessly with JSON responses (no server-side MCP sessions, so any worker or replica answers
any request) by :mod:`idp.agents.mcp_transport` on the thread of the HTTP request, after
:mod:`idp.agents.views` has checked the bearer token. The view hands the authenticated caller
to the tool in a context variable (:func:`calling_as`) that the tool's coroutine inherits;
nothing the client sends can name a caller. The tools are coroutines so that the SDK runs them
on that same thread (it would move a plain function to a worker thread); they do blocking
database work, which is right here: the event loop serves this one request only.

Tools (MCP spec 2025-06-18 "Tools", structured content with an output schema): find_student,
get_student_profile, get_student_performance, get_learning_patterns, list_my_students,
students_needing_attention. Refusals and bad arguments are tool errors (``isError``), never
HTTP errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any
from urllib.parse import urlsplit

from flask import Flask
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, Field

from . import answers
from .answers import AgentCaller, BadArgument, NotVisible, Unavailable
from .mcp_transport import StatelessStreamableHTTP

_CALLER: ContextVar[AgentCaller | None] = ContextVar("mcp_caller", default=None)

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
@contextmanager
def calling_as(caller: AgentCaller) -> Iterator[None]:
    """The MCP request served inside this block acts for ``caller``."""
    token = _CALLER.set(caller)
    try:
        yield
    finally:
        _CALLER.reset(token)


def build_server() -> MCPServer:
    """The SDK server with the six tools; each runs in the request's app context for the
    caller the view authenticated."""
    server = MCPServer("lms-context", title="LMS academic context",
                       instructions=INSTRUCTIONS, version="1")

    def run(answer: Callable[[AgentCaller], dict]) -> Any:
        """The answer as a dict: the SDK validates it once against the tool's return type (its
        output schema) on its way to ``structuredContent``."""
        caller = _CALLER.get()
        if caller is None:
            raise ToolError("This call is not authenticated.")
        try:
            return answer(caller)
        except (NotVisible, BadArgument, Unavailable) as refused:
            raise ToolError(str(refused)) from None

    @server.tool(title="Find a student")
    async def find_student(query: Annotated[str, Field(
            min_length=1, max_length=100,
            description="part of a name, a username or an e-mail address")]) -> FindStudentResult:
        """Find students you may see by name, username or e-mail address."""
        return run(lambda c: answers.find_student(c, query))

    @server.tool(title="Student profile")
    async def get_student_profile(student_id: StudentId) -> StudentProfile:
        """A student's profile: batch, mentor, streaks, average and percentile, struggling and
        strong subjects, recent activity."""
        return run(lambda c: answers.student_profile(c, student_id))

    @server.tool(title="Student performance")
    async def get_student_performance(student_id: StudentId) -> StudentPerformance:
        """Exam history, per-subject performance, score trend and recommendations with their
        reasons."""
        return run(lambda c: answers.student_performance(c, student_id))

    @server.tool(title="Learning patterns")
    async def get_learning_patterns(student_id: StudentId) -> LearningPatterns:
        """When the student practises (attempts per weekday) and how their scores move."""
        return run(lambda c: answers.learning_patterns(c, student_id))

    @server.tool(title="My students")
    async def list_my_students(limit: Annotated[int, Field(ge=1, le=200)] = 50,
                               offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0
                               ) -> StudentList:
        """A page of your students (mentors), by name, with key metrics and flags."""
        return run(lambda c: answers.list_my_students(c, limit, offset))

    @server.tool(title="Students needing attention")
    async def students_needing_attention() -> AttentionList:
        """Your students who need attention now (broken streaks, falling scores), most
        urgent first, each with the reasons."""
        return run(answers.students_needing_attention)

    return server


def build_transport(issuer: str) -> StatelessStreamableHTTP:
    """The server behind its transport, accepting requests for ``issuer``'s host only (the
    SDK's DNS rebinding protection)."""
    origin = urlsplit(issuer)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=[origin.netloc],
        allowed_origins=[f"{origin.scheme}://{origin.netloc}"])
    # the low-level server behind MCPServer's decorators, as the SDK's own clients reach it
    return StatelessStreamableHTTP(build_server()._lowlevel_server, security)


_BUILD_LOCK = threading.Lock()


def transport_for(app: Flask) -> StatelessStreamableHTTP:
    """``app``'s MCP transport, built on the first MCP request (after a forking server has
    forked) and shared by all its threads."""
    agents = app.extensions["agents"]
    if agents.mcp_transport is None:
        with _BUILD_LOCK:
            if agents.mcp_transport is None:
                agents.mcp_transport = build_transport(app.config["IDP"].issuer)
    return agents.mcp_transport
