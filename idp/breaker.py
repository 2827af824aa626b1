"""A generic circuit breaker (foundation): used in front of the LMS and in front of Zulip.

Closed: calls go through; ``failures`` consecutive failures open it. Open: calls fail at once
(no attempt) for ``cooldown`` seconds. Half-open: one trial call goes through; its success closes
the breaker, its failure opens it for another cool-down. (The pattern as Michael Nygard
describes it in "Release It!", ch. 5.)

:meth:`CircuitBreaker.call` wraps a function; :meth:`admit`, :meth:`succeeded` and
:meth:`failed` let a loop (the outbox) drive it step by step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from . import clock

T = TypeVar("T")

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATE_CODES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class CircuitOpen(Exception):
    """The breaker is open: the dependency was not even asked."""


class CircuitBreaker:
    """Thread-safe; time comes from :func:`idp.clock.now` so tests can move it.

    ``counts_as_failure`` are the exception types that count, except ``not_a_failure`` (others
    pass through untouched);
    ``open_error`` builds the exception raised while open.
    """

    def __init__(self, failures: int, cooldown: float,
                 on_change: Callable[[str], None] | None = None, *,
                 counts_as_failure: tuple[type[BaseException], ...] = (Exception,),
                 not_a_failure: tuple[type[BaseException], ...] = (),
                 open_error: Callable[[], Exception] = lambda: CircuitOpen(
                     "circuit breaker is open")):
        self.threshold, self.cooldown = failures, cooldown
        self.counts_as_failure, self.open_error = counts_as_failure, open_error
        self.not_a_failure = not_a_failure
        self._lock = threading.Lock()
        self._failures = 0
        self._state = CLOSED
        self._opened_at = 0.0
        self._trial_running = False
        self._on_change = on_change or (lambda state: None)

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self._now() - self._opened_at >= self.cooldown:
                return HALF_OPEN
            return self._state

    @property
    def retry_after(self) -> float:
        """Seconds until an open breaker lets a trial through (0 when it would now)."""
        with self._lock:
            if self._state != OPEN:
                return 0.0
            return max(0.0, self.cooldown - (self._now() - self._opened_at))

    @staticmethod
    def _now() -> float:
        return clock.now().timestamp()

    def _set(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self._on_change(state)

    def admit(self) -> bool:
        """Whether a call may go out now; marks the half-open trial as running."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN and self._now() - self._opened_at < self.cooldown:
                return False
            if self._trial_running:
                return False
            self._set(HALF_OPEN)
            self._trial_running = True
            return True

    def succeeded(self) -> bool:
        """Record a success; returns True when this closed a breaker that was not closed."""
        with self._lock:
            recovered = self._state != CLOSED
            self._trial_running = False
            self._failures = 0
            self._set(CLOSED)
            return recovered

    def failed(self, *, open_now: bool = False) -> None:
        """Record a failure (``open_now``: the peer said to stop, e.g. 429 or 503)."""
        with self._lock:
            self._trial_running = False
            self._failures += 1
            if open_now or self._state == HALF_OPEN or self._failures >= self.threshold:
                self._opened_at = self._now()
                self._set(OPEN)

    def abandoned(self) -> None:
        """The admitted call ended without telling anything about the dependency."""
        with self._lock:
            self._trial_running = False

    def reset(self) -> None:
        """Back to closed with no failures counted (operators' and tests' use)."""
        with self._lock:
            self._failures, self._trial_running = 0, False
            self._set(CLOSED)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` through the breaker."""
        if not self.admit():
            raise self.open_error()
        try:
            result = fn()
        except self.not_a_failure:
            self.abandoned()
            raise
        except self.counts_as_failure:
            self.failed()
            raise
        except BaseException:
            self.abandoned()
            raise
        self.succeeded()
        return result
