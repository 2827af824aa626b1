"""The generic outbox: priority across keys, order within a key, idempotency, supersession,
outcome classification, Retry-After and the circuit breaker."""

from __future__ import annotations

import pytest

from idp import clock, outbox
from idp.extensions import db


@pytest.fixture(autouse=True)
def _fresh_channels():
    outbox.forget_channels()
    yield
    outbox.forget_channels()


def _msg(key: str, kind: str, n: int, priority: int, **kw) -> outbox.Message:
    return outbox.Message(channel="test", kind=kind, ordering_key=key,
                          idempotency_key=f"t:{key}:{kind}:{n}", payload={"n": n},
                          priority=priority, **kw)


def _recorder(log: list, fail: dict | None = None):
    fail = fail or {}

    def handle(session, message):
        error = fail.get(message.payload["n"])
        if error is not None:
            raise error
        log.append((message.ordering_key, message.kind, message.payload["n"]))
        return None
    return handle


def test_urgent_first_across_keys_and_never_behind_a_cosmetic_one(app_ctx):
    P = outbox.Priority
    for n, (key, kind, prio) in enumerate([("a", "groups", P.PROFILE), ("b", "groups", P.PROFILE),
                                           ("a", "deactivate", P.REVOCATION),
                                           ("a", "name", P.PROFILE),
                                           ("c", "deactivate", P.REVOCATION)]):
        outbox.enqueue(db.session, _msg(key, kind, n, prio))
    db.session.commit()
    seen: list = []
    handlers = {k: _recorder(seen) for k in ("groups", "deactivate", "name")}
    delivered = sum(outbox.channel("test").deliver(db.session, handlers).delivered
                    for _ in range(3))
    assert delivered == 5
    assert [s[2] for s in seen] == [2, 4, 0, 1, 3]  # deactivations, then FIFO per key


def test_a_later_change_waits_for_the_same_keys_pending_deactivation(app_ctx):
    P = outbox.Priority
    outbox.enqueue(db.session, _msg("a", "deactivate", 0, P.REVOCATION))
    outbox.enqueue(db.session, _msg("a", "groups", 1, P.PROFILE))
    db.session.commit()
    seen: list = []
    handlers = {"deactivate": _recorder(seen, {0: outbox.Transient("down")}),
                "groups": _recorder(seen)}
    outbox.channel("test").deliver(db.session, handlers)
    assert seen == []  # the group change did not overtake the failing deactivation


def test_idempotency_key_stores_a_message_once(app_ctx):
    first = outbox.enqueue(db.session, _msg("a", "x", 1, 50))
    again = outbox.enqueue(db.session, _msg("a", "x", 1, 50))
    many = outbox.enqueue_many(db.session, [_msg("a", "x", 1, 50), _msg("a", "x", 2, 50)])
    db.session.commit()
    assert first is not None and again is None and many == 1
    assert outbox.pending_count(db.session, "test") == 2


def test_supersedes_cancels_pending_same_key_kinds(app_ctx):
    outbox.enqueue(db.session, _msg("a", "reactivate", 1, 10))
    outbox.enqueue(db.session, _msg("b", "reactivate", 2, 10))
    outbox.enqueue(db.session, _msg("a", "deactivate", 3, 0), supersedes=["reactivate"])
    db.session.commit()
    rows = {m.payload["n"]: m.status for m in db.session.scalars(db.select(outbox.OutboxMessage))}
    assert rows == {1: "cancelled", 2: "pending", 3: "pending"}


def test_refused_and_unsupported_block_nothing(app_ctx):
    for n in range(3):
        outbox.enqueue(db.session, _msg("a", "groups", n, 50))
    db.session.commit()
    seen: list = []
    handle = _recorder(seen, {0: outbox.Refused("HTTP 400"),
                              1: outbox.Unsupported("HTTP 501", feature="groups")})
    report = outbox.DeliveryReport()
    for _ in range(3):  # one message of a key per pass: the next is ready on the next pass
        report.add(outbox.channel("test").deliver(db.session, {"groups": handle}))
    assert (report.failed, report.unsupported, report.delivered) == (1, 1, 1)
    assert seen == [("a", "groups", 2)]
    statuses = [m.status for m in db.session.scalars(
        db.select(outbox.OutboxMessage).order_by(outbox.OutboxMessage.id))]
    assert statuses == ["failed", "unsupported", "done"]


