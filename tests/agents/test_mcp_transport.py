"""The stateless Streamable HTTP transport of /mcp (idp.agents.mcp_transport): concurrent tool
calls from several threads each act for their own caller, the loop pool lends a loop to one
thread at a time, and the transport answers what the SDK's transport answers."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import text

from idp.agents.mcp_transport import LoopPool
from idp.extensions import db
from tests.agents.conftest import bound_token

THREADS = 8
CALLS_EACH = 4
PROTOCOL = "2025-06-18"


def _headers(token: str, **extra) -> dict:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": PROTOCOL,
            **extra}


def _profile_call(student_id: int, call_id: int) -> dict:
    return {"jsonrpc": "2.0", "id": call_id, "method": "tools/call",
            "params": {"name": "get_student_profile", "arguments": {"student_id": student_id}}}


@pytest.fixture
def mcp_url(live_server) -> str:
    return live_server + "/mcp"


def _mentor_students(app, mentor_id: int) -> list[tuple[int, str]]:
    with app.app_context():
        return [tuple(r) for r in app.extensions["lms_directory"].engine.connect().execute(text(
            "SELECT id, username FROM students WHERE mentor_id = :m ORDER BY id LIMIT 2"),
            {"m": mentor_id}).all()]


def test_concurrent_tool_calls_each_act_for_their_own_caller(app, mcp_url):
    """Mentor and student threads call at once (a barrier releases them together): every
    answer is the one its own token allows, and the audit names the right person."""
    (own_id, own_name), _second = _mentor_students(app, 1)
    mentor = bound_token(app, "mentor1", resource=mcp_url)["access_token"]
    student = bound_token(app, own_name, resource=mcp_url)["access_token"]
    other_id = next(sid for sid, _ in _mentor_students(app, 1) if sid != own_id)
    barrier = threading.Barrier(THREADS)
    answers: dict[int, list] = {}
    failures: list[BaseException] = []

    def agent(n: int) -> None:
        token = mentor if n % 2 == 0 else student
        session = requests.Session()
        mine = answers.setdefault(n, [])
        try:
            barrier.wait(timeout=30)
            for i in range(CALLS_EACH):
                response = session.post(mcp_url, headers=_headers(token), timeout=30,
                                        json=_profile_call(other_id, n * 100 + i))
                mine.append((response.status_code, response.json()))
        except BaseException as exc:  # handed to the test thread
            failures.append(exc)

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures and not any(t.is_alive() for t in threads)
    for n, replies in answers.items():
        assert len(replies) == CALLS_EACH
        for i, (status, body) in enumerate(replies):
            assert status == 200 and body["id"] == n * 100 + i
            result = body["result"]
            if n % 2 == 0:   # the mentor sees their other student
                assert not result.get("isError"), result
                assert result["structuredContent"]["student"]["id"] == other_id
            else:            # the student does not see a classmate
                assert result["isError"] and "is visible to you" in result["content"][0]["text"]
    with app.app_context():
        rows = db.session.execute(text(
            "SELECT subject, outcome, count(*) FROM audit_events WHERE event = 'context.read' "
            "AND detail->>'channel' = 'mcp' GROUP BY subject, outcome")).all()
    assert sorted(tuple(r) for r in rows) == sorted([
        ("mentor:1", "ok", THREADS // 2 * CALLS_EACH),
        (f"student:{own_id}", "not_found", THREADS // 2 * CALLS_EACH)])


def test_loop_pool_lends_one_loop_per_thread_at_a_time():
    """Threads inside the pool at once hold distinct loops; each coroutine sees its own
    thread's context variables; the loops are lent again afterwards."""
    pool = LoopPool()
    caller = contextvars.ContextVar("caller")
    barrier = threading.Barrier(4)
    seen: dict[int, tuple] = {}

    async def inside(n: int) -> tuple:
        barrier.wait(timeout=30)   # all four coroutines run at the same time
        return id(asyncio.get_running_loop()), caller.get(), threading.get_ident()

    def worker(n: int) -> None:
        caller.set(f"caller {n}")
        seen[n] = (*pool.run(inside(n)), threading.get_ident())

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len({loop for loop, *_ in seen.values()}) == 4
    assert all(who == f"caller {n}" and ran_on == thread_id
               for n, (_loop, who, ran_on, thread_id) in seen.items())
    assert len(pool._free) == 4
    again = pool.run(inside_alone())
    assert again in {loop for loop, *_ in seen.values()}


