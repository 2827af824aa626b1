"""Deliver provisioning's outbox messages to Zulip (through :mod:`idp.outbox`).

The outbox sends the most urgent first (deactivations before anything else, of anyone) and
keeps each person's order within a priority. Each action is one class of
:mod:`~idp.provisioning.actions`; here its Zulip answer is classified (ZULIP.md):

- 501, or 404 on a feature's endpoint (SCIM ``/Groups`` before 11.0): the feature is switched
  off (one warning) and the message is ``unsupported``. A switched-off feature's whole pending
  backlog is then settled as ``unsupported`` in one statement per kind (:func:`settle_switched_off`,
  at once, and before each delivery pass of the worker for actions planned since), without
  asking Zulip and without a delivery round per message;
  when a detection finds the feature back (Zulip upgraded), :func:`replan_returned` makes those
  messages pending again, in their original order;
- 400-class refusals: ``failed`` at once (shown with ``provision retry``), blocking nothing;
- 429, 5xx, network errors and timeouts: transient, retried with backoff honouring
  ``Retry-After``, behind the channel's circuit breaker.

Every operation is idempotent in effect (``PATCH active=false`` twice deactivates once; a create
first looks the ``userName`` up), so an action redelivered after a crash is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session

from .. import audit, clock, outbox
from ..breaker import STATE_CODES
from ..outbox import DeliveryReport, OutboxMessage
from .actions import (
    BY_OUTBOX_KIND,
    CHANNEL,
    DEACTIVATE_KINDS,
    Action,
    AlreadyDone,
    Delivery,
    Feature,
    Kind,
)
from .capabilities import Capabilities, store
from .metrics import ACTIONS, LAG, OLDEST_DEACTIVATION, PENDING, ZULIP_BREAKER
from .models import LedgerAccount
from .settings import ProvisionSettings
from .targets.base import TargetError, ZulipTarget

__all__ = ["DeliveryReport", "deliver_batch", "pending_count", "replan_returned", "retry_policy",
           "settle_switched_off"]

log = logging.getLogger(__name__)
KINDS = tuple(BY_OUTBOX_KIND)


def retry_policy(settings: ProvisionSettings) -> outbox.RetryPolicy:
    return outbox.RetryPolicy(base=settings.retry_base, maximum=settings.retry_max,
                              max_attempts=settings.max_attempts,
                              breaker_failures=settings.breaker_failures,
                              breaker_cooldown=settings.breaker_cooldown)


def pending_count(session: Session) -> int:
    return outbox.pending_count(session, CHANNEL, kinds=KINDS)


def _kinds_needing(feature: str) -> list[str]:
    return [a.kind.outbox_kind for a in BY_OUTBOX_KIND.values() if a.feature == feature]


def settle_switched_off(session: Session, caps: Capabilities) -> int:
    """Mark every pending action of a switched-off feature ``unsupported`` (the reason is the
    feature's), one UPDATE per kind, in the caller's transaction; returns how many. They are
    never sent, block nothing, and show with the failures in ``provision status``."""
    settled = 0
    for feature, on in caps.features.items():
        if on:
            continue
        for kind in _kinds_needing(feature):
            count = outbox.settle_pending(
                session, CHANNEL, [kind], status=outbox.UNSUPPORTED,
                reason=f"{BY_OUTBOX_KIND[kind].kind}: {caps.reasons.get(feature, '')}")
            if count:
                ACTIONS.labels(BY_OUTBOX_KIND[kind].kind.value, "unsupported").inc(count)
                log.info("provisioning: %d pending %s actions not sent (%s switched off)",
                         count, BY_OUTBOX_KIND[kind].kind, feature)
            settled += count
    return settled


def replan_returned(session: Session, before: Capabilities | None, after: Capabilities, *,
                    not_synced: Iterable[str] = ()) -> int:
    """A feature switched off before and on now (Zulip was upgraded): its ``unsupported``
    actions become pending again, due now, in their original order (per-person order holds:
    newer actions of the person have higher ids). Features in ``not_synced`` (switched off in
    the settings since, e.g. PROVISION_SYNC_GROUPS=false) are left. Caller commits; returns
    how many."""
    if before is None:
        return 0
    moved = 0
    for feature, on in before.features.items():
        if on or not after.allows(feature) or feature in set(not_synced):
            continue
        count = outbox.requeue(session, CHANNEL, _kinds_needing(feature),
                               status=outbox.UNSUPPORTED,
                               note=f"re-planned: Zulip {after.version} offers {feature}")
        if count:
            log.warning("Zulip %s offers %s again: %d actions that were not sent are queued "
                        "again", after.version, feature, count)
        moved += count
    return moved


def _classify(exc: TargetError, feature: str | None) -> outbox.DeliveryError:
    if exc.unsupported:
        return outbox.Unsupported(str(exc), feature=exc.feature or feature or "endpoint")
    if exc.transient:
        return outbox.Transient(str(exc), retry_after=exc.retry_after)
    return outbox.Refused(str(exc))


def handler_for(action: Action, target: ZulipTarget,
                caps: Capabilities) -> Callable[[Session, OutboxMessage], str]:
    def deliver(session: Session, message: OutboxMessage) -> str:
        if not caps.allows(action.feature):  # planned since the last pass: settle them all
            settle_switched_off(session, caps)
            raise outbox.Unsupported(f"{action.kind}: {caps.reasons.get(action.feature, '')}",
                                     feature=action.feature)
        payload = dict(message.payload)
        deferred: list[str] = []
        if action.kind is Kind.CREATE and not caps.allows(Feature.GROUPS):
            deferred, payload["groups"] = list(payload.get("groups") or []), []
        ledger = session.get(LedgerAccount, message.ordering_key)
        try:
            note = action.deliver(Delivery(session, target, ledger, message.ordering_key,
                                           payload))
        except AlreadyDone as done:
            note = str(done)
        except TargetError as exc:
            error = _classify(exc, action.feature)
            if isinstance(error, outbox.Unsupported):
                if caps.switch_off(error.feature, f"Zulip answered HTTP {exc.status} to "
                                                  f"{action.kind}: not supported by this "
                                                  f"Zulip"):
                    store(session, caps)
                    settle_switched_off(session, caps)  # the rest of it, in one step
            raise error from exc
        if ledger is not None:
            ledger.last_synced_at = clock.now()
        if deferred:
            _defer_groups(session, message, deferred)
            note = f"{note}; groups wait until Zulip offers them"
        return note
    return deliver


def _defer_groups(session: Session, create: OutboxMessage, groups: list[str]) -> None:
    """A person created on a Zulip without groups: their groups become a group change of their
    own, settled ``unsupported`` with the rest and re-planned when Zulip gains the feature
    (same transaction as the create's outcome; its idempotency key follows the create's)."""
    outbox.enqueue(session, outbox.Message(
        channel=CHANNEL, kind=Kind.GROUPS.outbox_kind, ordering_key=create.ordering_key,
        idempotency_key=f"{create.idempotency_key}:groups",
        payload={"add": groups, "remove": [], "groups": groups},
        priority=BY_OUTBOX_KIND[Kind.GROUPS.outbox_kind].priority,
        changed_at=create.changed_at, batch_id=create.batch_id))


def _outcome(message: OutboxMessage, outcome: str, note: str | None) -> None:
    ACTIONS.labels(message.action, outcome).inc()
    if outcome == "delivered":
        lag = (message.delivered_at - message.changed_at).total_seconds()
        LAG.labels(message.action).observe(max(0.0, lag))
    elif outcome == "retried":
        log.warning("provisioning %s of %s will be retried (attempt %s): %s", message.action,
                    message.subject, message.attempts, note)
    elif outcome == "unsupported":  # the feature's one warning was given when it went off
        log.info("provisioning %s of %s not sent: %s", message.action, message.subject, note)
    else:
        audit.record("provision.deliver", outcome, subject=message.subject,
                     action=message.action, error=(note or "")[:300])
        log.error("provisioning %s of %s %s: %s", message.action, message.subject, outcome,
                  note)


def deliver_batch(session: Session, target: ZulipTarget, settings: ProvisionSettings, *,
                  limit: int | None = None,
                  capabilities: Capabilities | None = None) -> DeliveryReport:
    """Deliver up to ``limit`` ready actions (default PROVISION_BATCH), one commit each."""
    caps = capabilities or Capabilities(target=target.name)
    handlers = {a.kind.outbox_kind: handler_for(a, target, caps)
                for a in BY_OUTBOX_KIND.values()}
    channel = outbox.channel(CHANNEL, retry_policy(settings))
    report = channel.deliver(session, handlers, limit=limit or settings.batch_size,
                             on_outcome=_outcome)
    PENDING.set(pending_count(session))
    ZULIP_BREAKER.set(STATE_CODES[channel.breaker.state])
    oldest = outbox.oldest_pending(session, CHANNEL, kinds=DEACTIVATE_KINDS)
    OLDEST_DEACTIVATION.set((clock.now() - oldest).total_seconds() if oldest else 0)
    return report
