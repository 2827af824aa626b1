"""Caching and resilience (issue 6, "Caching"): bounded TTL caches, last-known-good copies
served stale with their age when the LMS fails, invalidation by person, and a circuit breaker
that stops hammering a dead database."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import event

from idp import clock
from idp.context.cache import ContextCache
from idp.lms.db import BreakerOpen, LMSBusy, LMSUnavailable, create_lms_engine
from idp.lms.db import LMSBreaker as CircuitBreaker
from idp.lms.directory import Directory
from tests.helpers import client_login

DEAD_LMS = "postgresql://idp_reader@127.0.0.1:9/lms"  # port 9 (discard): connection refused
PROFILE = "/api/v1/lms/students/{}/profile"


# -- cache ------------------------------------------------------------------------------------

def test_ttl_expires_but_last_good_copy_remains():
    cache = ContextCache({"profile": 300}, maxsize=10)
    cache.put("profile", 1, {"name": "a"}, ["student:1"])
    assert cache.fresh("profile", 1).value == {"name": "a"}
    clock.advance(301)
    assert cache.fresh("profile", 1) is None
    stale = cache.last_good("profile", 1, max_age=3600)
    assert stale.value == {"name": "a"} and 300 < stale.age() < 310
    assert cache.last_good("profile", 1, max_age=100) is None


def test_drop_tag_removes_fresh_and_last_good_entries():
    cache = ContextCache({"profile": 300, "mentor_students": 300}, maxsize=10)
    cache.put("profile", 1, "p1", ["student:1", "mentor:1"])
    cache.put("profile", 2, "p2", ["student:2", "mentor:1"])
    cache.put("mentor_students", (1, "name"), "list", ["mentor:1", "student:1", "student:2"])
    assert cache.drop_tag("student:1") == 2
    assert cache.fresh("profile", 1) is None and cache.last_good("profile", 1, 1e9) is None
    assert cache.fresh("mentor_students", (1, "name")) is None
    assert cache.fresh("profile", 2).value == "p2"
    assert cache.drop_tag("mentor:1") == 1 and cache.size()["last_good"] == 0


def test_caches_are_bounded_and_eviction_forgets_tags():
    cache = ContextCache({"profile": 300}, maxsize=5)
    for i in range(100):
        cache.put("profile", i, i, [f"student:{i}", "everyone"])
    sizes = cache.size()
    assert sizes["profile"] == 5 and sizes["last_good"] == 20
    assert len(cache._tags["everyone"]) == 20 and len(cache._key_tags) == 20
    assert "student:0" not in cache._tags


# -- breaker ----------------------------------------------------------------------------------

def failing():
    raise LMSUnavailable("down")


def test_breaker_opens_after_repeated_failures_and_fails_fast():
    breaker = CircuitBreaker(failures=3, cooldown=30)
    calls = []
    for _ in range(3):
        with pytest.raises(LMSUnavailable):
            breaker.call(lambda: calls.append(1) or failing())
    assert breaker.state == "open" and len(calls) == 3
    with pytest.raises(BreakerOpen):
        breaker.call(lambda: calls.append(1))
    assert len(calls) == 3  # not called while open


def test_breaker_half_opens_after_cooldown_then_closes_on_success():
    breaker = CircuitBreaker(failures=1, cooldown=30)
    with pytest.raises(LMSUnavailable):
        breaker.call(failing)
    clock.advance(29)
    assert breaker.state == "open"
    clock.advance(2)
    assert breaker.state == "half_open"
    assert breaker.call(lambda: "ok") == "ok" and breaker.state == "closed"


def test_breaker_reopens_when_the_trial_fails():
    breaker = CircuitBreaker(failures=2, cooldown=30)
    for _ in range(2):
        with pytest.raises(LMSUnavailable):
            breaker.call(failing)
    clock.advance(31)
    with pytest.raises(LMSUnavailable):
        breaker.call(failing)            # the one trial
    assert breaker.state == "open"
    with pytest.raises(BreakerOpen):
        breaker.call(lambda: "ok")       # a fresh cool-down started


def test_breaker_lets_one_trial_through_at_a_time():
    breaker = CircuitBreaker(failures=1, cooldown=5)
    with pytest.raises(LMSUnavailable):
        breaker.call(failing)
    clock.advance(6)
    inner = []

    def trial():
        with pytest.raises(BreakerOpen):  # a second caller during the trial
            breaker.call(lambda: inner.append("second"))
        return "first"

    assert breaker.call(trial) == "first" and inner == []


def test_other_errors_do_not_count_as_lms_failures():
    breaker = CircuitBreaker(failures=1, cooldown=5)
    with pytest.raises(KeyError):
        breaker.call(lambda: {}["x"])
    assert breaker.state == "closed"


# -- the LMS goes down ------------------------------------------------------------------------

@pytest.fixture
def kill_lms(app, service):
    """Point the running app's context service at a dead LMS; count connection attempts."""
    real = service.directory
    dead_engine = create_lms_engine(DEAD_LMS.replace("postgresql:", "postgresql+psycopg2:"),
                                    statement_timeout_ms=1000, connect_timeout=1)
    attempts = []
    event.listen(dead_engine, "do_connect", lambda *a, **k: attempts.append(1))

    liveness = app.extensions["liveness"]

    def kill():
        service.directory = liveness.directory = Directory(dead_engine, real.mapping)
        return attempts

    yield kill
    service.directory = liveness.directory = real


