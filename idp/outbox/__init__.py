"""Foundation: durable, ordered, idempotent delivery to a peer (Zulip), shared by provisioning
and nudges (DESIGN.md, layout).

A message is written in the caller's transaction with the change that causes it (the
transactional-outbox pattern), so a crash never loses or doubles it, and delivered later by a
worker, most urgent first.

Writing (``idp.outbox.queue``, in the caller's transaction; the caller commits)::

    from idp import outbox

    outbox.enqueue(session, outbox.Message(
        channel="zulip",                    # one peer; one breaker per channel and process
        kind="nudge.direct",                # a handler is registered per kind
        ordering_key="student:42",          # per-key order (see below)
        idempotency_key="nudge:2026-11-27:student:42:streak",  # unique: never enqueued twice
        payload={...},                      # JSON
        priority=outbox.Priority.MESSAGE,   # REVOCATION 0 < ACCOUNT 10 < PROFILE 50 < MESSAGE 100
        changed_at=None,                    # when the event happened (lag metrics); default now
        batch_id=None))                     # optional grouping (a provisioning run)
    # -> the new id, or None when that idempotency key already exists (nothing written)

    outbox.enqueue_many(session, [Message, ...])        # one statement; returns how many new
    outbox.enqueue(..., supersedes=("provision.reactivate",))  # cancel pending same-key kinds
    outbox.enqueue(..., status="held") / outbox.set_batch_status(session, batch_id, old, new)
    outbox.settle_pending(session, "zulip", kinds, status="unsupported", reason="...")
    outbox.requeue(session, "zulip", kinds, status="unsupported", note="...")  # back to pending

Ordering: messages go out by ``priority`` then ``id``. Within one ``(channel, ordering_key)``
a message waits for every older *pending* message of equal or more urgent priority, and for no
other: a deactivation (``REVOCATION``) never waits behind a group change of the same person or of
anyone else, while a group change does wait for that person's pending deactivation. A message
given up (``failed``) or ``unsupported`` blocks nothing.

Delivering (``idp.outbox.delivery``; in the one worker holding the channel's delivery lock)::

    outbox.register_handler("nudge.direct", send_direct_message)  # (session, message) -> note
    report = outbox.channel("zulip", outbox.RetryPolicy(...)).deliver(
        session, handlers=None, limit=100, on_outcome=None)   # handlers: default = registered

A handler returns a note (or None) on success, or raises ``Transient(msg, retry_after=s)``
(network, timeout, 5xx, 429: backoff ``base·2^n`` capped, at least ``Retry-After``, which also
pauses the whole channel), ``Refused(msg)`` (400-class: ``failed``, never retried, reported) or
``Unsupported(msg, feature=...)`` (501, 404 on an endpoint: ``unsupported``, never retried).
Each message commits on its own with its handler's other writes. The channel's breaker opens
after ``breaker_failures`` consecutive transient failures (or at once on ``Retry-After``) and
lets one trial through after ``breaker_cooldown`` s: no retry storm during an outage. When the
peer answers again, every pending message of the channel becomes due at once, so the backlog
leaves in priority order (deactivations first). Channel state (breaker, pause, last error, the
peer's ``capabilities`` as detected by the owning package) is kept in ``outbox_channels`` for
status pages of every process.

Statuses: ``pending`` → ``done`` | ``failed`` | ``unsupported``; ``held`` (waiting for an
operator) → ``pending`` | ``cancelled``; ``pending`` → ``cancelled`` when superseded.
"""

from .delivery import (
    Channel,
    DeliveryError,
    DeliveryReport,
    Handler,
    Refused,
    RetryPolicy,
    Transient,
    Unsupported,
    channel,
    forget_channels,
    register_handler,
    registered_handlers,
)
from .models import OutboxChannel, OutboxMessage
from .queue import (
    CANCELLED,
    DONE,
    FAILED,
    HELD,
    PENDING,
    UNSUPPORTED,
    Message,
    Priority,
    cancel_pending,
    enqueue,
    enqueue_many,
    oldest_pending,
    pending_count,
    ready,
    requeue,
    retry_now,
    set_batch_status,
    settle_pending,
)

__all__ = [
    "CANCELLED", "DONE", "FAILED", "HELD", "PENDING", "UNSUPPORTED",
    "Channel", "DeliveryError", "DeliveryReport", "Handler", "Message", "OutboxChannel",
    "OutboxMessage", "Priority", "Refused", "RetryPolicy", "Transient", "Unsupported",
    "cancel_pending", "channel", "enqueue", "enqueue_many", "forget_channels", "oldest_pending",
    "pending_count", "ready", "register_handler", "registered_handlers", "requeue",
    "retry_now", "set_batch_status", "settle_pending",
]
