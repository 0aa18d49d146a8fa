"""The circuit breaker's state machine, on a clock the test moves (the fault tests in
tests/resilience show it working against real Redis)."""

from app.cache.breaker import BreakerState, CircuitBreaker

COOLDOWN = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def opened_breaker(clock: Clock) -> CircuitBreaker:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=COOLDOWN, clock=clock)
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    return breaker


def test_opens_after_threshold_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=COOLDOWN, clock=Clock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.closed
    breaker.record_failure()
    assert breaker.state is BreakerState.open
    assert not breaker.allow()


def test_stays_open_until_the_cooldown_has_passed() -> None:
    clock = Clock()
    breaker = opened_breaker(clock)
    clock.now += COOLDOWN * 0.99
    assert not breaker.allow()
    assert breaker.state is BreakerState.open


def test_after_cooldown_exactly_one_probe_is_allowed() -> None:
    clock = Clock()
    breaker = opened_breaker(clock)
    clock.now += COOLDOWN
    assert breaker.allow()
    assert breaker.state is BreakerState.half_open
    assert not breaker.allow()
    assert not breaker.allow()


def test_successful_probe_closes_and_failed_probe_reopens() -> None:
    clock = Clock()
    breaker = opened_breaker(clock)
    clock.now += COOLDOWN
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.open
    assert not breaker.allow()
    clock.now += COOLDOWN
    assert breaker.allow()
    assert breaker.record_success() is True
    assert breaker.state is BreakerState.closed
    assert breaker.allow()


def test_late_success_of_a_call_started_before_opening_does_not_close() -> None:
    breaker = opened_breaker(Clock())
    assert breaker.record_success() is False
    assert breaker.state is BreakerState.open
    assert not breaker.allow()


def test_an_abandoned_probe_reopens_for_a_fresh_cooldown_then_probes_again() -> None:
    clock = Clock()
    breaker = opened_breaker(clock)
    clock.now += COOLDOWN
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.half_open
    assert not breaker.allow()  # one probe at a time

    breaker.abandon_probe()  # its caller was cancelled: no answer
    assert breaker.state is BreakerState.open
    assert not breaker.allow()  # a fresh cool-down from now
    clock.now += COOLDOWN
    assert breaker.allow()  # never stuck half-open: another caller probes
    assert breaker.record_success()
    assert breaker.state is BreakerState.closed


def test_abandon_is_a_no_op_outside_a_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=COOLDOWN, clock=clock)
    breaker.abandon_probe()
    assert breaker.state is BreakerState.closed
    breaker = opened_breaker(clock)
    breaker.abandon_probe()
    assert breaker.state is BreakerState.open
