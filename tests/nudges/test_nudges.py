"""Nudges end to end against the messages double: plan, run, delivery, digests; opt-out,
mute, cap, guard held then approved; quiet hours with a moved clock; Zulip's refusals and
429; old servers' "private" type; templates overridden and checked."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from idp import clock
from idp.config import ConfigError
from idp.extensions import db
from idp.lms.directory import get_directory
from idp.models import AuditEvent
from idp.nudges.delivery import deliver
from idp.nudges.models import Nudge, NudgeMute, NudgePreference, NudgeRun
from idp.nudges.runs import plan_day, run_day
from idp.nudges.templates import load_templates, markdown_text
from idp.provisioning.models import LedgerAccount
from tests.history.rows import yesterday

from .conftest import MENTOR_IDS, STUDENT_IDS


def ext(app):
    return app.extensions["nudges"]


def tz(app):
    return app.extensions["history"].settings.timezone


def run(app):
    return run_day(ext(app), yesterday(), get_directory().iter_people())


def send_all(app, limit: int = 100):
    return deliver(ext(app).settings, ext(app).sender, tz(app), limit=limit)


def by_recipient() -> dict[str, Nudge]:
    return {n.recipient: n for n in db.session.scalars(select(Nudge))}


def test_plan_prints_who_gets_what_and_why_and_writes_nothing(napp, findings):
    out = napp.test_cli_runner().invoke(args=["nudge", "plan"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any("student:3" in line and "course_not_started" in line for line in lines)
    assert any("student:2" in line and "streak_reset" in line and "reset" in line
               for line in lines)
    assert any("student:4" in line and "personal_best" in line for line in lines)
    assert any("mentor:1" in line and "digest" in line for line in lines)
    assert not any("student:5" in line for line in lines)  # inactive in the LMS
    assert not any("student:1 " in line for line in lines)  # nothing to say
    assert "3 student nudges, 1 digests, 0 suppressed" in out.output
    assert db.session.scalar(select(func.count()).select_from(Nudge)) == 0


def test_run_delivers_direct_messages_and_a_digest(napp, findings, zulip):
    realm, _ = zulip
    db.session.add(LedgerAccount(subject="student:2", zulip_user_id=str(STUDENT_IDS + 2),
                                 email="student2@example.edu", full_name="x", role="member",
                                 groups=[], active=True, origin="created",
                                 adopted_at=clock.now()))
    db.session.commit()
    first = run(napp)
    assert first.status == "released" and (first.nudges, first.digests) == (3, 1)
    report = send_all(napp)
    assert report.delivered == 4 and report.failed == 0, [
        (n.recipient, n.status, n.last_error) for n in by_recipient().values()]
    to_two = realm.to(STUDENT_IDS + 2)
    assert len(to_two) == 1 and to_two[0]["type"] == "direct"
    assert "Your streak of 12 days was reset" in to_two[0]["content"]
    assert f"{napp.config['IDP'].issuer}/me" in to_two[0]["content"]
    digest = realm.to(MENTOR_IDS + 1)
    assert len(digest) == 1
    text = digest[0]["content"]
    assert "**2 of your students need attention**" in text
    assert text.index("/mentor/students/3") < text.index("/mentor/students/2")  # ranked
    assert "/mentor?finding=needs_attention" in text
    assert all(n.status == "sent" and n.zulip_message_id for n in by_recipient().values())
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "nudge_sent"))
    assert len(audit.all()) == 4
    # the same day again, and another day of the same week: nothing new, nothing repeated
    assert run(napp) is None
    plan = plan_day(ext(napp), yesterday(), get_directory().iter_people())
    assert plan.items == [] and plan.duplicates == 4
    assert send_all(napp).delivered == 0 and len(realm.messages) == 4


def test_opt_out_and_mute(napp, findings, zulip):
    realm, _ = zulip
    db.session.add(NudgePreference(subject="student:2", nudges_off=True,
                                   updated_at=clock.now()))
    db.session.add(NudgeMute(mentor_id=1, student_id=3, created_at=clock.now()))
    db.session.commit()
    run(napp)
    nudges = by_recipient()
    assert (nudges["student:2"].status, nudges["student:2"].cause) == ("suppressed",
                                                                       "opted_out")
    assert (nudges["student:3"].status, nudges["student:3"].cause) == ("suppressed", "muted")
    send_all(napp)
    assert realm.to(STUDENT_IDS + 2) == [] and realm.to(STUDENT_IDS + 3) == []
    digest = realm.to(MENTOR_IDS + 1)[0]["content"]
    assert "/mentor/students/3" not in digest and "/mentor/students/2" in digest
    assert len(realm.to(STUDENT_IDS + 4)) == 1


def test_per_person_cap(napp, findings):
    for week in (1, 2):  # two nudges in the last 7 days already
        db.session.add(Nudge(run_id=0, kind="student", recipient="student:2",
                             email="student2@example.edu", rule="no_activity",
                             period=f"old-{week}", idempotency_key=f"old:{week}",
                             status="sent", reason="r", content="c", attempts=1,
                             created_at=clock.now() - dt.timedelta(days=week)))
    db.session.commit()
    run(napp)
    assert by_recipient()["student:2"].cause == "cap"


def test_guard_holds_a_run_until_approved(make_app, app, nudge_env, zulip, findings):
    realm, _ = zulip
    strict = make_app(**nudge_env, IDP_NUDGE_GUARD_PERCENT="1", IDP_NUDGE_GUARD_MINIMUM="0")
    with strict.app_context():
        held = run(strict)
        assert held.status == "held" and "nudge approve" in held.note
        assert send_all(strict).delivered == 0 and realm.messages == []
        out = strict.test_cli_runner().invoke(args=["nudge", "approve", str(held.id)])
        assert out.exit_code == 0 and "4 nudges released" in out.output
        assert send_all(strict).delivered == 4
        again = strict.test_cli_runner().invoke(args=["nudge", "approve", str(held.id)])
        assert again.exit_code == 1 and "not held" in again.output
        missing = strict.test_cli_runner().invoke(args=["nudge", "approve", "999"])
        assert missing.exit_code == 1 and "no nudge run 999" in missing.output
        assert db.session.get(NudgeRun, held.id).status == "approved"


def test_quiet_hours_with_a_moved_clock(make_app, app, nudge_env, zulip, findings):
    realm, _ = zulip
    quiet = make_app(**{**nudge_env, "IDP_NUDGE_QUIET_HOURS": "21:00-08:00",
                        "IDP_SCHOOL_TIMEZONE": "Asia/Kolkata"})
    with quiet.app_context():
        now = clock.now()
        # 22:30 in Kolkata (UTC+5:30) today
        local_evening = dt.datetime.combine(now.date(), dt.time(17, 0), dt.UTC)
        clock.advance((local_evening - now).total_seconds())
        day = yesterday(tz(quiet))
        run_day(ext(quiet), day, get_directory().iter_people())
        assert send_all(quiet).delivered == 0 and realm.messages == []
        clock.advance(9.5 * 3600)  # 08:00 the next morning in Kolkata
        assert send_all(quiet).delivered >= 1


@pytest.mark.parametrize("trouble,cause", [("unknown", "recipient_refused"),
                                           ("deactivated", "recipient_refused"),
                                           ("forbidden", "bot_forbidden")])
def test_refusals_fail_that_nudge_only(napp, findings, zulip, trouble, cause):
    realm, _ = zulip
    if trouble == "unknown":
        del realm.users[STUDENT_IDS + 2]
    elif trouble == "deactivated":
        realm.users[STUDENT_IDS + 2].active = False
    else:
        realm.forbidden.add(STUDENT_IDS + 2)
    run(napp)
    report = send_all(napp)
    assert report.failed == 1 and report.delivered == 3
    nudge = by_recipient()["student:2"]
    assert (nudge.status, nudge.cause) == ("failed", cause)
    assert send_all(napp).touched == 0  # never retried


def test_rate_limit_honours_retry_after_and_sends_once(napp, findings, zulip):
    realm, _ = zulip
    realm.rate_limit, realm.retry_after = 2, 30
    run(napp)
    first = send_all(napp)
    assert first.delivered == 2 and first.retried == 1 and first.blocked
    assert send_all(napp).touched == 0  # paused: Retry-After not yet over
    clock.advance(61)  # the double's window and the pause are over
    # after a pause the outbox sends one trial, then the backlog at the next pass
    assert sum(send_all(napp).delivered for _ in range(3)) == 2
    assert len(realm.messages) == 4
    assert sorted(m["to"] for m in realm.messages) == sorted(
        [STUDENT_IDS + 2, STUDENT_IDS + 3, STUDENT_IDS + 4, MENTOR_IDS + 1])


def test_server_errors_retry_with_backoff(napp, findings, zulip):
    realm, _ = zulip
    realm.answer_500 = 1
    run(napp)
    assert send_all(napp).retried == 1
    clock.advance(5)
    assert send_all(napp).delivered == 4 and len(realm.messages) == 4


def test_old_servers_get_private_messages(napp, findings, zulip):
    realm, _ = zulip
    realm.feature_level = 100
    run(napp)
    assert send_all(napp).delivered == 4
    assert {m["type"] for m in realm.messages} == {"private"}


def test_templates_can_be_overridden_and_are_checked(tmp_path):
    (tmp_path / "streak_reset.md").write_text("Hey $first_name: $text ($me_url)")
    templates = load_templates(str(tmp_path))
    assert templates["streak_reset"].template.startswith("Hey $first_name")
    (tmp_path / "no_activity.md").write_text("Hi $password")
    with pytest.raises(ConfigError, match="unknown placeholders"):
        load_templates(str(tmp_path))


def test_lms_text_cannot_format_the_message():
    assert markdown_text("*Ana* [x](http://evil) @**all**") == \
        "\\*Ana\\* \\[x\\]\\(http\\://evil\\) \\@\\*\\*all\\*\\*"


def _sample(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(
                f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_outcomes_suppressions_and_digests(napp, findings, zulip):
    realm, _ = zulip
    realm.forbidden.add(STUDENT_IDS + 4)
    db.session.add(NudgePreference(subject="student:2", nudges_off=True,
                                   updated_at=clock.now()))
    db.session.commit()
    before = napp.test_client().get("/metrics").get_data(as_text=True)
    run(napp)
    send_all(napp)
    after = napp.test_client().get("/metrics").get_data(as_text=True)

    def grew(name: str, **labels) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert grew("idp_nudges_suppressed_total", cause="opted_out") == 1
    assert grew("idp_nudges_delivered_total", kind="student", rule="course_not_started",
                outcome="sent") == 1
    assert grew("idp_nudges_delivered_total", kind="student", rule="personal_best",
                outcome="failed") == 1
    assert grew("idp_nudge_digests_sent_total") == 1
    assert grew("idp_nudges_planned_total", kind="digest", rule="digest") == 1


def test_worker_step_snapshots_plans_and_delivers_once(napp, zulip):
    """One step of ``nudge run`` on the demo LMS: yesterday's snapshot, its run, delivery;
    a second step does nothing new."""
    from idp.history.models import HistoryDay
    from idp.nudges.cli import _step

    realm, _ = zulip
    _step(ext(napp))
    assert db.session.get(HistoryDay, yesterday()) is not None
    runs = db.session.scalars(select(NudgeRun)).all()
    assert len(runs) == 1 and runs[0].day == yesterday()
    sent = len(realm.messages)
    assert sent == db.session.scalar(select(func.count()).select_from(Nudge)
                                     .where(Nudge.status == "sent"))
    _step(ext(napp))
    assert len(db.session.scalars(select(NudgeRun)).all()) == 1
    assert len(realm.messages) == sent
