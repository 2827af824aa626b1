"""One LMS, one circuit breaker: the LMS adapter's (``Directory.breaker``, ``idp.lms.db``).

An outage seen through a context read opens the breaker the liveness service sees, and the
other way round; recovery seen by one is seen by the other; ``/metrics`` names one breaker.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event

from idp import clock
from idp.config import ConfigError
from idp.liveness import Policy
from idp.lms.db import BreakerOpen, LMSBreaker, LMSUnavailable, create_lms_engine
from idp.lms.directory import Directory

DEAD_LMS = "postgresql+psycopg2://idp_reader@127.0.0.1:9/lms"  # port 9: connection refused
PROFILE = "/api/v1/lms/students/{}/profile"


@pytest.fixture
def outage(app):
    """Swap the app's LMS adapter for one whose database is down (``down()``) or back
    (``up()``), keeping one breaker of threshold 2 across both, as one LMS has; counts the
    connection attempts made to the dead database."""
    live = app.extensions["liveness"]
    service = app.extensions["context"].service
    real = app.extensions["lms_directory"]
    breaker = LMSBreaker(failures=2, cooldown=30)
    dead_engine = create_lms_engine(DEAD_LMS, statement_timeout_ms=1000, connect_timeout=1)
    attempts: list[int] = []
    event.listen(dead_engine, "do_connect", lambda *a, **k: attempts.append(1))
    dead = Directory(dead_engine, real.mapping, breaker=breaker)
    alive = Directory(real.engine, real.mapping, breaker=breaker)

    def use(directory: Directory) -> None:
        live.directory = service.directory = app.extensions["lms_directory"] = directory
        live.forget_all()
        service.cache.clear()

    class Outage:
        def down(self):
            use(dead)

        def up(self):
            use(alive)

    Outage.breaker, Outage.attempts = breaker, attempts
    yield Outage()
    live.directory = service.directory = app.extensions["lms_directory"] = real
    live.forget_all()
    service.cache.clear()
    dead_engine.dispose()


def test_context_and_liveness_use_the_lms_adapters_breaker(app):
    directory = app.extensions["lms_directory"]
    assert app.extensions["liveness"].breaker is directory.breaker
    assert app.extensions["context"].service.breaker is directory.breaker


def test_an_outage_seen_by_context_reads_opens_the_breaker_liveness_sees(app, outage):
    outage.down()
    service = app.extensions["context"].service
    with app.app_context():
        for _ in range(2):
            with pytest.raises(LMSUnavailable):
                service.profile(1)
        assert outage.breaker.state == "open"
        tried = len(outage.attempts)
        with pytest.raises(BreakerOpen):  # liveness does not even ask the LMS
            app.extensions["liveness"].check("mentor:1", Policy.FAIL_CLOSED)
        assert len(outage.attempts) == tried


def test_an_outage_seen_by_liveness_opens_the_breaker_context_reads_see(app, outage):
    outage.down()
    live = app.extensions["liveness"]
    with app.app_context():
        for _ in range(2):
            with pytest.raises(LMSUnavailable):
                live.check("mentor:1", Policy.FAIL_CLOSED)
        assert outage.breaker.state == "open"
        tried = len(outage.attempts)
        with pytest.raises(BreakerOpen):
            app.extensions["context"].service.profile(1)
        assert len(outage.attempts) == tried


def test_recovery_seen_by_one_is_seen_by_the_other(app, outage):
    outage.down()
    live = app.extensions["liveness"]
    service = app.extensions["context"].service
    with app.app_context():
        for _ in range(2):
            with pytest.raises(LMSUnavailable):
                live.check("mentor:1")
        outage.up()
        clock.advance(31)  # past the cool-down: one trial goes through
        assert service.profile(1) is not None  # the context read's trial closes it ...
        assert outage.breaker.state == "closed"
        assert live.check("mentor:1").person is not None  # ... for liveness too


def test_metrics_name_one_lms_breaker(app, client, outage):
    outage.down()
    with app.app_context():
        for _ in range(2):
            with pytest.raises(LMSUnavailable):
                app.extensions["liveness"].check("mentor:1")
    text = client.get("/metrics").get_data(as_text=True)
    states = [line for line in text.splitlines()
              if "breaker_state" in line and not line.startswith("#")
              and "zulip" not in line and "channel" not in line]
    assert states == ["idp_lms_breaker_state 2.0"], states


def test_the_503_retry_after_is_the_breakers_cool_down(app, client, outage):
    from tests.helpers import stored_bearer

    headers = stored_bearer(app, "lms.context")
    outage.down()
    response = client.get(PROFILE.format(1), headers=headers)
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"


@pytest.mark.parametrize("name", ["IDP_CONTEXT_BREAKER_FAILURES",
                                  "IDP_CONTEXT_BREAKER_COOLDOWN"])
def test_the_context_breakers_old_settings_say_where_they_went(make_app, name):
    with pytest.raises(ConfigError) as error:
        make_app(**{name: "5"})
    message = str(error.value)
    assert message.startswith(name) and "IDP_LMS_BREAKER_" in message and "\n" not in message


@pytest.mark.parametrize("name,value", [("IDP_LMS_BREAKER_FAILURES", "0"),
                                        ("IDP_LMS_BREAKER_COOLDOWN", "soon")])
def test_bad_breaker_settings_name_the_variable(make_app, name, value):
    with pytest.raises(ConfigError) as error:
        make_app(**{name: value})
    assert str(error.value).startswith(name)
