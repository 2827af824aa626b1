"""One ``context.read`` audit row per request to the context API or the mentor pages,
whatever its outcome (ok, stale, forbidden, not_found, bad_request, unauthenticated, refused,
unavailable). Never a token: only who asked, how, for what, and the answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text

from ..audit import record
from ..extensions import db
from .metrics import CONTEXT_READS

if TYPE_CHECKING:
    from .access import Viewer


def record_read(channel: str, resource: str, outcome: str, viewer: Viewer | None,
                target: str | None, **detail) -> None:
    """Write and commit the row. The commit does not wait for its WAL flush
    (``synchronous_commit`` off for this transaction only): a read writes nothing else, and a
    database crash can lose at most the last fraction of a second of read records, never
    corrupt them (PostgreSQL manual, "Asynchronous Commit")."""
    CONTEXT_READS.labels(resource, outcome).inc()
    record("context.read", outcome, subject=viewer.subject if viewer else None,
           channel=channel, resource=resource, target=target,
           client_id=viewer.client_id if viewer else None,
           via=viewer.via if viewer else None, **detail)
    db.session.execute(text("SET LOCAL synchronous_commit = off"))
    db.session.commit()
