"""Reading a run's event stream from outside: resumable, across continue-as-new.

A reader asks the run for its events from an offset with the stream's poll *query*
(``PollInput`` -> ``PollResult``). A query writes nothing to the run's history and takes
none of the room the server keeps for updates (approvals and budget extensions are
updates), however many readers follow a run. Its answer goes through the client's data
converter like any other, codec included. A query is answered by a worker, so once it has
caught up the reader asks the *server* instead (the run's description: every
``poll_interval`` while a model call is in flight, `IDLE_FACTOR` times less often
between) and queries again only when the history has grown and no workflow task is under
way: the run publishes only in workflow tasks, and each one it completes adds to its
history.

Each query is pinned to one execution and refused once that execution has closed: a run
that continued as new is followed to its next execution; a run that ended is read once
more (the worker answers from its history) and the iterator stops. Offsets are positions
in the run's whole stream, kept across continue-as-new: resuming from the offset after
the last event seen loses nothing and repeats nothing (a continued run keeps its last
`CARRIED_EVENTS` events; a reader further behind resumes at the first one kept).

The same description carries the text a model call in flight has heartbeated
(`LiveCalls`): ``tokens`` events, which carry the offset of the last stream event before
them. A token event's `RunEvent.cursor` also says how much of its call's text was seen,
so resuming from it does not give that text again.
"""

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator
from datetime import timedelta

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryRejectedError,
)
from temporalio.common import QueryRejectCondition
from temporalio.contrib.workflow_streams import PollInput, PollResult
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._client.live_calls import LiveCalls, Resume
from durable_agents._domain import contract
from durable_agents._domain.events import RunEvent

# How often a reader that has caught up asks again while a model call is in flight: the
# latency it adds to each piece of text, against one description per interval per reader.
POLL_INTERVAL = timedelta(milliseconds=75)
# Between model calls it asks this many times less often (steps are not text to follow
# as it is written; a follower costs the run less).
IDLE_FACTOR = 3
# Passing answers after which the reader asks again instead of giving up.
_PASSING = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}
)


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


def parse_cursor(raw: object) -> tuple[int, Resume | None]:
    """``raw`` (an offset, or a `RunEvent.cursor`) as where to resume, or
    `InvalidOffsetError`."""
    if not isinstance(raw, str) or ":" not in raw:
        return parse_offset(raw), None
    head, *call, attempt, chars = raw.split(":")
    if not call or not all(call) or not attempt.isdecimal() or not chars.isdecimal():
        raise InvalidOffsetError(
            f"a cursor is OFFSET or OFFSET:CALL:ATTEMPT:CHARS, as events give it; got {raw!r}"
        )
    return parse_offset(head), Resume(":".join(call), int(attempt), int(chars))


async def _current_run(temporal: Client, workflow_id: str) -> str:
    """The id of the run's latest execution, or `RunNotFoundError`."""
    try:
        described = await temporal.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            hint = "see the runs with: agentctl list"
            raise RunNotFoundError(f"no run {workflow_id!r}; {hint}") from None
        raise
    return described.run_id


async def _ask(
    handle: WorkflowHandle[object, object], offset: int, *, open_only: bool
) -> PollResult:
    """The execution's events from ``offset`` on (``open_only``: refused once it closed)."""
    result: PollResult = await handle.query(
        contract.STREAM_POLL,
        PollInput(topics=[contract.EVENTS_TOPIC], from_offset=offset),
        result_type=PollResult,
        reject_condition=QueryRejectCondition.NOT_OPEN if open_only else None,
    )
    return result


def _events(temporal: Client, result: PollResult) -> list[RunEvent]:
    """The answer's items as events, each with its offset (a malformed item is skipped:
    only the run publishes on its stream)."""
    converter = temporal.data_converter.payload_converter
    events: list[RunEvent] = []
    for item in result.items:
        try:
            payload = Payload.FromString(base64.b64decode(item.data, validate=True))
            event = converter.from_payload(payload, RunEvent)
        except (binascii.Error, ValueError, TypeError):
            continue
        events.append(event.model_copy(update={"offset": item.offset}))
    return events


async def run_events(
    temporal: Client,
    workflow_id: str,
    from_offset: int | str = 0,
    poll_interval: timedelta = POLL_INTERVAL,
) -> AsyncIterator[RunEvent]:
    """The run's events from ``from_offset`` (an offset or a cursor) on, each with its
    ``offset``; ends with the run."""
    offset, resume = parse_cursor(from_offset)
    pause = max(poll_interval.total_seconds(), 0.01)
    run_id = await _current_run(temporal, workflow_id)
    live = LiveCalls(temporal, resume)
    asked_at = -1  # the history's length when the run was last asked (-1: ask again)
    while True:
        handle = temporal.get_workflow_handle(workflow_id, run_id=run_id)
        try:
            described = await handle.describe()
            result = None
            if _worth_asking(described, asked_at):
                result = await _ask(handle, offset, open_only=True)
            length = described.raw_description.workflow_execution_info.history_length
        except WorkflowQueryRejectedError as err:
            if err.status is WorkflowExecutionStatus.CONTINUED_AS_NEW:
                run_id, asked_at = await _current_run(temporal, workflow_id), -1
                continue
            async for event in _rest(temporal, handle, offset):
                yield event
            return
        except RPCError as err:
            if err.status not in _PASSING:
                raise
            await asyncio.sleep(pause)
            continue
        if result is not None:
            asked_at = -1 if result.more_ready else length
            for event in _events(temporal, result):
                live.saw(event)
                yield event
            offset = result.next_offset
        if offset > 0:
            caught_up = result is None or not result.more_ready
            for event in await live.take(
                described.raw_description, offset - 1, caught_up=caught_up
            ):
                yield event
        if asked_at != -1:
            await asyncio.sleep(pause if live.model_call_pending else pause * IDLE_FACTOR)


def _worth_asking(described: WorkflowExecutionDescription, asked_at: int) -> bool:
    """Whether the run may have published since it was asked at history length
    ``asked_at``: its history grew and no workflow task is under way (its events come
    when it completes), or it is no longer running."""
    if described.status is not WorkflowExecutionStatus.RUNNING:
        return True
    raw = described.raw_description
    grew = raw.workflow_execution_info.history_length != asked_at
    return grew and not raw.HasField("pending_workflow_task")


async def _rest(
    temporal: Client, handle: WorkflowHandle[object, object], offset: int
) -> AsyncIterator[RunEvent]:
    """What a closed execution published from ``offset`` on."""
    while True:
        result = await _ask(handle, offset, open_only=False)
        for event in _events(temporal, result):
            yield event
        offset = result.next_offset
        if not result.more_ready:
            return
