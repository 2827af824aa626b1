"""The academic context service: cached academic queries behind the LMS adapter's circuit
breaker (``Directory.breaker``: one per LMS, the one the liveness service uses too).

Reads go: fresh cache → LMS (through the breaker) → on failure, the last known good copy
(marked stale, with its age) → otherwise LMSUnavailable. Views compose answers from parts that
live in caches of different lifetimes (profile, metrics, batch); an answer is stale if any part
is, and its age is that of its oldest part.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from .. import clock, liveness
from ..lms.db import LMSBreaker, LMSUnavailable
from ..lms.directory import Directory
from ..people import Person, parse_subject
from . import insights, queries
from .cache import Cached, ContextCache
from .metrics import CACHE_LOOKUPS
from .settings import ContextSettings
from .shared import SharedLevel


@dataclass(frozen=True)
class Answer:
    """A composed answer and how fresh it is."""

    value: Any
    stale: bool
    fetched_at: float

    @property
    def age_seconds(self) -> int:
        return int(max(0.0, clock.now().timestamp() - self.fetched_at))

    @property
    def as_of(self) -> str:
        return dt.datetime.fromtimestamp(self.fetched_at, dt.UTC).isoformat() \
            .replace("+00:00", "Z")

    def freshness(self) -> dict:
        return {"stale": self.stale, "as_of": self.as_of, "age_seconds": self.age_seconds}


def _combine(value: Any, *parts: Answer | None) -> Answer:
    present = [p for p in parts if p is not None]
    return Answer(value, any(p.stale for p in present),
                  min((p.fetched_at for p in present), default=clock.now().timestamp()))


class ContextService:
    """One per app (``app.extensions["context"].service``)."""

    def __init__(self, directory: Directory, settings: ContextSettings):
        self.directory = directory
        self.settings = settings
        ttls = {"owner": settings.profile_ttl, "profile": settings.profile_ttl,
                "viewer": settings.profile_ttl, "mentor": settings.profile_ttl,
                "mentor_students": settings.profile_ttl, "metrics": settings.metrics_ttl,
                "performance": settings.metrics_ttl, "batch": settings.batch_ttl}
        shared = SharedLevel(settings.redis_url, ttls) if settings.redis_url else None
        self.cache = ContextCache(ttls, settings.cache_size, shared)

    @property
    def breaker(self) -> LMSBreaker:
        """The LMS adapter's breaker: an outage seen here is seen by liveness, and back."""
        return self.directory.breaker

    @property
    def engine(self) -> Engine:
        return self.directory.engine

    def _load(self, kind: str, key: Any, fetch: Callable[[], Any],
              tags: Callable[[Any], Iterable[str]]) -> Answer | None:
        """A part from the fresh cache, else the LMS, else the last known good copy."""
        entry = self.cache.fresh(kind, key)
        if entry is not None:
            CACHE_LOOKUPS.labels(kind, "hit").inc()
            return Answer(entry.value, False, entry.fetched_at)
        since = self.cache.generation()
        try:
            value = self.breaker.call(fetch)
        except LMSUnavailable:
            entry = self.cache.last_good(kind, key, self.settings.stale_max_age)
            if entry is None:
                CACHE_LOOKUPS.labels(kind, "unavailable").inc()
                raise
            CACHE_LOOKUPS.labels(kind, "stale").inc()
            return Answer(entry.value, True, entry.fetched_at)
        CACHE_LOOKUPS.labels(kind, "miss").inc()
        if value is None:
            return None
        stored: Cached = self.cache.put(kind, key, value, tags(value), since)
        return Answer(value, False, stored.fetched_at)

    # -- who is asking -------------------------------------------------------------------

    def viewer(self, subject: str) -> tuple[Person | None, bool]:
        """The person behind a session or token, active in the LMS now. When the LMS cannot
        answer, the last known good copy (at most ``stale_max_age`` old) stands in, and the
        second value says so. (None, False): gone or inactive."""
        answer = liveness.check(subject, liveness.Policy.STALE_OK)
        if answer.person is None:
            self.cache.drop_tag(subject)
        return answer.person, answer.stale

    # -- students ------------------------------------------------------------------------

    def owner(self, student_id: int) -> Answer | None:
        """Whose student this is (mentor id, batch id): what authorization needs.

        A missing student is cached too (as ``{"id": …, "missing": True}``), so that a missing
        and an existing-but-forbidden id cost the same on repeated requests: response timing
        does not tell which ids exist."""
        answer = self._load("owner", student_id,
                            lambda: queries.fetch_owner(self.engine, student_id)
                            or {"id": student_id, "missing": True},
                            lambda v: [f"student:{student_id}"])
        return None if answer is None or answer.value.get("missing") else answer

    def profile(self, student_id: int) -> Answer | None:
        """The profile answer of ``GET /api/v1/lms/students/<id>/profile``."""
        student = self._load("profile", student_id,
                             lambda: queries.fetch_student(self.engine, student_id, clock.now()),
                             lambda v: _student_tags(student_id, v))
        if student is None:
            return None
        metrics = self._metrics(student_id)
        batch_id = (student.value["student"]["batch"] or {}).get("id")
        batch = self._batch(batch_id) if batch_id is not None else None
        info, m = student.value, metrics.value
        status = insights.classify_subjects(info["subjects"])
        value = {
            "student": info["student"],
            "performance_metrics": {
                "current_streak": m["current_streak"], "highest_streak": m["highest_streak"],
                "average_score": m["average_score"],
                "percentile_rank": (batch.value["ranks"].get(student_id)
                                    if batch and batch.value else None),
                "batch_size": batch.value["size"] if batch and batch.value else None,
                "total_exams": m["total_exams"], "attempts_count": m["attempts_count"],
                "videos_watched": m["videos_watched"],
                "streak_broken": insights.streak_broken(m),
                "scores_falling": insights.scores_falling(m)},
            "current_courses": info["current_courses"],
            "struggling_subjects": [s for s, v in status.items() if v == "struggling"],
            "strong_subjects": [s for s, v in status.items() if v == "strong"],
            "recent_activity": info["recent_activity"],
        }
        return _combine(value, student, metrics, batch)

    def performance(self, student_id: int) -> Answer | None:
        """The answer of ``GET /api/v1/lms/students/<id>/performance``."""
        student = self._load("profile", student_id,
                             lambda: queries.fetch_student(self.engine, student_id, clock.now()),
                             lambda v: _student_tags(student_id, v))
        if student is None:
            return None
        perf = self._load("performance", student_id,
                          lambda: queries.fetch_performance(self.engine, student_id,
                                                            clock.now()),
                          lambda v: [f"student:{student_id}"])
        metrics = self._metrics(student_id)
        batch_id = (student.value["student"]["batch"] or {}).get("id")
        batch = self._batch(batch_id) if batch_id is not None else None
        p, m = perf.value, metrics.value
        percentile = batch.value["ranks"].get(student_id) if batch and batch.value else None
        status = insights.classify_subjects(p["subjects"])
        per_30 = (round(p["slope_per_day"] * 30, 2) if p["slope_per_day"] is not None
                  else None)
        weekdays = p["activity_by_weekday"]
        busiest = max(weekdays, key=lambda d: d["attempts"])
        value = {
            "student": {k: student.value["student"][k]
                        for k in ("id", "subject", "display_name", "email", "active")},
            "exam_history": p["exam_history"],
            "subject_performance": [{**s, "status": status.get(s["subject"], "steady")}
                                    for s in p["subjects"]],
            "learning_patterns": {
                "activity_by_weekday": weekdays,
                "most_active_weekday": busiest["weekday"] if busiest["attempts"] else None,
                "score_trend": {"direction": insights.trend_direction(per_30),
                                "points_per_30_days": per_30,
                                "weekly": p["weekly_scores"]}},
            "recommendations": insights.recommendations(m, p["subjects"], weekdays,
                                                        percentile, clock.now()),
        }
        return _combine(value, student, perf, metrics, batch)

    def _metrics(self, student_id: int) -> Answer:
        return self._load("metrics", student_id,
                          lambda: queries.fetch_metrics(self.engine, student_id, clock.now()),
                          lambda v: [f"student:{student_id}"])

    def _batch(self, batch_id: int) -> Answer | None:
        return self._load("batch", batch_id, lambda: queries.fetch_batch(self.engine, batch_id),
                          lambda v: [f"batch:{batch_id}"])

    # -- mentors -------------------------------------------------------------------------

    def mentor(self, mentor_id: int) -> Answer | None:
        return self._load("mentor", mentor_id,
                          lambda: queries.fetch_mentor(self.engine, mentor_id),
                          lambda v: [f"mentor:{mentor_id}"])

    def mentor_students(self, mentor_id: int, *, sort: str = "name", descending: bool = False,
                        limit: int = 50, offset: int = 0) -> Answer:
        """One page of the mentor's students with their key metrics and flags."""
        key = (mentor_id, sort, descending, limit, offset)
        page = self._load(
            "mentor_students", key,
            lambda: queries.fetch_mentor_students(self.engine, mentor_id, sort=sort,
                                                  descending=descending, limit=limit,
                                                  offset=offset),
            lambda v: [f"mentor:{mentor_id}", *(s["subject"] for s in v["students"])])
        return page

    def roster(self, mentor_id: int) -> Answer:
        """Every student of the mentor with key metrics (unsorted; /mentor triage)."""
        return self._load("mentor_students", ("roster", mentor_id),
                          lambda: queries.fetch_roster(self.engine, mentor_id),
                          lambda v: [f"mentor:{mentor_id}", *(s["subject"] for s in v)])

    # -- invalidation --------------------------------------------------------------------

    def forget(self, subject: str) -> None:
        """Drop everything cached about ``subject`` (provisioning saw it change or leave),
        including its batch's ranks when we know the batch."""
        parsed = parse_subject(subject)
        if parsed and parsed[0] == "student":
            owner = self.cache.last_good("owner", parsed[1], float("inf"))
            if owner is not None and owner.value.get("batch_id") is not None:
                self.cache.drop_tag(f"batch:{owner.value['batch_id']}")
        self.cache.drop_tag(subject)


def _student_tags(student_id: int, value: dict) -> list[str]:
    tags = [f"student:{student_id}"]
    mentor = value["student"]["mentor"]
    if mentor:
        tags.append(mentor["subject"])
    return tags
