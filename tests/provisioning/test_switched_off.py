"""A feature this Zulip lacks (SCIM ``/Groups`` before 11.0): its whole pending backlog is
settled as ``unsupported`` in one step, never in delivery rounds that take round trips from
deactivations; it is shown to operators; and it is queued again when Zulip is upgraded."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from idp import outbox as outbox_api
from idp.extensions import db
from idp.provisioning.actions import CHANNEL, Kind
from idp.provisioning.runs import deprovision_now

from .conftest import SCIM_TOKEN, adopt_all, ledger, outbox, provisioner

BACKLOG = 5000


@contextmanager
def statements():
    """The SQL statements the bridge sends meanwhile (their text)."""
    sent: list[str] = []

    def count(conn, cursor, statement, *_):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _app_on(make_app, zulip, realm, version: str):
    realm.version = version
    return make_app(ZULIP_URL=zulip.url, ZULIP_SCIM_TOKEN=SCIM_TOKEN,
                    PROVISION_RETRY_BASE="0.05", PROVISION_RETRY_MAX="0.2")


def _group_backlog(subjects: list[str], count: int) -> None:
    """``count`` pending group changes, spread over ``subjects`` (as a run would plan them)."""
    messages = [outbox_api.Message(
        channel=CHANNEL, kind=Kind.GROUPS.outbox_kind, ordering_key=subjects[n % len(subjects)],
        idempotency_key=f"test-groups:{n}", priority=outbox_api.Priority.PROFILE,
        payload={"add": ["batch-2"] if n % 2 else [], "remove": [] if n % 2 else ["batch-2"],
                 "groups": ["batch-2"] if n % 2 else []}) for n in range(count)]
    outbox_api.enqueue_many(db.session, messages)
    db.session.commit()


def test_deactivation_behind_5000_unsupported_group_changes_goes_in_the_first_round(
        app, make_app, zulip, realm):
    zapp = _app_on(make_app, zulip, realm, "10.4")
    with zapp.app_context():
        accounts = adopt_all(zapp, realm)
        worker = provisioner(zapp)
        worker.detect_capabilities()
        assert worker.capabilities.allows("groups") is False
        subjects = sorted(s for s in accounts if s.startswith("student:"))
        _group_backlog(subjects, BACKLOG)
        # enqueued after (behind) every group change, of a person who has some of them
        assert deprovision_now(db.session, subjects[0], lms_confirms_gone=True)
        realm.requests.clear()
        with statements() as sent:
            report = worker.deliver_all(max_rounds=1)
        # one round: the deactivation went out and the backlog was settled, in one step
        assert report.delivered == 1 and report.unsupported == BACKLOG
        assert realm.effects_of("deactivate") == [("deactivate", accounts[subjects[0]].id)]
        assert not [r for r in realm.requests if "/Groups" in r[2]]
        settles = [s for s in sent if s.lstrip().upper().startswith("UPDATE OUTBOX_MESSAGES")
                   and "status" in s and "kind IN" in s]
        assert len(settles) == 1  # the whole backlog: one statement
        assert len(sent) < 20  # not one statement (or round) per group change
        assert not outbox("pending")
        unsupported = [m for m in outbox("unsupported")
                       if m.idempotency_key.startswith("test-groups:")]
        assert len(unsupported) == BACKLOG
        assert all("11.0" in m.last_error for m in unsupported)
        # never retried in a loop: the next rounds send nothing and change nothing
        before = [(m.id, m.status, m.attempts, m.last_error) for m in outbox()]
        for _ in range(3):
            assert worker.deliver_all().touched == 0
        db.session.expire_all()
        assert [(m.id, m.status, m.attempts, m.last_error) for m in outbox()] == before
        assert not [r for r in realm.requests if "/Groups" in r[2]]


def test_backlog_of_a_feature_switched_off_at_delivery_is_settled_at_once(
        app, make_app, zulip, realm):
    """Zulip claims 11.x but answers 501 on /Groups: the first refusal switches groups off and
    settles the rest of the backlog in the same step; no other group request is made."""
    zapp = _app_on(make_app, zulip, realm, "11.2")
    with zapp.app_context():
        accounts = adopt_all(zapp, realm)
        worker = provisioner(zapp)
        worker.detect_capabilities()
        realm.version = "10.4"  # the double now answers 501 on /Groups; detection not rerun
        subjects = sorted(s for s in accounts if s.startswith("student:"))
        _group_backlog(subjects, 300)
        realm.requests.clear()
        rounds = 0
        while outbox("pending"):
            rounds += 1
            assert rounds <= 1, "settled round by round"
            worker.deliver_all(max_rounds=1)
        group_requests = [r for r in realm.requests if "/Groups" in r[2]]
        assert len(group_requests) == 1  # asked once (501), then never again
        settled = [m for m in outbox("unsupported") if m.idempotency_key.startswith("test-")]
        assert len(settled) == 300 and not outbox("failed")
        assert worker.capabilities.allows("groups") is False


def test_status_shows_the_unsupported_actions_and_why(app, make_app, zulip, realm):
    zapp = _app_on(make_app, zulip, realm, "10.4")
    with zapp.app_context():
        accounts = adopt_all(zapp, realm)
        worker = provisioner(zapp)
        _group_backlog(sorted(s for s in accounts if s.startswith("student:")), 30)
        worker.deliver_all()
    result = zapp.test_cli_runner().invoke(args=["provision", "status"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "SWITCHED OFF: groups: Zulip 10.4 has no SCIM /Groups" in out
    assert out.count(" groups: groups: Zulip 10.4 has no SCIM /Groups") >= 10  # failures list


def test_upgraded_zulip_gets_the_settled_group_changes_in_order(app, make_app, zulip, realm,
                                                                lms_admin):
    zapp = _app_on(make_app, zulip, realm, "10.4")
    with zapp.app_context():
        accounts = adopt_all(zapp, realm)
        realm.effects.clear()
        with lms_admin.cursor() as cur:  # a real run: group changes for thirty people
            cur.execute("UPDATE students SET batch_id = CASE WHEN batch_id = 1 THEN 2 ELSE 1 "
                        "END WHERE id BETWEEN 1 AND 30")
        worker = provisioner(zapp)
        worker.poll()
        earlier = {m.id for m in outbox("unsupported")}  # adoption's, on 10.4 too
        worker.deliver_all()
        settled = outbox("unsupported")
        assert {m.id for m in settled} - earlier and not outbox("pending")
        assert not realm.effects_of("group_add") and not realm.effects_of("group_remove")
        # Zulip is upgraded; the next detection (start, or every interval) sees it
        realm.version = "11.2"
        worker.detect_capabilities()
        assert worker.capabilities.allows("groups")
        requeued = outbox("pending")
        assert [m.id for m in requeued] == [m.id for m in settled]  # same order, same keys
        assert all(m.attempts == 0 and "re-planned" in m.last_error for m in requeued)
        worker.deliver_all()
        assert not outbox("pending") and not outbox("unsupported") and not outbox("failed")
        for subject in {m.subject for m in settled}:
            assert realm.groups_of(accounts[subject].id) == set(ledger(subject).groups)
        changes = realm.effects_of("group_add") + realm.effects_of("group_remove")
        assert len(changes) == len(set(changes)) >= len(settled)  # each applied once
        # a later detection of the same version re-plans nothing
        worker.detect_capabilities()
        assert not outbox("pending")


def test_people_created_on_a_zulip_without_groups_get_them_after_the_upgrade(
        app, make_app, zulip, realm):
    realm.version = "10.4"
    creating = make_app(ZULIP_URL=zulip.url, ZULIP_SCIM_TOKEN=SCIM_TOKEN,
                        PROVISION_CREATE="true")
    with creating.app_context():
        for name in ("students", "mentors", "staff"):
            realm.add_group(name)
        worker = provisioner(creating)
        with statements() as sent:
            worker.apply_once()
        reads = [s for s in sent if s.lstrip().startswith("SELECT outbox_messages.id")]
        assert len(reads) <= 4  # the deferred group changes did not take a round each
        created = realm.effects_of("create")
        assert created and not realm.effects_of("group_add")
        waiting = [m for m in outbox("unsupported") if m.idempotency_key.endswith(":groups")]
        assert len(waiting) == len(created)  # one per person created, none sent
        worker.deliver_all()  # never retried in a loop
        assert not outbox("pending") and not realm.effects_of("group_add")
        realm.version = "11.2"
        worker.detect_capabilities()
        worker.deliver_all()
        student = realm.by_email("student1@example.edu")
        assert realm.groups_of(student.id) >= {"students"}
        assert not outbox("pending") and not outbox("failed")
        adds = realm.effects_of("group_add")
        assert len(adds) == len(set(adds))


def test_upgrade_replans_nothing_the_settings_no_longer_sync(app, make_app, zulip, realm):
    zapp = _app_on(make_app, zulip, realm, "10.4")
    with zapp.app_context():
        adopt_all(zapp, realm)  # aligning groups on 10.4: unsupported group changes
        assert outbox("unsupported")
        db.session.remove()
    quiet = make_app(**{**zapp.config["IDP_ENV"], "PROVISION_SYNC_GROUPS": "false"})
    with quiet.app_context():
        realm.version = "11.2"
        worker = provisioner(quiet)
        worker.detect_capabilities()
        assert worker.capabilities.allows("groups")
        assert not outbox("pending") and outbox("unsupported")
