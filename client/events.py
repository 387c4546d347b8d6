"""Reading a run's event stream from outside: resumable, across continue-as-new.

The SDK's `WorkflowStreamClient` long-polls the run (an update that returns as soon as
there is something new), follows it to its next execution when it continues as new, and,
once it has ended, reads what is left with a query and stops. Offsets are positions in
the run's whole stream, kept across continue-as-new: resuming from the offset after the
last event seen loses nothing and repeats nothing (a continued run keeps its last
`CARRIED_EVENTS` events; a reader further behind resumes at the first one kept).
"""

from collections.abc import AsyncIterator
from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._domain import contract
from durable_agents._domain.events import RunEvent

# How often a reader that has caught up asks again (each ask that finds nothing new
# waits in the run, so this is the pause between answers, not a polling interval).
POLL_COOLDOWN = timedelta(milliseconds=100)


class InvalidOffsetError(ValueError):
    """An offset that is not a whole number >= 0; the message says what was given."""


class RunNotFoundError(LookupError):
    """No run with that id; the message names it."""


def parse_offset(raw: object) -> int:
    """``raw`` (an int, or its decimal text) as a stream offset, or `InvalidOffsetError`."""
    if isinstance(raw, bool):
        raise InvalidOffsetError(f"offset must be a whole number >= 0, got {raw!r}")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.strip().isdecimal() and raw.strip().isascii():
        value = int(raw.strip())
    else:
        raise InvalidOffsetError(f"offset must be a whole number >= 0, got {raw!r}")
    if value < 0:
        raise InvalidOffsetError(f"offset must be a whole number >= 0, got {value}")
    return value


async def run_events(
    temporal: Client, workflow_id: str, from_offset: int = 0
) -> AsyncIterator[RunEvent]:
    """The run's events from ``from_offset`` on, each with its ``offset``; ends with the run."""
    offset = parse_offset(from_offset)
    try:
        await temporal.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            hint = "see the runs with: agentctl list"
            raise RunNotFoundError(f"no run {workflow_id!r}; {hint}") from None
        raise
    stream = WorkflowStreamClient.create(temporal, workflow_id)
    async for item in stream.subscribe(
        [contract.EVENTS_TOPIC],
        from_offset=offset,
        result_type=RunEvent,
        poll_cooldown=POLL_COOLDOWN,
    ):
        yield item.data.model_copy(update={"offset": item.offset})