def test_retry_after_pauses_the_channel_and_sets_the_next_attempt(app_ctx):
    outbox.enqueue(db.session, _msg("a", "x", 0, 0))
    outbox.enqueue(db.session, _msg("b", "x", 1, 0))
    db.session.commit()
    seen: list = []
    handle = _recorder(seen, {0: outbox.Transient("HTTP 429", retry_after=30)})
    channel = outbox.channel("test", outbox.RetryPolicy(base=1, maximum=2))
    report = channel.deliver(db.session, {"x": handle})
    assert report.retried == 1 and report.blocked and seen == []
    first = db.session.scalars(db.select(outbox.OutboxMessage).order_by(
        outbox.OutboxMessage.id)).first()
    assert 29 <= (first.next_attempt_at - clock.now()).total_seconds() <= 31
    assert channel.deliver(db.session, {"x": handle}).blocked  # paused: nothing sent
    assert seen == []
    row = db.session.get(outbox.OutboxChannel, "test")
    assert row.breaker == "open" and "429" in row.last_error


def test_breaker_opens_then_recovery_sends_the_backlog_most_urgent_first(app_ctx):
    P = outbox.Priority
    for n in range(4):
        outbox.enqueue(db.session, _msg(f"g{n}", "groups", n, P.PROFILE))
    outbox.enqueue(db.session, _msg("d", "deactivate", 9, P.REVOCATION))
    db.session.commit()
    down = {"value": True}
    seen: list = []

    def handle(session, message):
        if down["value"]:
            raise outbox.Transient("unreachable")
        seen.append(message.payload["n"])

    channel = outbox.channel("test", outbox.RetryPolicy(base=100, maximum=100,
                                                        breaker_failures=2,
                                                        breaker_cooldown=5))
    handlers = {"groups": handle, "deactivate": handle}
    attempts = 0
    for _ in range(10):  # an outage: the breaker stops the storm after two tries
        attempts += channel.deliver(db.session, handlers).retried
        clock.advance(0.1)
    assert attempts == 2 and channel.breaker.state == "open"
    down["value"] = False
    clock.advance(5)  # cool-down over: one trial, then everything is due at once
    total = 0
    for _ in range(5):
        total += channel.deliver(db.session, handlers).delivered
    assert total == 5 and seen[0] == 9  # the deactivation first


def test_a_round_reads_its_messages_once_and_writes_each_outcome_in_one_statement(app_ctx):
    """Per delivered message: the outcome's UPDATE (with ``SET LOCAL synchronous_commit``
    in the same message) and the commit; no re-read of a message after each commit."""
    from sqlalchemy import event

    for n in range(50):
        outbox.enqueue(db.session, _msg(f"k{n}", "x", n, 0))
    db.session.commit()
    sent: list[str] = []

    def count(conn, cursor, statement, *_):
        sent.append(statement)

    seen: list = []
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        report = outbox.channel("test").deliver(db.session, {"x": _recorder(seen)}, limit=50)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert report.delivered == 50 and len(seen) == 50
    assert len([s for s in sent if "FROM outbox_messages" in s]) == 1  # the round's one read
    assert len(sent) == 1 + 50
    rows = db.session.scalars(db.select(outbox.OutboxMessage)).all()
    assert {(m.status, m.attempts) for m in rows} == {("done", 1)}
    assert all(m.delivered_at is not None and m.last_error is None for m in rows)


def test_settle_pending_closes_a_kinds_backlog_and_requeue_brings_it_back_in_order(app_ctx):
    for n in range(6):
        outbox.enqueue(db.session, _msg(f"k{n % 2}", "groups" if n % 3 else "name", n, 50))
    outbox.enqueue(db.session, _msg("other", "groups", 9, 50), status=outbox.HELD)
    db.session.commit()
    settled = outbox.settle_pending(db.session, "test", ["groups"], status=outbox.UNSUPPORTED,
                                    reason="groups: not offered by the peer")
    db.session.commit()
    by_n = {m.payload["n"]: m for m in db.session.scalars(db.select(outbox.OutboxMessage))}
    assert settled == 4
    assert {n for n, m in by_n.items() if m.status == outbox.UNSUPPORTED} == {1, 2, 4, 5}
    assert by_n[9].status == outbox.HELD  # only pending messages are settled
    assert by_n[1].last_error == "groups: not offered by the peer"
    seen: list = []
    for _ in range(3):  # the names go out; the settled group changes block nothing
        outbox.channel("test").deliver(db.session, {"name": _recorder(seen),
                                                    "groups": _recorder(seen)})
    assert sorted(s[2] for s in seen) == [0, 3]
    clock.advance(1)
    assert outbox.requeue(db.session, "test", ["groups"], status=outbox.UNSUPPORTED,
                          note="offered again") == 4
    db.session.commit()
    for _ in range(4):
        outbox.channel("test").deliver(db.session, {"name": _recorder(seen),
                                                    "groups": _recorder(seen)})
    assert [s[2] for s in seen[2:]] == [1, 2, 4, 5]  # in their original order
