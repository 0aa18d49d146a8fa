"""Circuit breaker around Redis: after K consecutive failures requests skip Redis; after a
cool-down one probe decides whether it closes. A probe that ends without an answer (its
caller was cancelled) reopens the breaker for a fresh cool-down: it never stays half-open."""

import logging
import time
from collections.abc import Callable
from enum import StrEnum

logger = logging.getLogger(__name__)


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self._clock = clock
        self.cooldown_seconds = cooldown_seconds
        self.state = BreakerState.closed
        self.failures = 0
        self._opened_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        """May this call use Redis? In half-open state exactly one caller probes."""
        if self.state is BreakerState.closed:
            return True
        if self.state is BreakerState.open:
            if self._clock() - self._opened_at < self.cooldown_seconds:
                return False
            self._transition(BreakerState.half_open)
        if self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> bool:
        """Returns True when this success was the probe that closed the breaker.

        A call that started before the breaker opened and succeeds afterwards does not close
        it: only the half-open probe decides."""
        if self.state is BreakerState.open:
            return False
        self.failures = 0
        if self.state is BreakerState.half_open:
            self._probing = False
            self._transition(BreakerState.closed)
            return True
        return False

    def record_failure(self) -> None:
        self.failures += 1
        self._probing = False
        if self.state is BreakerState.half_open or (
            self.state is BreakerState.closed and self.failures >= self.failure_threshold
        ):
            self._opened_at = self._clock()
            self._transition(BreakerState.open)

    def abandon_probe(self) -> None:
        """The half-open probe ended without an answer (cancelled): open again, with a fresh
        cool-down, after which another caller probes."""
        if self.state is BreakerState.half_open and self._probing:
            self._probing = False
            self._opened_at = self._clock()
            self._transition(BreakerState.open)

    def _transition(self, state: BreakerState) -> None:
        logger.warning("cache circuit breaker %s -> %s", self.state.value, state.value)
        self.state = state