def test_lms_down_answers_from_cache_marked_stale_with_age(client, service_token, kill_lms):
    headers = service_token["headers"]
    fresh = client.get(PROFILE.format(1), headers=headers).json
    assert fresh["stale"] is False and fresh["age_seconds"] == 0
    kill_lms()
    clock.advance(400)  # past the profile TTL (300 s) and the metrics TTL? no: 600 s
    stale = client.get(PROFILE.format(1), headers=headers)
    assert stale.status_code == 200
    body = stale.json
    assert body["stale"] is True and 400 <= body["age_seconds"] < 460
    assert body["student"] == fresh["student"]
    assert body["performance_metrics"] == fresh["performance_metrics"]


def test_lms_down_without_cache_is_503_json(client, service_token, kill_lms):
    kill_lms()
    response = client.get(PROFILE.format(1), headers=service_token["headers"])
    assert response.status_code == 503
    assert response.json["error"] == "temporarily_unavailable"
    assert response.headers["Retry-After"] == "30"


def test_lms_busy_without_cache_is_503_json_come_back_in_a_second(client, service_token,
                                                                   monkeypatch):
    """The bulkhead refused the LMS query (LMS_MAX_CONCURRENT in flight): the LMS answers,
    slowly, so the client is told to retry in a second, not in the breaker's 30."""
    from idp.lms import db as lms_db

    def busy():
        raise LMSBusy("LMS busy: 3 queries in flight")

    monkeypatch.setattr(lms_db.BULKHEAD, "acquire", busy)
    response = client.get(PROFILE.format(1), headers=service_token["headers"])
    assert response.status_code == 503
    assert response.json["error"] == "temporarily_unavailable"
    assert "answering slowly" in response.json["error_description"]
    assert response.headers["Retry-After"] == "1"


def test_stale_copies_have_a_maximum_age(client, service_token, kill_lms, service,
                                        monkeypatch):
    monkeypatch.setattr(service, "settings", dataclasses.replace(service.settings,
                                                                 stale_max_age=400))
    headers = service_token["headers"]
    client.get(PROFILE.format(1), headers=headers)
    kill_lms()
    clock.advance(350)  # past the profile TTL (300 s): served stale
    assert client.get(PROFILE.format(1), headers=headers).json["stale"] is True
    clock.advance(51)   # past the stale maximum age (400 s)
    assert client.get(PROFILE.format(1), headers=headers).status_code == 503


