"""A circuit breaker in front of the LMS database.

Closed: calls go through; ``failures`` consecutive failures open it. Open: calls fail at once
(no connection attempt) for ``cooldown`` seconds. Half-open: one trial call goes through; its
success closes the breaker, its failure opens it for another cool-down. (The pattern as Michael
Nygard describes it in "Release It!", ch. 5.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from .. import clock
from ..lms.db import LMSUnavailable

T = TypeVar("T")

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"


class BreakerOpen(LMSUnavailable):
    """The breaker is open: the LMS was not even asked."""


class CircuitBreaker:
    """Thread-safe; time comes from :func:`idp.clock.now` so tests can move it."""

    def __init__(self, failures: int, cooldown: float,
                 on_change: Callable[[str], None] | None = None):
        self.threshold, self.cooldown = failures, cooldown
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

    @staticmethod
    def _now() -> float:
        return clock.now().timestamp()

    def _set(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self._on_change(state)

    def _admit(self) -> bool:
        """Whether this call may reach the LMS; marks the half-open trial as running."""
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

    def reset(self) -> None:
        """Back to closed with no failures counted (operators' and tests' use)."""
        with self._lock:
            self._failures, self._trial_running = 0, False
            self._set(CLOSED)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (which raises LMSUnavailable on failure) through the breaker."""
        if not self._admit():
            raise BreakerOpen("LMS circuit breaker is open: not querying the LMS until the "
                              "cool-down ends")
        try:
            result = fn()
        except LMSUnavailable:
            with self._lock:
                self._trial_running = False
                self._failures += 1
                if self._state == HALF_OPEN or self._failures >= self.threshold:
                    self._opened_at = self._now()
                    self._set(OPEN)
            raise
        except BaseException:
            with self._lock:
                self._trial_running = False
            raise
        with self._lock:
            self._trial_running = False
            self._failures = 0
            self._set(CLOSED)
        return result
