"""The shared (Redis) level of the context cache: Debian's redis-server, started here on a
loopback port in a temporary folder. Two caches stand for two workers (or replicas): each has
its own in-process store and its own Redis connections, as separate processes would."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time

import pytest

from idp import clock
from idp.config import ConfigError
from idp.context import queries
from idp.context.cache import ContextCache
from idp.context.settings import load_context_settings
from idp.context.shared import SharedLevel
from tests.helpers import free_port, wait_for

TTLS = {"profile": 300, "batch": 1800, "viewer": 300}


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A private redis-server (no persistence) for the session."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: scripts/test installs Debian's redis-server")
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(folder), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    wait_for(lambda: _pings(client), 10, "redis-server to start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def _pings(client) -> bool:
    import redis

    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture
def workers(redis_url):
    """Two caches over one Redis (own prefix per test)."""
    prefix = f"test:{time.monotonic_ns()}"
    made = [ContextCache(TTLS, 100, SharedLevel(redis_url, TTLS, prefix=prefix))
            for _ in range(2)]
    yield made
    for cache in made:
        cache.shared.clear()
        cache.shared.close()
    clock.reset()


def test_an_answer_read_by_one_worker_is_served_to_the_other(workers):
    a, b = workers
    batch = {"id": 3, "name": "B3", "ranks": {41: 12.5, 42: 99.0}, "size": 2}
    stored = a.put("batch", 3, batch, ["batch:3"])
    found = b.fresh("batch", 3)
    assert found is not None
    assert found.value == batch  # integer keys survive the trip
    assert found.fetched_at == stored.fetched_at  # the same age wherever it is served
    assert b.fresh("profile", 3) is None


def test_dropping_a_tag_reaches_every_worker(workers):
    a, b = workers
    a.put("profile", 7, {"student": {"id": 7}}, ["student:7", "mentor:1"])
    assert b.fresh("profile", 7) is not None  # b now holds its own in-process copy
    a.drop_tag("mentor:1")
    wait_for(lambda: b.size()["profile"] == 0, 5, "b to drop the entry")
    assert b.fresh("profile", 7) is None and a.fresh("profile", 7) is None


def test_a_copy_from_the_shared_level_keeps_its_original_expiry(workers):
    a, b = workers
    a.put("profile", 8, {"student": {"id": 8}}, ["student:8"])
    clock.advance(200)
    assert b.fresh("profile", 8) is not None  # copied in with 100 s left, not 300
    clock.advance(150)
    assert b.fresh("profile", 8) is None


def test_viewer_entries_are_never_shared(workers):
    a, b = workers
    a.put("viewer", "student:1", object(), ["student:1"])
    assert b.fresh("viewer", "student:1") is None


def test_hostile_or_broken_shared_entries_are_misses(workers, redis_url):
    import redis

    a, b = workers
    a.put("profile", 9, {"ok": True}, ["student:9"])
    raw = redis.Redis.from_url(redis_url)
    key = a.shared._key("profile", 9)
    for garbage in (b"not json", b'{"v": 1}', b"\x80\x04pickle", b'{"v":1,"t":"x","g":[]}'):
        raw.set(key, garbage)
        assert b.fresh("profile", 9) is None


def test_unreachable_redis_falls_back_with_one_log_line(caplog):
    dead = SharedLevel(f"redis://127.0.0.1:{free_port()}/0", TTLS, prefix="dead")
    cache = ContextCache(TTLS, 100, dead)
    with caplog.at_level(logging.WARNING, logger="idp.context.shared"):
        cache.put("profile", 1, {"x": 1}, ["student:1"])
        assert cache.fresh("profile", 1).value == {"x": 1}  # in-process still works
        assert cache.fresh("profile", 2) is None
        cache.drop_tag("student:1")
        assert cache.fresh("profile", 1) is None
    lines = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(lines) == 1
    dead.close()


def test_context_api_answers_when_redis_is_down(make_app, service_token):
    app = make_app(IDP_CONTEXT_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    client = app.test_client()
    for _ in range(2):
        response = client.get("/api/v1/lms/students/1/profile",
                              headers=service_token["headers"])
        assert response.status_code == 200
        assert response.json["student"]["id"] == 1


def test_replicas_ask_the_lms_once_and_forget_a_person_everywhere(make_app, redis_url,
                                                                  service_token, monkeypatch):
    first = make_app(IDP_CONTEXT_REDIS_URL=redis_url)
    second = make_app(IDP_CONTEXT_REDIS_URL=redis_url)
    for application in (first, second):
        application.extensions["context"].service.cache.clear()
    calls = []
    original = queries.fetch_student
    monkeypatch.setattr(queries, "fetch_student",
                        lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    path = "/api/v1/lms/students/2/profile"
    one = first.test_client().get(path, headers=service_token["headers"])
    two = second.test_client().get(path, headers=service_token["headers"])
    assert one.status_code == two.status_code == 200
    assert one.json["student"] == two.json["student"] and calls == [2]
    # provisioning, in one worker, sees the student change: every worker forgets them
    first.extensions["context"].service.cache.drop_tag("student:2")
    cache = second.extensions["context"].service.cache
    wait_for(lambda: cache.fresh("profile", 2) is None, 5, "the entry to expire")
    assert second.test_client().get(path, headers=service_token["headers"]).status_code == 200
    assert calls == [2, 2]


@pytest.mark.parametrize("value", ["http://cache:6379", "redis//x", "javascript:alert(1)",
                                   "redis://" + "x" * 3000])
def test_bad_redis_url_is_a_config_error(value):
    with pytest.raises(ConfigError, match="IDP_CONTEXT_REDIS_URL"):
        load_context_settings({"IDP_CONTEXT_REDIS_URL": value})


def test_no_redis_url_means_in_process_only():
    assert load_context_settings({}).redis_url is None
