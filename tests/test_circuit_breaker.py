"""The per-tool circuit breaker, driven by a fake clock."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from durable_agents._activities.circuit_breaker import (
    PROBE_WAIT_S,
    CircuitBreakers,
    CircuitOpenError,
    to_application_error,
)
from durable_agents._domain.errors import ErrorType

pytestmark = pytest.mark.unit

TOOL = "flaky"
THRESHOLD = 3
RESET_S = 30.0


class FakeClock:
    """Seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breakers(clock: FakeClock) -> CircuitBreakers:
    return CircuitBreakers(clock=clock)


def fail(breakers: CircuitBreakers, times: int, tool: str = TOOL) -> None:
    for _ in range(times):
        breakers.before_call(tool, THRESHOLD, RESET_S)
        breakers.record_failure(tool, THRESHOLD, RESET_S)


def open_circuit(breakers: CircuitBreakers) -> None:
    fail(breakers, THRESHOLD)
    assert breakers.state(TOOL) == "open"


def test_opens_after_threshold_consecutive_failures(breakers: CircuitBreakers) -> None:
    fail(breakers, THRESHOLD - 1)
    assert breakers.state(TOOL) == "closed"
    breakers.before_call(TOOL, THRESHOLD, RESET_S)  # still let through
    breakers.record_failure(TOOL, THRESHOLD, RESET_S)
    assert breakers.state(TOOL) == "open"


def test_fails_fast_while_open_with_the_time_left(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    open_circuit(breakers)
    clock.now += 10
    with pytest.raises(CircuitOpenError) as exc:
        breakers.before_call(TOOL, THRESHOLD, RESET_S)
    assert exc.value.tool == TOOL
    assert exc.value.remaining_s == pytest.approx(RESET_S - 10)
    clock.now += 19.5
    with pytest.raises(CircuitOpenError) as exc:
        breakers.before_call(TOOL, THRESHOLD, RESET_S)
    assert exc.value.remaining_s == pytest.approx(0.5)


def test_other_tools_are_not_affected(breakers: CircuitBreakers, clock: FakeClock) -> None:
    open_circuit(breakers)
    breakers.before_call("healthy", THRESHOLD, RESET_S)
    assert breakers.state("healthy") == "closed"


def test_one_probe_after_reset_and_a_concurrent_call_is_refused(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    open_circuit(breakers)
    clock.now += RESET_S
    assert breakers.state(TOOL) == "half_open"
    breakers.before_call(TOOL, THRESHOLD, RESET_S)  # the probe
    with pytest.raises(CircuitOpenError) as exc:
        breakers.before_call(TOOL, THRESHOLD, RESET_S)
    assert exc.value.remaining_s == PROBE_WAIT_S
    assert breakers.state(TOOL) == "half_open"


def test_a_successful_probe_closes_the_circuit(breakers: CircuitBreakers, clock: FakeClock) -> None:
    open_circuit(breakers)
    clock.now += RESET_S
    breakers.before_call(TOOL, THRESHOLD, RESET_S)
    breakers.record_success(TOOL)
    assert breakers.state(TOOL) == "closed"
    breakers.before_call(TOOL, THRESHOLD, RESET_S)
    breakers.before_call(TOOL, THRESHOLD, RESET_S)
    # The count starts again from zero.
    fail(breakers, THRESHOLD - 1)
    assert breakers.state(TOOL) == "closed"


def test_a_failed_probe_reopens_for_reset_s(breakers: CircuitBreakers, clock: FakeClock) -> None:
    open_circuit(breakers)
    clock.now += RESET_S + 5
    breakers.before_call(TOOL, THRESHOLD, RESET_S)
    clock.now += 2  # the probe takes a while to fail
    breakers.record_failure(TOOL, THRESHOLD, RESET_S)
    assert breakers.state(TOOL) == "open"
    with pytest.raises(CircuitOpenError) as exc:
        breakers.before_call(TOOL, THRESHOLD, RESET_S)
    assert exc.value.remaining_s == pytest.approx(RESET_S)
    clock.now += RESET_S
    breakers.before_call(TOOL, THRESHOLD, RESET_S)  # the next probe


def test_a_success_in_between_resets_the_count(breakers: CircuitBreakers) -> None:
    fail(breakers, THRESHOLD - 1)
    breakers.before_call(TOOL, THRESHOLD, RESET_S)
    breakers.record_success(TOOL)
    fail(breakers, THRESHOLD - 1)
    assert breakers.state(TOOL) == "closed"
    fail(breakers, 1)
    assert breakers.state(TOOL) == "open"


def test_late_failures_while_open_do_not_extend_the_wait(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    open_circuit(breakers)
    clock.now += 20
    breakers.record_failure(TOOL, THRESHOLD, RESET_S)  # a call let in before opening
    with pytest.raises(CircuitOpenError) as exc:
        breakers.before_call(TOOL, THRESHOLD, RESET_S)
    assert exc.value.remaining_s == pytest.approx(RESET_S - 20)


def test_a_released_probe_lets_the_next_call_probe(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    open_circuit(breakers)
    clock.now += RESET_S
    breakers.before_call(TOOL, THRESHOLD, RESET_S)
    breakers.release(TOOL)  # e.g. the probe's arguments were invalid
    assert breakers.state(TOOL) == "half_open"
    breakers.before_call(TOOL, THRESHOLD, RESET_S)
    with pytest.raises(CircuitOpenError):
        breakers.before_call(TOOL, THRESHOLD, RESET_S)


def test_a_lost_probe_is_forgotten_after_reset_s(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    open_circuit(breakers)
    clock.now += RESET_S
    breakers.before_call(TOOL, THRESHOLD, RESET_S)  # never reports
    clock.now += RESET_S
    breakers.before_call(TOOL, THRESHOLD, RESET_S)  # a new probe


def test_threshold_below_one_disables_the_breaker(breakers: CircuitBreakers) -> None:
    for _ in range(10):
        breakers.before_call(TOOL, 0, RESET_S)
        breakers.record_failure(TOOL, 0, RESET_S)
    assert breakers.state(TOOL) == "closed"


def test_to_application_error_is_retryable_after_the_time_left() -> None:
    err = to_application_error(CircuitOpenError(TOOL, 12.5))
    assert err.type == ErrorType.CIRCUIT_OPEN
    assert not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=12.5)
    assert TOOL in str(err)


def test_exactly_one_probe_among_many_threads(breakers: CircuitBreakers, clock: FakeClock) -> None:
    open_circuit(breakers)
    clock.now += RESET_S

    def attempt(_: int) -> bool:
        try:
            breakers.before_call(TOOL, THRESHOLD, RESET_S)
        except CircuitOpenError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert sum(pool.map(attempt, range(200))) == 1
