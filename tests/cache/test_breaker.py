"""Unit tests of the circuit breaker's state machine (the fault tests in tests/resilience/
show it working against real Redis)."""

import time

from app.cache.breaker import BreakerState, CircuitBreaker

COOLDOWN = 0.05


def opened_breaker() -> CircuitBreaker:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=COOLDOWN)
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    return breaker


def test_opens_after_threshold_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=COOLDOWN)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.closed
    breaker.record_failure()
    assert breaker.state is BreakerState.open
    assert not breaker.allow()


def test_after_cooldown_exactly_one_probe_is_allowed() -> None:
    breaker = opened_breaker()
    time.sleep(COOLDOWN * 1.5)
    assert breaker.allow()
    assert breaker.state is BreakerState.half_open
    assert not breaker.allow()
    assert not breaker.allow()


def test_successful_probe_closes_and_failed_probe_reopens() -> None:
    breaker = opened_breaker()
    time.sleep(COOLDOWN * 1.5)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.open
    assert not breaker.allow()
    time.sleep(COOLDOWN * 1.5)
    assert breaker.allow()
    assert breaker.record_success() is True
    assert breaker.state is BreakerState.closed
    assert breaker.allow()


def test_late_success_of_a_call_started_before_opening_does_not_close() -> None:
    breaker = opened_breaker()
    assert breaker.record_success() is False
    assert breaker.state is BreakerState.open
    assert not breaker.allow()
