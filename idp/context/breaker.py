"""The circuit breaker in front of the LMS database (it lives in :mod:`idp.lms.db`, shared
with :mod:`idp.liveness`); kept here under the names the context package uses."""

from ..breaker import CLOSED, HALF_OPEN, OPEN
from ..lms.db import BreakerOpen
from ..lms.db import LMSBreaker as CircuitBreaker

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "BreakerOpen", "CircuitBreaker"]