def test_breaker_stops_hammering_a_dead_lms(client, service_token, kill_lms, service):
    headers = service_token["headers"]
    attempts = kill_lms()
    threshold = service.breaker.threshold
    for _ in range(threshold + 5):
        assert client.get(PROFILE.format(1), headers=headers).status_code == 503
    assert service.breaker.state == "open"
    # connect attempts (with pool_pre_ping a failed checkout may retry once) stop at the
    # threshold: the requests after it never reach the database
    tried = len(attempts)
    assert threshold <= tried <= 2 * threshold
    for _ in range(10):
        client.get(PROFILE.format(1), headers=headers)
    assert len(attempts) == tried
    clock.advance(service.breaker.cooldown + 1)
    client.get(PROFILE.format(1), headers=headers)  # the half-open trial reaches the LMS
    assert len(attempts) > tried and service.breaker.state == "open"


def test_signed_in_mentor_is_served_stale_when_lms_is_down(client, kill_lms):
    client_login(client, "mentor1")
    assert client.get(PROFILE.format(1)).json["stale"] is False
    kill_lms()
    body = client.get(PROFILE.format(1)).json
    assert body["stale"] is True


def test_app_started_with_a_dead_lms_answers_503(make_app, client, service_token):
    dead = make_app(LMS_DATABASE_URL=DEAD_LMS)
    dead_client = dead.test_client()
    response = dead_client.get(PROFILE.format(1), headers=service_token["headers"])
    assert response.status_code == 503 and response.json["error"] == "temporarily_unavailable"
    client_login(client, "mentor1")  # same bridge database and secret: the session is valid
    dead_client.set_cookie("idp_session", client.get_cookie("idp_session").value)
    response = dead_client.get(PROFILE.format(1))
    assert response.status_code == 503 and response.json["error"] == "temporarily_unavailable"
    page = dead_client.get("/mentor/students/1")
    assert page.status_code == 503 and "Temporarily unavailable" in page.get_data(as_text=True)


# -- invalidation -------------------------------------------------------------------------

def test_person_changed_drops_cached_context(client, service_token, lms_admin):
    from idp.events import person_changed

    headers = service_token["headers"]
    before = client.get(PROFILE.format(1), headers=headers).json
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET display_name = 'Renamed Person' WHERE id = 1")
    cached = client.get(PROFILE.format(1), headers=headers).json
    assert cached["student"]["display_name"] == before["student"]["display_name"]
    person_changed.send("provisioning", subject="student:1")
    after = client.get(PROFILE.format(1), headers=headers).json
    assert after["student"]["display_name"] == "Renamed Person"


def test_deprovisioned_person_leaves_no_stale_copy(app, client, service_token, kill_lms):
    from idp import revocation
    from idp.extensions import db

    headers = service_token["headers"]
    client.get(PROFILE.format(1), headers=headers)
    with app.app_context():
        revocation.revoke_person(db.session, "student:1", "test")
        db.session.commit()
        revocation.drop_from_caches("student:1")  # what each process's listener does
    kill_lms()
    assert client.get(PROFILE.format(1), headers=headers).status_code == 503


def test_mentor_change_drops_their_list(client, service_token, service):
    from idp.events import person_changed

    headers = service_token["headers"]
    client.get("/api/v1/lms/mentors/1/students", headers=headers)
    assert service.cache.size()["mentor_students"] == 1
    person_changed.send("provisioning", subject="student:1")  # one of mentor 1's students
    assert service.cache.size()["mentor_students"] == 0


def test_missing_students_are_cached_like_existing_ones(client, service_token, service,
                                                        lms_facts, monkeypatch):
    """Repeated probes of a missing id are answered from cache, as a forbidden one would be:
    the timing does not reveal which ids exist, and probing does not hammer the LMS."""
    missing = lms_facts["max_student"] + 1000
    headers = service_token["headers"]
    assert client.get(PROFILE.format(missing), headers=headers).status_code == 404
    assert service.cache.fresh("owner", missing).value == {"id": missing, "missing": True}
    lookups = []
    real = service.breaker.call
    monkeypatch.setattr(service.breaker, "call", lambda fn: lookups.append(fn) or real(fn))
    assert client.get(PROFILE.format(missing), headers=headers).status_code == 404
    assert lookups == []
