"""THE answer to "is subject X active, and who are they now" (DESIGN.md, layout).

Backed by the LMS directory, behind the LMS adapter's circuit breaker (``Directory.breaker``,
the one the context service uses too), with a short per-process cache.
Every caller states its policy:

- :data:`Policy.FAIL_CLOSED` — sign-in, token issue and refresh, token introspection and
  userinfo, SAML assertions, launch links, the session of a signed-in browser: the answer is at
  most ``IDP_LIVENESS_CACHE_SECONDS`` old; when the LMS cannot answer (or the breaker is open)
  :class:`~idp.lms.db.LMSUnavailable` is raised (503), never a guess.
- :data:`Policy.STALE_OK` — reading academic context (a mentor's session *or* OAuth token, the
  same rule for both): when the LMS cannot answer, the last answer seen for the person stands
  in for up to ``IDP_LIVENESS_STALE_MAX_AGE`` seconds, marked stale. A person known to be
  inactive is never served from a stale copy.

While the breaker is open no LMS query is made at all (``BreakerOpen`` at once). Revocation
(:mod:`idp.revocation`) drops the person from the cache of every web process.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flask import Flask, current_app

from . import clock
from .config import env_float
from .lms.db import LMSBreaker, LMSUnavailable
from .lms.directory import Directory
from .people import Person


class Policy(StrEnum):
    FAIL_CLOSED = "fail_closed"
    STALE_OK = "stale_ok"


@dataclass(frozen=True)
class Liveness:
    """``person`` is None when the subject is unknown or inactive; ``stale`` when the LMS could
    not be asked and an older answer stands in (only under ``STALE_OK``)."""

    person: Person | None
    stale: bool
    checked_at: dt.datetime

    @property
    def active(self) -> bool:
        return self.person is not None


@dataclass(frozen=True)
class LivenessSettings:
    cache_seconds: float = 2.0
    stale_max_age: float = 1800.0
    cache_size: int = 50_000


def load_liveness_settings(env: Mapping[str, str]) -> LivenessSettings:
    return LivenessSettings(
        cache_seconds=env_float(env, "IDP_LIVENESS_CACHE_SECONDS", 2.0, minimum=0.0),
        stale_max_age=env_float(env, "IDP_LIVENESS_STALE_MAX_AGE", 1800.0, minimum=0.0),
    )


class LivenessService:
    """One per app (``app.extensions["liveness"]``); thread-safe."""

    def __init__(self, directory: Directory, settings: LivenessSettings | None = None):
        self.directory = directory
        self.settings = settings or LivenessSettings()
        self._cache: OrderedDict[str, Liveness] = OrderedDict()
        self._lock = threading.Lock()
        # Bumped by every forget: an LMS answer read before a forget is not cached after it
        # (request threads and the revocation listener run at the same time).
        self._generation = 0

    @property
    def breaker(self) -> LMSBreaker:
        """The LMS adapter's breaker (one per LMS, shared with the context service)."""
        return self.directory.breaker

    def _cached(self, subject: str) -> tuple[Liveness | None, int]:
        with self._lock:
            return self._cache.get(subject), self._generation

    def _store(self, subject: str, answer: Liveness, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._cache[subject] = answer
            self._cache.move_to_end(subject)
            while len(self._cache) > self.settings.cache_size:
                self._cache.popitem(last=False)

    def check(self, subject: str, policy: Policy = Policy.FAIL_CLOSED) -> Liveness:
        """Whether ``subject`` is active now and who they are (see the module's policies).
        Raises LMSUnavailable when the LMS cannot answer and the policy allows no stand-in."""
        now = clock.now()
        cached, generation = self._cached(subject)
        age = (now - cached.checked_at).total_seconds() if cached is not None else None
        if age is not None and 0 <= age < self.settings.cache_seconds:
            return cached
        try:
            person = self.breaker.call(lambda: self.directory.get(subject))
        except LMSUnavailable:
            if policy is Policy.STALE_OK and cached is not None and cached.person is not None \
                    and 0 <= age <= self.settings.stale_max_age:
                return Liveness(cached.person, True, cached.checked_at)
            raise
        answer = Liveness(person if person is not None and person.active else None, False, now)
        self._store(subject, answer, generation)
        return answer

    def active_person(self, subject: str, policy: Policy = Policy.FAIL_CLOSED) -> Person | None:
        """The person if active (fail-closed by default), else None."""
        return self.check(subject, policy).person

    def forget(self, subject: str) -> None:
        """Drop the cached answer (the person was revoked or changed)."""
        with self._lock:
            self._cache.pop(subject, None)
            self._generation += 1

    def forget_all(self) -> None:
        with self._lock:
            self._cache.clear()
            self._generation += 1


def init_app(app: Flask) -> None:
    from . import revocation

    service = LivenessService(app.extensions["lms_directory"],
                              load_liveness_settings(app.config["IDP_ENV"]))
    app.extensions["liveness"] = service
    revocation.register_cache_dropper(app, "liveness", service.forget)


def liveness() -> LivenessService:
    """This app's liveness service."""
    return current_app.extensions["liveness"]


def check(subject: str, policy: Policy = Policy.FAIL_CLOSED) -> Liveness:
    return liveness().check(subject, policy)


def active_person(subject: str, policy: Policy = Policy.FAIL_CLOSED) -> Person | None:
    """Shorthand of the call sites: the active person, or None; LMSUnavailable under
    FAIL_CLOSED when the LMS cannot answer."""
    return liveness().active_person(subject, policy)
