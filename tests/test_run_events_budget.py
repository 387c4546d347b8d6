"""Token batches are updates, and the server takes a bounded number of updates per
execution (``history.maxTotalUpdates``): a run takes at most its limits' budget of them,
so approvals keep their room. Past the budget a batch is refused, the model call goes on,
and its answer arrives whole with ``call_finished``.

Real dev server, real worker, the real ``openai`` client streaming from the scripted model.
"""

import asyncio
import json
import threading

from temporalio.api.enums.v1 import EventType

from durable_agents._domain import contract
from durable_agents._domain.approvals import Decision
from durable_agents._domain.events import EventKind, RunEvent, Transcript
from durable_agents._domain.run import RunStatus
from durable_agents._domain.spec import AgentSpec, LoopLimits
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

ANSWER = "The rocket was launched. " * 12  # long enough to arrive in many chunks
PLAN = {
    "rationale": "The rocket goes once a person says so. " * 8,  # many chunks
    "done": False,
    "tasks": [tool_task("go", "launch_rocket", name="apollo")],
}


async def follow(agents: LocalAgents, workflow_id: str, seen: threading.Event) -> list[RunEvent]:
    """Every event until the run ends; the first tokens seen open ``seen``."""
    events = []
    async for event in agents.events(workflow_id):
        events.append(event)
        if event.kind is EventKind.TOKENS:
            seen.set()
    return events


async def accepted_token_updates(agents: LocalAgents, workflow_id: str) -> int:
    """How many ``stream_tokens`` updates the run's history holds (accepted ones)."""
    history = await agents.temporal.get_workflow_handle(workflow_id).fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        == contract.STREAM_TOKENS
    )


def small_budget(agents: LocalAgents, batches: int) -> AgentSpec:
    """The test agent with a budget of ``batches`` token batches per execution."""
    limits = LoopLimits(token_batches_per_execution=batches)
    return agents.catalog.plugin("test-agent").build_spec().model_copy(update={"limits": limits})


async def test_a_streamed_answer_cut_by_the_budget_arrives_whole(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="a")), purpose="plan")
    # One batch before the reply waits for the client to have seen it, then the rest,
    # which the budget of one batch refuses.
    seen = threading.Event()
    model.enqueue(Reply.text(ANSWER, chunk_chars=5, gate=seen, gate_after=3), purpose="summarize")
    handle = await agents.start_run(small_budget(agents, 1), "record a", request_id="cut")
    events, report = await asyncio.gather(
        follow(agents, handle.workflow_id, seen), agents.result(handle.workflow_id)
    )
    assert report.status is RunStatus.COMPLETED, report.errors
    assert report.answer == ANSWER
    assert await accepted_token_updates(agents, handle.workflow_id) == 1
    (call,) = {e.call_id for e in events if e.kind is EventKind.TOKENS}
    streamed = "".join(e.text for e in events if e.kind is EventKind.TOKENS)
    assert streamed and ANSWER.startswith(streamed) and streamed != ANSWER
    transcript = Transcript()
    for event in events:
        transcript.apply(event)
    # The streamed part is replaced by the whole answer, which call_finished carried.
    assert transcript.text_of(call) == ANSWER
    assert transcript.calls[call].finished and not transcript.calls[call].failed


async def test_an_approval_after_the_budget_is_used_up_is_taken(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    # The plan streams one batch, waits for the client to have seen it, then the rest is
    # refused; then the run waits for a person.
    seen = threading.Event()
    plan = Reply.text(json.dumps(PLAN), chunk_chars=5, gate=seen, gate_after=3)
    model.enqueue(plan, purpose="plan")
    model.enqueue(plan_reply(done=True), purpose="plan")
    model.enqueue(Reply.text(ANSWER, chunk_chars=5), purpose="summarize")
    handle = await agents.start_run(small_budget(agents, 1), "launch", request_id="budget")
    following = asyncio.create_task(follow(agents, handle.workflow_id, seen))
    request = await pending_request(agents, handle.workflow_id)
    await agents.approve(
        handle.workflow_id,
        Decision(request_id=request.id, args_digest=request.args_digest, approver="ana"),
    )
    report = await agents.result(handle.workflow_id)
    events = await following
    assert report.status is RunStatus.COMPLETED, report.errors
    assert report.approvals[0].decided_by == "ana"
    assert [s.outcome.value for s in report.steps] == ["ok"]
    assert await accepted_token_updates(agents, handle.workflow_id) == 1
    # The answer, whose batches were all refused, arrives whole with call_finished.
    (answer,) = [e for e in events if e.kind is EventKind.CALL_FINISHED and e.label == "answer"]
    assert answer.text == ANSWER
    assert events[-1].kind is EventKind.RUN_FINISHED
