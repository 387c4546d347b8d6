"""History size of a long run, across continue-as-new, and where the bytes go.

A *step* is one plan + one task; it is counted when the task's activity completes
(``invoke_tool``, or ``llm_complete`` for purpose ``execute``: the final answer, purpose
``summarize``, is not a step). Model activities are named ``llm_complete:<purpose>``
here. Sizes are ``HistoryEvent.ByteSize()`` of the events as the server returns them,
summed over every execution of the workflow id (oldest first).
"""

import asyncio
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory

from bench.agent import Goal, bench_spec
from durable_agents._domain import contract
from durable_agents._domain.run import RunStatus
from tests.support.agents import LocalAgents

STEP_ACTIVITIES = frozenset({contract.INVOKE_TOOL, f"{contract.LLM_COMPLETE}:execute"})
NOTE = (
    "At step k (a step = one plan + one task, counted when the task's activity completes): "
    "the value under key 'k' = bytes (events) of every execution of the workflow id from its first "
    "event up to step k, divided by k (so the start event and the state carried by each "
    "continue-as-new are amortised); 'current_execution' = bytes (events) of the execution "
    "holding step k from its start up to step k, divided by the steps done in it."
)


async def executions(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every execution of ``workflow_id``, oldest first (followed back through the chain)."""
    histories: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        start = history.events[0].workflow_execution_started_event_attributes
        run_id = start.continued_execution_run_id or None
        if run_id is None:
            return histories[::-1]


def _activity_name(scheduled: Any) -> str:
    name = str(scheduled.activity_type.name)
    if name != contract.LLM_COMPLETE or not scheduled.input.payloads:
        return name
    try:
        purpose = json.loads(scheduled.input.payloads[0].data).get("purpose", "?")
    except (ValueError, AttributeError):
        purpose = "?"
    return f"{name}:{purpose}"


def _activity_types(events: Iterable[Any]) -> dict[int, str]:
    return {
        e.event_id: _activity_name(e.activity_task_scheduled_event_attributes)
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }


def _is_step_end(event: Any, types: dict[int, str]) -> bool:
    if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        return False
    scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
    return types.get(scheduled) in STEP_ACTIVITIES


def per_step(
    histories: Sequence[WorkflowHistory], checkpoints: Sequence[int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(bytes per step, events per step) at each checkpoint, both ways (see `NOTE`)."""
    wanted = set(checkpoints)
    size: dict[str, dict[str, float]] = {"all_executions": {}, "current_execution": {}}
    count: dict[str, dict[str, float]] = {"all_executions": {}, "current_execution": {}}
    total_bytes = total_events = step = 0
    for history in histories:
        types = _activity_types(history.events)
        run_bytes = run_events = run_steps = 0
        for event in history.events:
            n = event.ByteSize()
            total_bytes, run_bytes = total_bytes + n, run_bytes + n
            total_events, run_events = total_events + 1, run_events + 1
            if not _is_step_end(event, types):
                continue
            step, run_steps = step + 1, run_steps + 1
            if step in wanted:
                size["all_executions"][str(step)] = round(total_bytes / step, 1)
                size["current_execution"][str(step)] = round(run_bytes / run_steps, 1)
                count["all_executions"][str(step)] = round(total_events / step, 2)
                count["current_execution"][str(step)] = round(run_events / run_steps, 2)
    return (
        {**size["all_executions"], "current_execution": size["current_execution"], "note": NOTE},
        {**count["all_executions"], "current_execution": count["current_execution"], "note": NOTE},
    )


def steps_done(histories: Sequence[WorkflowHistory]) -> int:
    """How many steps the executions completed."""
    total = 0
    for history in histories:
        types = _activity_types(history.events)
        total += sum(_is_step_end(e, types) for e in history.events)
    return total


def breakdown(histories: Sequence[WorkflowHistory], steps: int) -> dict[str, Any]:
    """Bytes and events per step by event type, bytes by activity, the largest events."""
    by_type: Counter[str] = Counter()
    events: Counter[str] = Counter()
    by_activity: Counter[str] = Counter()
    largest: list[tuple[int, str]] = []
    for history in histories:
        types = _activity_types(history.events)
        for e in history.events:
            name = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_").lower()
            n = e.ByteSize()
            by_type[name] += n
            events[name] += 1
            largest.append((n, name))
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                by_activity[f"{types[e.event_id]} input"] += n
            elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                scheduled = e.activity_task_completed_event_attributes.scheduled_event_id
                by_activity[f"{types.get(scheduled, '?')} result"] += n
    per = max(steps, 1)
    return {
        "steps": steps,
        "executions": len(histories),
        "total_bytes": sum(by_type.values()),
        "total_events": sum(events.values()),
        "bytes_per_step_by_event_type": {k: round(v / per, 1) for k, v in by_type.most_common()},
        "events_per_step_by_event_type": {k: round(v / per, 2) for k, v in events.most_common()},
        "bytes_per_step_by_activity": {k: round(v / per, 1) for k, v in by_activity.most_common()},
        "largest_events": [f"{name}: {n} B" for n, name in sorted(largest, reverse=True)[:5]],
    }


async def long_run(
    agents: LocalAgents,
    goal: Goal,
    checkpoints: Sequence[int],
    continue_as_new_every: int,
    timeout_s: float = 1800.0,
) -> dict[str, Any]:
    """Run ``goal`` to the end on the agents' queue and measure its history.

    The run is longer than the test agent's budget caps allow, so it runs a variant
    (`bench_spec`) that ``agents`` loads into its in-process worker's catalog.
    """
    spec = bench_spec(agents.catalog, goal.steps, continue_as_new_every)
    handle = await agents.start_run(spec, goal.text(), request_id=goal.tag)
    try:
        report = await asyncio.wait_for(agents.result(handle.workflow_id), timeout_s)
        completed = report.status is RunStatus.COMPLETED
    except (TimeoutError, WorkflowFailureError):
        completed = False
    histories = await executions(agents.temporal, handle.workflow_id)
    done = steps_done(histories)
    size, count = per_step(histories, checkpoints)
    return {
        "history_bytes_per_step": size,
        "history_events_per_step": count,
        "long_run_completed": completed and done == goal.steps,
        "history_breakdown": {
            **breakdown(histories, done),
            "continue_as_new_every": continue_as_new_every,
            "reply_bytes": goal.reply,
        },
    }
