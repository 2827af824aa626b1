"""Hand-made learning history in the bridge database, for page and nudge tests."""

from __future__ import annotations

import datetime as dt

from idp import clock
from idp.extensions import db
from idp.history.models import HistorySnapshot
from idp.history.snapshots import last_complete_day


def yesterday(tz=dt.UTC) -> dt.date:
    return last_complete_day(clock.now(), tz)


def put_history(student_id: int, n: int, *, batch_id: int | None = 1, course_id: int | None = 1,
                **series) -> None:
    """``n`` daily rows ending yesterday (UTC); each keyword is one value or a list of n values
    of a HistorySnapshot column. Commits."""
    last = yesterday()
    for i in range(n):
        values = {k: (v[i] if isinstance(v, list) else v) for k, v in series.items()}
        values.setdefault("attempts", 10)
        values.setdefault("scored_attempts", values["attempts"])
        values.setdefault("score_sum_tenths", 700 * values["scored_attempts"])
        values.setdefault("last_attempt_day", last)
        db.session.add(HistorySnapshot(student_id=student_id,
                                       day=last - dt.timedelta(days=n - 1 - i),
                                       batch_id=batch_id, course_id=course_id, **values))
    db.session.commit()
