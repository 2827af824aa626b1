"""The liveness service: one answer to "is X active", a short cache, the LMS breaker, and the
stated policies: fail closed for sign-in and tokens, stale-on-error for context reads, the same
for a token holder and a session holder."""

from __future__ import annotations

import pytest

from idp import clock
from idp.liveness import LivenessService, LivenessSettings, Policy
from idp.lms.db import BreakerOpen, LMSBreaker, LMSUnavailable, create_lms_engine
from idp.lms.directory import Directory
from tests.helpers import client_login, stored_bearer

DEAD_LMS = "postgresql+psycopg2://idp_reader@127.0.0.1:9/lms"
PROFILE = "/api/v1/lms/students/{}/profile"


@pytest.fixture
def dead_directory(app):
    real = app.extensions["lms_directory"]
    engine = create_lms_engine(DEAD_LMS, statement_timeout_ms=1000, connect_timeout=1)
    yield Directory(engine, real.mapping, breaker=LMSBreaker(failures=2, cooldown=30))
    engine.dispose()


@pytest.fixture
def lms_down(app, dead_directory):
    """Both LMS readers of the running app (liveness and context) see a dead LMS."""
    live = app.extensions["liveness"]
    service = app.extensions["context"].service
    real = live.directory

    def kill():
        live.directory = service.directory = dead_directory

    yield kill
    live.directory = service.directory = real
    for reset in (live.forget_all, live.breaker.reset, service.cache.clear,
                  service.breaker.reset):
        reset()


def test_short_cache_then_the_lms_again(app, lms_admin):
    with app.app_context():
        live = LivenessService(app.extensions["lms_directory"], LivenessSettings(
            cache_seconds=2.0))
        assert live.active_person("student:1") is not None
        with lms_admin.cursor() as cur:
            cur.execute("UPDATE students SET is_active = false WHERE id = 1")
        assert live.active_person("student:1") is not None  # cached for 2 s
        clock.advance(2.5)
        assert live.active_person("student:1") is None
        assert live.active_person("student:999999") is None


def test_fail_closed_raises_stale_ok_serves_last_answer(app, dead_directory):
    with app.app_context():
        live = LivenessService(app.extensions["lms_directory"], LivenessSettings(
            cache_seconds=0.0, stale_max_age=60))
        person = live.active_person("mentor:1")
        live.directory = dead_directory
        with pytest.raises(LMSUnavailable):
            live.check("mentor:1", Policy.FAIL_CLOSED)
        stale = live.check("mentor:1", Policy.STALE_OK)
        assert stale.stale and stale.person == person
        with pytest.raises(LMSUnavailable):  # never known: nothing to stand in
            live.check("mentor:2", Policy.STALE_OK)
        assert live.breaker.state == "open"
        with pytest.raises(BreakerOpen):  # open: the LMS is not even asked
            live.check("mentor:1", Policy.FAIL_CLOSED)
        clock.advance(61)
        with pytest.raises(LMSUnavailable):  # past the stale maximum age
            live.check("mentor:1", Policy.STALE_OK)


def test_token_holder_and_session_holder_both_get_stale_context(app, client, lms_down):
    headers = stored_bearer(app, "lms.context", "mentor:1")
    assert client.get(PROFILE.format(1), headers=headers).json["stale"] is False
    browser = app.test_client()
    client_login(browser, "mentor1")
    assert browser.get(PROFILE.format(1)).json["stale"] is False
    lms_down()
    by_token = client.get(PROFILE.format(1), headers=headers)
    by_session = browser.get(PROFILE.format(1))
    assert by_token.status_code == by_session.status_code == 200
    assert by_token.json["stale"] is True and by_session.json["stale"] is True
