"""Recorded histories replay against the current workflow code.

A change that would break runs in flight (a different command order without a
``workflow.patched`` guard) fails here. ``basic_run.json`` was recorded before the
compact-history patch (see workflows/versions.py) and must keep replaying;
``UPDATE_HISTORIES=1`` re-records ``compact_run.json``, the current code's history.
``user_ledger_pre_sweep.json`` is a user's ledger recorded before its sweep (the
ledger-sweep patch) and ``user_ledger_sweep.json`` one that settled a terminated run.
Those four were recorded before the worker owned the agent (the worker-owns-agent and
ledger-signed patches): the run carried its spec, decisions were signals, and the ledger
took unsigned messages. ``admitted_run.json`` and ``user_ledger_signed.json`` (kept as
recorded then) and ``admitted_run_current.json`` (``UPDATE_HISTORIES=1`` records the
current code's, and the ledger's again): a run admitted by its worker that
reserved from its user's ledger, asked for approval, ignored a malformed signal, took a
decision by update and settled; and that user's ledger. ``admitted_run_slow_resolve.json``
is a run whose ``resolve_agent`` took 9 s (longer than the workflow task's heartbeat), so
its local activity ended in a later workflow task than the one that started it: a patch
first asked after that activity would be seen there on the original run but not on
replay. Every patch a run takes is decided before its first local activity.
``continued_first``, ``continued_next`` and ``subagent_child`` are a run that started a
sub-agent and continued as new, passing each a `RunCarry` as a second input (the
split-input patch; ``UPDATE_HISTORIES=1`` re-records them); the ``*_pre_split`` ones
are the same run recorded before, when the carry travelled inside the request.
``lean_run.json`` is the lean-steps path (``lean_run_current.json`` the current code's,
which ``UPDATE_HISTORIES=1`` re-records): a tool
declared local ran as a local activity, and a normal one carried its heartbeat timeout.
``unreplayable/admission_query_race.json`` is a run recorded when the agent was resolved
by a local activity, which no code replays (see its test); ``admitted_run_resolve_activity``
is one that resolved it with an activity (the resolve-by-activity patch;
``UPDATE_HISTORIES=1`` re-records it). ``admitted_run_pre_stream``, ``continued_first_pre_stream``
and ``continued_next_pre_stream`` were recorded from the code before the run streamed its
events (the stream-events patch); ``streamed_run_first`` and ``streamed_run_next`` are a
streamed run followed by a client, with a forged publish, a cut stream retried and a
continue-as-new (``UPDATE_HISTORIES=1`` re-records them).
``mcp_removed_pre_refresh.json`` is a run whose MCP
tool disappeared mid-run, recorded before runs read their tool list again (the mcp-refresh
patch; its worker's answer does not say which tools are MCP tools, so it could not
anyway); ``mcp_gone_before_refresh_patch.json`` the same kind of run taken by workflow code
without the patch while the worker's activities were new (a rolling deploy: the tool list
says which tools are MCP ones, and the planner asked for a refresh): only the patch keeps
its replay from listing the tools again. ``mcp_refresh_current.json``
(tests/test_mcp_refresh.py, ``UPDATE_HISTORIES=1``) is a run that did. ``shadow_run`` and
``shadow_child`` are a shadow run and its sub-agent (recorded by ``tests/test_shadow.py``
with ``UPDATE_HISTORIES=1``): their writes were recorded, not run.
"""

import asyncio
import contextlib
import os
import threading
import uuid
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from durable_agents._activities.user_limits import UserLimits
from durable_agents._domain import contract
from durable_agents._domain.approvals import Decision
from durable_agents._domain.budget import BudgetOverride
from durable_agents._domain.events import RunEvent
from durable_agents._domain.run import RunReport, RunRequest, RunStatus, workflow_id_for
from durable_agents._domain.spec import LoopLimits
from durable_agents._domain.user_ledger import ledger_workflow_id
from durable_agents._workers.replay import build_replayer, load_history, replay_history, replay_runs
from durable_agents._workflows.agent_run import AgentRun
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

pytestmark = pytest.mark.replay
HISTORIES = Path(__file__).parent / "histories"


