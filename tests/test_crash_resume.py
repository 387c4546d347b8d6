"""A worker killed with SIGKILL mid-run: a new worker finishes the run, and nothing that
had completed runs again."""

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from durable_agents._activities.catalog import write_agent_specs
from durable_agents._client.api import RunHandle
from durable_agents._domain import contract
from durable_agents._domain.run import RunReport, RunStatus
from durable_agents._domain.tools import DEFAULT_HEARTBEAT_TIMEOUT_S
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support import test_agent
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task
from tests.support.processes import WorkerProcess

pytestmark = [pytest.mark.crash, pytest.mark.e2e]


async def _wait_for(predicate, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def _start_then_kill(
    env: dict[str, str],
    log: Path,
    start: Callable[[], Awaitable[RunHandle]],
    crash_point: Callable[[], bool],
) -> RunHandle:
    """Start a run on a worker process and kill -9 it once ``crash_point`` holds."""
    first = await WorkerProcess(env, log).start()
    try:
        handle = await start()
        await _wait_for(crash_point)
    finally:
        first.kill()
    return handle


async def _finish_on_a_new_worker(
    agents: LocalAgents, env: dict[str, str], log: Path, workflow_id: str
) -> RunReport:
    """Start another worker process and wait for the run to end on it."""
    second = await WorkerProcess(env, log).start()
    try:
        return await asyncio.wait_for(agents.result(workflow_id), 90)
    finally:
        second.terminate()


# record_local is the same tool declared local: a local activity in the workflow's worker.
@pytest.mark.parametrize("tool", ["record_effect", "record_local"])
async def test_kill_9_mid_run_resumes_without_repeating(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker_settings: WorkerSettings,
    tmp_path: Path,
    tool: str,
) -> None:
    model.enqueue(
        plan_reply(
            tool_task("t1", tool, name="a"),
            tool_task("t2", tool, name="b", seconds=3, depends_on=["t1"]),
            tool_task("t3", tool, name="c", depends_on=["t2"]),
        ),
        purpose="plan",
    )
    model.enqueue(Reply.text("a, b and c recorded"), purpose="summarize")
    data = worker_settings.data_dir
    env = worker_settings.process_env()
    # Kill once the plan is made, t1 has completed and t2 is in the middle of its work.
    handle = await _start_then_kill(
        env,
        tmp_path / "worker-1.log",
        lambda: agents.start_run("test-agent", "record a, b, c"),
        lambda: any(e[1] == "b" for e in test_agent.executions(data, "started")),
    )
    assert [e[1] for e in test_agent.executions(data)] == ["a"]

    report = await _finish_on_a_new_worker(
        agents, env, tmp_path / "worker-2.log", handle.workflow_id
    )

    assert report.status is RunStatus.COMPLETED, report.errors
    assert test_agent.effects(data) == ["a", "b", "c"]
    keys = {name: {e[2] for e in test_agent.executions(data) if e[1] == name} for name in "abc"}
    assert all(len(k) == 1 for k in keys.values()), keys  # one idempotency key per call
    completed = Counter(e[1] for e in test_agent.executions(data))
    history = await agents.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
    tool_activities = [
        e
        for e in history.events
        if e.activity_task_scheduled_event_attributes.activity_type.name == contract.INVOKE_TOOL
    ]
    if tool == "record_effect":
        assert completed == {"a": 1, "b": 1, "c": 1}
        assert len(tool_activities) == 3
    else:
        # A local activity whose result was not yet recorded (a, done in the workflow task
        # the kill interrupted) may run again: it finds its effect done under its key.
        assert completed["b"] == completed["c"] == 1 and completed["a"] in (1, 2)
        assert not tool_activities
    # t2 really was interrupted: it started twice, completed once.
    assert Counter(e[1] for e in test_agent.executions(data, "started"))["b"] == 2
    # The model was asked once for the plan and once for the answer: nothing repeated.
    assert model.count(purpose="plan") == 1
    assert model.count(purpose="summarize") == 1


async def test_worker_killed_during_a_model_call_is_noticed_by_its_heartbeat(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker_settings: WorkerSettings,
    tmp_path: Path,
) -> None:
    from temporalio.api.enums.v1 import TimeoutType

    from durable_agents._domain.spec import LlmPolicy

    # The first plan call never gets an answer; its worker dies while it waits.
    model.enqueue(
        Reply.hang(300), plan_reply(tool_task("t1", "record_effect", name="a")), purpose="plan"
    )
    model.enqueue(Reply.text("a recorded"), purpose="summarize")
    spec = agents.catalog.plugin("test-agent").build_spec()
    spec = spec.model_copy(
        update={"name": "test-agent-hb", "llm": LlmPolicy(timeout_s=600, heartbeat_timeout_s=2)}
    )
    # The worker processes load the variant from a file, as an operator's would.
    agents_file = tmp_path / "agents.json"
    write_agent_specs(agents_file, [spec])
    env = dataclasses.replace(worker_settings, extra_agents_file=agents_file).process_env()
    handle = await _start_then_kill(
        env,
        tmp_path / "worker-1.log",
        lambda: agents.start_run("test-agent-hb", "record a"),
        lambda: model.count(purpose="plan") == 1,
    )
    # Far sooner than the 600 s start-to-close timeout would allow.
    report = await _finish_on_a_new_worker(
        agents, env, tmp_path / "worker-2.log", handle.workflow_id
    )

    assert report.status is RunStatus.COMPLETED, report.errors
    history = await agents.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
    retried = [
        e.activity_task_started_event_attributes
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
        and e.activity_task_started_event_attributes.attempt == 2
    ]
    # The plan activity's first attempt ended by its heartbeat timeout; the second answered.
    assert len(retried) == 1, retried
    failure = retried[0].last_failure.timeout_failure_info
    assert failure.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
    assert model.count(purpose="plan") == 2


async def test_tool_killed_mid_call_is_retried_after_its_heartbeat_timeout(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker_settings: WorkerSettings,
    tmp_path: Path,
) -> None:
    """A tool that never heartbeats itself, with a start-to-close timeout (1 h) far past
    this test's: its worker heartbeats for it, so when the worker dies the call is retried
    once the default heartbeat timeout passes."""
    from temporalio.api.enums.v1 import TimeoutType

    model.enqueue(
        plan_reply(tool_task("t1", "record_slowly", name="slow", seconds=4)), purpose="plan"
    )
    model.enqueue(Reply.text("recorded"), purpose="summarize")
    data = worker_settings.data_dir
    env = worker_settings.process_env()
    handle = await _start_then_kill(
        env,
        tmp_path / "worker-1.log",
        lambda: agents.start_run("test-agent", "record slowly"),
        lambda: bool(test_agent.executions(data, "started")),
    )
    report = await _finish_on_a_new_worker(
        agents, env, tmp_path / "worker-2.log", handle.workflow_id
    )

    assert report.status is RunStatus.COMPLETED, report.errors
    assert test_agent.effects(data) == ["slow"]
    history = await agents.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == contract.INVOKE_TOOL
    ]
    assert len(scheduled) == 1
    assert scheduled[0].heartbeat_timeout.ToSeconds() == DEFAULT_HEARTBEAT_TIMEOUT_S
    assert scheduled[0].start_to_close_timeout.ToSeconds() == 3600
    retried = [
        e.activity_task_started_event_attributes
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
        and e.activity_task_started_event_attributes.attempt == 2
    ]
    assert len(retried) == 1, retried
    failure = retried[0].last_failure.timeout_failure_info
    assert failure.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
