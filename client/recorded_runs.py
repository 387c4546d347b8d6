"""Finished runs read back from their histories: request, model replies, report.

The replies are what each ``plan``, ``llm_complete`` and ``evaluate`` activity returned,
in the order the run received them, with the purpose and label of the call each
answered and the usage the provider reported; a re-run fed these replies asks the same
questions of the current code without any model. A reply kept in the payload store (over
a few KB) is read through ``read_ref`` (the worker's data directory); without it such a
run is refused.
"""

import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.api.common.v1 import Payloads
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus

from durable_agents._domain import contract
from durable_agents._domain.eval_regression import RecordedReply
from durable_agents._domain.evaluation import EvalReply
from durable_agents._domain.llm import LlmCall, LlmResult, PayloadRef
from durable_agents._domain.plan import PlanReply
from durable_agents._domain.run import RecordedRequest, RunReport

ReadRef = Callable[[PayloadRef], str]
_RESULT_TYPES: dict[str, type[Any]] = {
    contract.PLAN: PlanReply,
    contract.LLM_COMPLETE: LlmResult,
    contract.EVALUATE: EvalReply,
}


class UnreplayableRunError(LookupError):
    """A run that cannot be re-run from its history; the message says why."""


@dataclass(frozen=True)
class RecordedRun:
    """What a finished run asked for, what the model told it, and how it ended."""

    workflow_id: str
    request: RecordedRequest
    replies: list[RecordedReply]
    report: RunReport


async def finished_runs(temporal: Client, query: str, limit: int) -> AsyncIterator[str]:
    """Workflow ids of finished runs matching a visibility query (top-level runs only)."""
    base = f"WorkflowType = '{contract.AGENT_RUN}' AND ExecutionStatus = 'Completed'"
    full = f"{base} AND ({query})" if query.strip() else base
    async for wf in temporal.list_workflows(full, limit=limit):
        if wf.parent_id is None:
            yield wf.id


async def read_recorded_run(
    temporal: Client, workflow_id: str, read_ref: ReadRef | None = None
) -> RecordedRun:
    """The run's request, replies and report; `UnreplayableRunError` when it has none."""
    handle = temporal.get_workflow_handle(workflow_id, result_type=RunReport)
    desc = await handle.describe()
    if desc.status is not WorkflowExecutionStatus.COMPLETED:
        raise UnreplayableRunError(f"{workflow_id} has not completed")
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    if started.continued_execution_run_id:
        raise UnreplayableRunError(
            f"{workflow_id} continued as new; only runs of one execution are re-run"
        )
    try:
        return await _read(temporal, workflow_id, history.events, read_ref)
    except ValueError as err:  # a payload this client cannot decode (keys, a format)
        raise UnreplayableRunError(f"{workflow_id}: its history cannot be read: {err}") from None


async def _read(
    temporal: Client, workflow_id: str, events: Sequence[HistoryEvent], read_ref: ReadRef | None
) -> RecordedRun:
    started = events[0].workflow_execution_started_event_attributes
    (request,) = await temporal.data_converter.decode(started.input.payloads[:1], [RecordedRequest])
    purposes: dict[int, tuple[str, str, str]] = {}
    replies: list[RecordedReply] = []
    for event in events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name in _RESULT_TYPES:
                call = await _decode(temporal, attrs.input, LlmCall)
                purposes[event.event_id] = (attrs.activity_type.name, call.purpose, call.label)
        elif event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes
            if done.scheduled_event_id in purposes:
                name, purpose, label = purposes[done.scheduled_event_id]
                result = await _decode(temporal, done.result, _RESULT_TYPES[name])
                reply = _reply(workflow_id, purpose, result, read_ref)
                replies.append(reply.model_copy(update={"label": label}))
    handle = temporal.get_workflow_handle(workflow_id, result_type=RunReport)
    report = await handle.result()
    return RecordedRun(workflow_id, request, replies, report)


async def _decode(temporal: Client, payloads: Payloads, kind: type[Any]) -> Any:
    (value,) = await temporal.data_converter.decode(payloads.payloads[:1], [kind])
    return value


def _reply(workflow_id: str, purpose: str, result: Any, read_ref: ReadRef | None) -> RecordedReply:
    llm: LlmResult = result if isinstance(result, LlmResult) else result.result
    if isinstance(result, PlanReply):
        # The activity keeps the parsed plan, not the text (its JSON is the same plan).
        text = result.plan.model_dump_json() if result.plan else llm.text
    elif isinstance(result, EvalReply):
        text = json.dumps({"judgement": result.judgement.value, "reason": result.reason})
    elif llm.ref is not None:
        if read_ref is None:
            raise UnreplayableRunError(
                f"{workflow_id} has a model reply kept in the payload store; give the "
                "worker's data directory (--data-dir) to read it"
            )
        text = read_ref(llm.ref)
    else:
        text = llm.text
    return RecordedReply(
        purpose=purpose,
        text=text,
        input_tokens=llm.input_tokens,
        output_tokens=llm.output_tokens,
    )
