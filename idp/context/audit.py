"""One ``context.read`` audit row per request to the context API or the mentor pages,
whatever its outcome (ok, stale, forbidden, not_found, bad_request, unauthenticated, refused,
unavailable). Never a token: only who asked, how, for what, and the answer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..audit import audit_values
from ..dbapi import execute
from ..extensions import autocommit_engine, db
from .metrics import CONTEXT_READS

if TYPE_CHECKING:
    from .access import Viewer


# Both statements in one message: one implicit transaction, one round trip (as the SAML login
# record in idp.saml.sso).
_RECORD_READ = """
    SET LOCAL synchronous_commit TO OFF;
    INSERT INTO audit_events (at, event, outcome, subject, client_ip, detail)
    VALUES (%(at)s, %(event)s, %(outcome)s, %(subject)s, %(client_ip)s,
            CAST(%(detail)s AS jsonb))"""


def record_read(channel: str, resource: str, outcome: str, viewer: Viewer | None,
                target: str | None, **detail) -> None:
    """Write the row in the request, before the answer leaves, on an autocommit connection
    straight on the driver. The commit does not wait for its WAL flush (``synchronous_commit``
    off for this transaction only): a database crash can lose at most the last fraction of a
    second of read records, never corrupt them (PostgreSQL manual, "Asynchronous Commit").

    Not batched by a background writer: rows queued in a worker are lost when it is killed
    (OOM, timeout, SIGKILL), and a bounded queue must either block or drop when PostgreSQL
    stalls; one round trip without a flush wait is already cheap (docs/benchmarks.md). The
    request's own transaction (if a lookup opened one) is committed as before."""
    CONTEXT_READS.labels(resource, outcome).inc()
    row = audit_values("context.read", outcome, viewer.subject if viewer else None,
                       channel=channel, resource=resource, target=target,
                       client_id=viewer.client_id if viewer else None,
                       via=viewer.via if viewer else None, **detail)
    execute(autocommit_engine(), _RECORD_READ, {**row, "detail": json.dumps(row["detail"])})
    db.session.commit()
