"""The circuit breaker in front of the LMS database: :class:`idp.breaker.CircuitBreaker` whose
failures are :class:`~idp.lms.db.LMSUnavailable` and which raises :class:`BreakerOpen` while
open (no LMS query at all)."""

from __future__ import annotations

from collections.abc import Callable

from ..breaker import CLOSED, HALF_OPEN, OPEN
from ..breaker import CircuitBreaker as _Breaker
from ..lms.db import LMSUnavailable

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "BreakerOpen", "CircuitBreaker"]


class BreakerOpen(LMSUnavailable):
    """The breaker is open: the LMS was not even asked."""


class CircuitBreaker(_Breaker):
    def __init__(self, failures: int, cooldown: float,
                 on_change: Callable[[str], None] | None = None):
        super().__init__(failures, cooldown, on_change, counts_as_failure=(LMSUnavailable,),
                         open_error=lambda: BreakerOpen(
                             "LMS circuit breaker is open: not querying the LMS until the "
                             "cool-down ends"))
