"""Per-tool circuit breakers, kept in the memory of one worker process.

When a tool keeps failing because it is unhealthy (its service is down, a lock is held for
minutes), retrying every call against it only adds load and burns attempts. After
``threshold`` consecutive failures the tool's circuit *opens*: calls are refused at once
for ``reset_s`` seconds, with the time left so Temporal can retry them after it. Then the
circuit is *half-open*: exactly one probe call goes through; its success closes the
circuit, its failure opens it for another ``reset_s``.

Only failures that mean "the tool is unhealthy" may be recorded (`ToolUnavailable`, a
timeout). Input errors, a tool's own "this cannot work" answer and cancellations say
nothing about its health: record them with `CircuitBreakers.release` (so a probe frees
its slot), never with `CircuitBreakers.record_failure`, or one bad plan could cut a
healthy tool off for everybody.

The state is per worker process on purpose: it needs no coordination, and a worker that
cannot reach a tool should stop hammering it whatever the other workers see.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from temporalio.exceptions import ApplicationError

from durable_agents._domain.errors import ErrorType

DEFAULT_THRESHOLD = 5
DEFAULT_RESET_S = 30.0
# What callers refused while a probe is in flight are told to wait: short, because the
# probe usually answers quickly and closes the circuit.
PROBE_WAIT_S = 1.0


class CircuitOpenError(Exception):
    """A call refused because the tool's circuit is open (or its probe is in flight)."""

    def __init__(self, tool: str, remaining_s: float) -> None:
        super().__init__(f"circuit of tool '{tool}' is open; retry in {remaining_s:.1f}s")
        self.tool = tool
        self.remaining_s = remaining_s


@dataclass
class _Circuit:
    failures: int = 0
    open_until: float | None = None  # set while open or half-open
    probe_started: float | None = None  # set while a probe call is in flight


class CircuitBreakers:
    """The circuits of all tools of one worker; share one instance between activity calls.

    ``clock`` returns seconds and must never go back (a fake one in tests). Methods take a
    lock: activities run on one event loop, but sync activities or other threads may not.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._circuits: dict[str, _Circuit] = {}

    def before_call(self, tool: str, threshold: int, reset_s: float) -> None:
        """Let a call to ``tool`` through, or raise `CircuitOpenError`.

        A ``threshold`` below 1 disables the breaker for this tool. Once ``reset_s`` has
        passed since opening, one call becomes the probe; a probe that never reports
        (a caller that forgot `release`) is forgotten after ``reset_s``, so a lost probe
        cannot keep the circuit half-open forever.
        """
        if threshold < 1:
            return
        with self._lock:
            c = self._circuits.get(tool)
            if c is None or c.open_until is None:
                return
            now = self._clock()
            if now < c.open_until:
                raise CircuitOpenError(tool, c.open_until - now)
            if c.probe_started is not None and now - c.probe_started < reset_s:
                raise CircuitOpenError(tool, PROBE_WAIT_S)
            c.probe_started = now

    def record_success(self, tool: str) -> None:
        """The tool answered: close its circuit and forget its failures.

        A success while open (a call let in before the circuit opened) closes it too:
        the tool evidently works again.
        """
        with self._lock:
            self._circuits.pop(tool, None)

    def record_failure(self, tool: str, threshold: int, reset_s: float) -> None:
        """The tool proved unhealthy: count it, and open the circuit at ``threshold``."""
        if threshold < 1:
            return
        with self._lock:
            c = self._circuits.setdefault(tool, _Circuit())
            now = self._clock()
            if c.open_until is not None:
                # While open, failures are of calls let in earlier: they must not extend
                # the wait. Once the wait is over, a failure is the probe's: reopen.
                if now >= c.open_until:
                    c.open_until, c.probe_started = now + reset_s, None
                return
            c.failures += 1
            if c.failures >= threshold:
                c.open_until = now + reset_s

    def release(self, tool: str) -> None:
        """The call ended without saying anything about the tool's health.

        Frees the probe slot (so the next call probes) and changes nothing else.
        """
        with self._lock:
            c = self._circuits.get(tool)
            if c is not None:
                c.probe_started = None

    def state(self, tool: str) -> str:
        """``closed``, ``open`` (refusing), or ``half_open`` (the next call, or the one in
        flight, is a probe). For tests and metrics."""
        with self._lock:
            c = self._circuits.get(tool)
            if c is None or c.open_until is None:
                return "closed"
            return "open" if self._clock() < c.open_until else "half_open"


def to_application_error(err: CircuitOpenError) -> ApplicationError:
    """The retryable failure an activity raises for a refused call: Temporal retries it
    once the circuit may let it through, not on the tool's usual backoff."""
    return ApplicationError(
        str(err),
        type=ErrorType.CIRCUIT_OPEN,
        next_retry_delay=timedelta(seconds=max(err.remaining_s, 0.001)),
    )