def _replayer() -> Replayer:
    return build_replayer()


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_committed_history_replays(path: Path) -> None:
    await _replayer().replay_workflow(load_history(path))


def test_histories_are_committed() -> None:
    assert sorted(HISTORIES.glob("*.json")), "no recorded history under tests/histories"


async def test_fresh_history_replays(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(
        plan_reply(
            tool_task("t1", "record_effect", name="x"),
            tool_task("t2", "flaky", name="y", failures=1),
            tool_task("t3", "check_value", value=4, depends_on=["t1", "t2"]),
        ),
        purpose="plan",
    )
    model.enqueue(Reply.text("x, y recorded; 4 is even"), purpose="summarize")
    handle = await agents.start_run(
        "test-agent", "record x and y, check 4", request_id="replay-basic"
    )
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    history = await agents.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
    await _replayer().replay_workflow(history)


async def test_admitted_run_and_signed_ledger_replay(
    agents: LocalAgents, model: ScriptedModelServer, user_limits: UserLimits, worker: None
) -> None:
    user = f"rec-{uuid.uuid4().hex[:8]}"
    user_limits.update({user: 1.0})
    model.enqueue(plan_reply(tool_task("go", "launch_rocket", name="apollo")), purpose="plan")
    model.enqueue(plan_reply(done=True), purpose="plan")
    model.enqueue(Reply.text("launched"), purpose="summarize")
    handle = await agents.start_run(
        "test-agent", "launch", user=user, budget=BudgetOverride(max_cost_usd=0.05)
    )
    request = await pending_request(agents, handle.workflow_id)
    await agents.temporal.get_workflow_handle(handle.workflow_id).signal(
        AgentRun.approve_signal, "junk"
    )
    await agents.approve(
        handle.workflow_id,
        Decision(request_id=request.id, args_digest=request.args_digest, approver="ana"),
    )
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED and report.spec_hash
    ledger = agents.temporal.get_workflow_handle(ledger_workflow_id(user))
    for _ in range(100):  # the settlement reaches the ledger as the run ends
        if not (await agents.user_balance(user)).reservations:
            break
        await asyncio.sleep(0.1)
    histories = {
        "admitted_run_current": await agents.temporal.get_workflow_handle(
            handle.workflow_id
        ).fetch_history(),
        "user_ledger_signed": await ledger.fetch_history(),
    }
    for name, history in histories.items():
        await _replayer().replay_workflow(history)
        if os.environ.get("UPDATE_HISTORIES") == "1":  # older recordings stay: runs in flight
            (HISTORIES / f"{name}.json").write_text(history.to_json())


async def test_lean_run_replays(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    """The lean-steps path: a local tool (a marker, no activity events) and a normal tool
    with its heartbeat timeout. ``UPDATE_HISTORIES=1`` re-records ``lean_run.json``."""
    model.enqueue(
        plan_reply(
            tool_task("t1", "record_local", name="x"),
            tool_task("t2", "record_effect", name="y", depends_on=["t1"]),
        ),
        purpose="plan",
    )
    model.enqueue(plan_reply(done=True), purpose="plan")
    model.enqueue(Reply.text("x and y recorded"), purpose="summarize")
    handle = await agents.start_run("test-agent", "record x locally, then y")
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED, report.errors
    history = await agents.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
    markers = [e.marker_recorded_event_attributes.marker_name for e in history.events]
    assert markers.count("core_local_activity") == 1  # record_local (resolve_agent: an activity)
    await _replayer().replay_workflow(history)
    if os.environ.get("UPDATE_HISTORIES") == "1":
        (HISTORIES / "lean_run_current.json").write_text(history.to_json())


async def test_continued_run_with_a_subagent_replays(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    """A run that starts a sub-agent, then continues as new: the inputs a run passes to
    its next execution and to its sub-agent (``continued_*`` and ``subagent_child``)."""
    sub = {"id": "s1", "kind": "subagent", "prompt": "record the child effect", "depends_on": []}
    plans = iter(
        [
            plan_reply(sub, done=False),  # the parent's first plan
            plan_reply(tool_task("k", "record_effect", name="child")),  # the child's
            plan_reply(tool_task("t2", "record_effect", name="after")),  # the next execution
        ]
    )
    model.set_responder("plan", lambda r: next(plans))
    model.set_responder("summarize", lambda r: Reply.text("done"))
    spec = agents.resolve("test-agent").model_copy(
        update={"name": "continued-agent", "limits": LoopLimits(continue_as_new_every=1)}
    )
    handle = await agents.start_run(spec, "delegate, then continue", request_id="continued")
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED, report.errors
    assert [s.task_id for s in report.steps] == ["s1", "t2"]
    runs = [
        wf async for wf in agents.temporal.list_workflows(f"WorkflowId = '{handle.workflow_id}'")
    ]
    first = min(runs, key=lambda wf: wf.start_time)
    (child,) = [
        wf
        async for wf in agents.temporal.list_workflows(f"ParentWorkflowId = '{handle.workflow_id}'")
    ]
    histories = {
        "continued_first": await agents.temporal.get_workflow_handle(
            first.id, run_id=first.run_id
        ).fetch_history(),
        "continued_next": await agents.temporal.get_workflow_handle(
            handle.workflow_id
        ).fetch_history(),
        "subagent_child": await agents.temporal.get_workflow_handle(child.id).fetch_history(),
    }
    for name, history in histories.items():
        await _replayer().replay_workflow(history)
        if os.environ.get("UPDATE_HISTORIES") == "1":
            (HISTORIES / f"{name}.json").write_text(history.to_json())


async def test_streamed_run_replays(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    """The stream-events path, followed by a client: token batches arrive as the stream's
    publish signal (one forged, refused), polls as its update, a cut stream is retried, the
    run continues as new. ``UPDATE_HISTORIES=1`` re-records ``streamed_run*.json``."""
    plans = iter(
        [
            plan_reply(tool_task("t1", "record_effect", name="a"), done=False),
            plan_reply(tool_task("t2", "record_effect", name="b")),
        ]
    )
    model.set_responder("plan", lambda r: next(plans))
    answer = "a and b recorded, streamed. " * 3
    seen_some = threading.Event()  # cut once the client has seen some of it
    model.enqueue(
        Reply.cut(answer, after_chunks=3, gate=seen_some),
        Reply.text(answer, chunk_chars=6),
        purpose="summarize",
    )
    spec = agents.resolve("test-agent").model_copy(
        update={"name": "streamed-agent", "limits": LoopLimits(continue_as_new_every=1)}
    )
    handle = await agents.start_run(spec, "record a, continue, record b", request_id="streamed")
    await agents.temporal.get_workflow_handle(handle.workflow_id).signal(
        contract.STREAM_PUBLISH, "forged"
    )
    events, report = await asyncio.gather(
        _all_events(agents, handle.workflow_id, seen_some), agents.result(handle.workflow_id)
    )
    assert report.status is RunStatus.COMPLETED, report.errors
    assert any(e.kind.value == "superseded" for e in events)
    runs = [
        wf async for wf in agents.temporal.list_workflows(f"WorkflowId = '{handle.workflow_id}'")
    ]
    first = min(runs, key=lambda wf: wf.start_time)
    histories = {
        "streamed_run_first": await agents.temporal.get_workflow_handle(
            first.id, run_id=first.run_id
        ).fetch_history(),
        "streamed_run_next": await agents.temporal.get_workflow_handle(
            handle.workflow_id
        ).fetch_history(),
    }
    for name, history in histories.items():
        await _replayer().replay_workflow(history)
        if os.environ.get("UPDATE_HISTORIES") == "1":
            (HISTORIES / f"{name}.json").write_text(history.to_json())


async def _all_events(
    agents: LocalAgents, workflow_id: str, on_tokens: threading.Event
) -> list[RunEvent]:
    events = []
    async for event in agents.events(workflow_id):
        events.append(event)
        if event.kind.value == "tokens":
            on_tokens.set()
    return events


QUERY_RACE = HISTORIES / "unreplayable" / "admission_query_race.json"


def _event_types(history: WorkflowHistory) -> list[str]:
    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events]


def _local_activity_marker(event: HistoryEvent) -> bool:
    return event.marker_recorded_event_attributes.marker_name == "core_local_activity"


async def test_a_local_activity_resumed_a_task_late_does_not_replay() -> None:
    """Why runs resolve their agent with an activity (the resolve-by-activity patch).

    Recorded when ``resolve_agent`` was a local activity, with ``status`` queries reaching
    the worker as the run started: the SDK recorded the activity's marker in the first
    workflow task but resumed the run only in the second, together with the ``admission``
    update, which it accepted before the run's first commands (an upsert, the plan
    activity). Replay resumes the run in the task that holds the marker, so it issues the
    upsert before the update is accepted there: a non-determinism error on every worker
    that replays the run, whatever its code.
    """
    history = load_history(QUERY_RACE)
    events = _event_types(history)
    (marker,) = [i for i, e in enumerate(history.events) if _local_activity_marker(e)]
    assert events.index("WORKFLOW_TASK_COMPLETED") < marker  # recorded in the first task
    assert events[marker + 1 : marker + 6] == [
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
        "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
    ]
    outcome = await replay_history(history)
    assert not outcome.ok and outcome.error
    assert "UpsertWorkflowSearchAttributesMachine does not handle" in outcome.error
    assert "WorkflowExecutionUpdateAccepted" in outcome.error


async def _query_until_done(agents: LocalAgents, workflow_id: str, done: asyncio.Event) -> None:
    handle = agents.temporal.get_workflow_handle(workflow_id)
    while not done.is_set():
        with contextlib.suppress(Exception):  # before the run exists or is admitted
            await handle.query(AgentRun.status)
        await asyncio.sleep(0)


async def test_runs_started_under_queries_replay(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    """Runs started (and admitted) while ``status`` queries hammer them replay: their
    agent is resolved by an activity, so no local activity marker can be recorded a
    workflow task before the code after it ran. With the local activity, about one such
    run in eight failed to replay (the history above)."""
    model.set_responder("plan", lambda r: plan_reply(done=True))
    model.set_responder("summarize", lambda r: Reply.text("done"))
    histories = []
    for i in range(16):
        request_id = f"query-race-{uuid.uuid4().hex[:8]}"
        done = asyncio.Event()
        querying = asyncio.create_task(_query_until_done(agents, workflow_id_for(request_id), done))
        try:
            handle = await agents.start_run("test-agent", f"race {i}", request_id=request_id)
            assert handle.admitted
            report = await agents.result(handle.workflow_id)
        finally:
            done.set()
            await querying
        assert report.status is RunStatus.COMPLETED, report.errors
        histories.append(
            await agents.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
        )
    for history in histories:
        events = _event_types(history)
        assert "MARKER_RECORDED" in events  # the patches
        assert not any(_local_activity_marker(e) for e in history.events)
        outcome = await replay_history(history)
        assert outcome.ok, outcome.error
    if os.environ.get("UPDATE_HISTORIES") == "1":
        (HISTORIES / "admitted_run_resolve_activity.json").write_text(histories[0].to_json())


@workflow.defn(name=contract.AGENT_RUN, sandboxed=False)
class ChangedAgentRun:
    """A deliberately incompatible change: a timer before everything else."""

    @workflow.run
    async def run(self, request: RunRequest) -> RunReport:
        await workflow.sleep(1)
        raise RuntimeError("never reached in replay")


async def test_replay_check_passes_unchanged_code_and_flags_a_breaking_change(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="x")), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")
    handle = await agents.start_run("test-agent", "x")
    await agents.result(handle.workflow_id)
    (ok,) = await replay_runs(agents.temporal, [handle.workflow_id])
    assert ok.ok and ok.error is None
    (broken,) = await replay_runs(agents.temporal, [handle.workflow_id], [ChangedAgentRun])
    assert not broken.ok and broken.error and "nondetermin" in broken.error.lower()


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_committed_history_breaks_under_a_changed_workflow(path: Path) -> None:
    outcome = await replay_history(load_history(path), [ChangedAgentRun])
    assert not outcome.ok
