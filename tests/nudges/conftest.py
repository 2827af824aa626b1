"""Fixtures of the nudge tests: the messages double with an account per demo student and
mentor, an app whose nudge bot points at it, and hand-made learning history."""

from __future__ import annotations

import pytest

from idp import outbox
from idp.extensions import db
from idp.history.models import HistoryDay
from idp.nudges import views
from tests.history.rows import put_history, yesterday

from .messages_double import BOT_EMAIL, BOT_KEY, MessagesRealm, MessagesServer

STUDENT_IDS = 1000   # Zulip user id of student n: STUDENT_IDS + n
MENTOR_IDS = 5000


@pytest.fixture
def zulip():
    realm = MessagesRealm()
    for n in range(1, 61):
        realm.add(STUDENT_IDS + n, f"student{n}@example.edu")
    for m in range(1, 3):
        realm.add(MENTOR_IDS + m, f"mentor{m}@example.edu")
    realm.add(MENTOR_IDS + 2, "staff1@example.edu")
    server = MessagesServer(realm)
    yield realm, server
    server.close()


@pytest.fixture
def nudge_env(zulip) -> dict[str, str]:
    _, server = zulip
    return {"ZULIP_URL": server.url, "ZULIP_SCIM_TOKEN": "scim-token-for-tests-0123456789",
            "ZULIP_NUDGE_BOT_EMAIL": BOT_EMAIL, "ZULIP_NUDGE_BOT_API_KEY": BOT_KEY,
            "IDP_NUDGE_QUIET_HOURS": "off", "IDP_NUDGE_RETRY_BASE": "1"}


@pytest.fixture
def napp(app, make_app, nudge_env):
    """An app with the nudge bot configured (``app`` too, so tables are emptied after)."""
    outbox.forget_channels()
    views._PLANS.clear()
    built = make_app(**nudge_env)
    with built.app_context():
        yield built
    outbox.forget_channels()


def mark_taken() -> None:
    db.session.add(HistoryDay(day=yesterday(), taken_at=db.func.now(), students=4,
                              seconds=0.1, origin="daily"))
    db.session.commit()


@pytest.fixture
def findings(napp):
    """Student 3 never started, 2's streak was reset, 4 set a personal best, 1 is steady;
    all are mentor1's; student 5 is inactive in the LMS."""
    put_history(3, 10, attempts=0, last_attempt_day=None, videos_watched=0, exams_taken=0)
    put_history(2, 4, current_streak=[10, 11, 12, 0], best_streak=12, videos_watched=9)
    put_history(4, 3, current_streak=[7, 8, 9], best_streak=[8, 8, 9], videos_watched=9)
    put_history(1, 3, current_streak=[3, 4, 5], best_streak=20, videos_watched=9)
    put_history(5, 4, current_streak=[10, 11, 12, 0], best_streak=12, videos_watched=9)
    mark_taken()