async def inside_alone() -> int:
    return id(asyncio.get_running_loop())


def test_a_thread_already_inside_a_running_loop_is_served_too():
    pool = LoopPool()
    caller = contextvars.ContextVar("caller")

    async def outer():
        caller.set("outer")
        return pool.run(seen_caller(caller)), id(asyncio.get_running_loop())

    with ThreadPoolExecutor(1) as fresh_thread:   # this test thread may hold Playwright's loop
        (inner_loop, who), outer_loop = fresh_thread.submit(asyncio.run, outer()).result(30)
    assert who == "outer" and inner_loop != outer_loop


async def seen_caller(var: contextvars.ContextVar) -> tuple:
    return id(asyncio.get_running_loop()), var.get()


def test_a_forked_child_starts_with_no_loops_of_its_parent():
    import os

    pool = LoopPool()
    pool.run(inside_alone())
    assert len(pool._free) == 1
    read, write = os.pipe()
    child = os.fork()
    if child == 0:   # pragma: no cover - the child reports through the pipe
        os.write(write, str(len(pool._free)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    assert os.read(read, 10) == b"0"
    os.close(read)
    assert len(pool._free) == 1


def test_a_failing_coroutine_does_not_lend_its_loop_again():
    pool = LoopPool()

    async def boom():
        raise ValueError("boom")

    with pytest.raises(ValueError):
        pool.run(boom())
    assert pool._free == []
    assert pool.run(inside_alone())


def test_protocol_answers_match_the_sdk_transport(app, mcp_url):
    token = bound_token(app, "mentor1", resource=mcp_url)["access_token"]
    notification = requests.post(mcp_url, headers=_headers(token), timeout=10, json={
        "jsonrpc": "2.0", "method": "notifications/initialized"})
    assert notification.status_code == 202 and notification.content == b""
    json_only = requests.post(mcp_url, headers=_headers(token, Accept="text/html"), timeout=10,
                              json=_profile_call(1, 1))
    assert json_only.status_code == 406 and json_only.json()["error"]["code"] == -32600
    batch = requests.post(mcp_url, headers=_headers(token), timeout=10,
                          json=[_profile_call(1, 1), _profile_call(1, 2)])
    assert batch.status_code == 400 and batch.json()["error"]["code"] == -32602
    evil_origin = requests.post(mcp_url, headers=_headers(token, Origin="https://evil.example"),
                                timeout=10, json=_profile_call(1, 1))
    assert evil_origin.status_code == 403
    not_json = requests.post(mcp_url, headers=_headers(token, **{"Content-Type": "text/plain"}),
                             timeout=10, data=b"{}")
    assert not_json.status_code == 400
    unknown_method = requests.post(mcp_url, headers=_headers(token), timeout=10, json={
        "jsonrpc": "2.0", "id": 7, "method": "no/such/method"})
    assert unknown_method.status_code == 200
    assert unknown_method.json() == {"jsonrpc": "2.0", "id": 7, "error": {
        "code": -32601, "message": "Method not found", "data": "no/such/method"}}


@pytest.mark.parametrize("version", ["1999-01-01", "2026-07-28", "x" * 300])
def test_other_protocol_versions_go_to_the_sdks_own_entry(app, mcp_url, version):
    """A version outside the handshake era is the SDK's single-exchange entry's to judge: an
    unknown one is refused in JSON-RPC, never a 500."""
    token = bound_token(app, "mentor1", resource=mcp_url)["access_token"]
    response = requests.post(mcp_url, headers=_headers(token, **{
        "MCP-Protocol-Version": version}), timeout=10, json={
        "jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}})
    assert response.status_code < 500
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["id"] == 3 and ("error" in body or "result" in body)
    if version != "2026-07-28":
        assert "error" in body
