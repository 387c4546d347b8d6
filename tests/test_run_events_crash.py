"""A worker killed with SIGKILL while a model reply streams: the call is retried on a new
worker, and a client that followed the whole time sees the answer's text once."""

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import TimeoutType

from durable_agents._activities.catalog import write_agent_specs
from durable_agents._client.live_calls import LIVE_KINDS
from durable_agents._domain.events import EventKind, RunEvent, Transcript
from durable_agents._domain.run import RunStatus
from durable_agents._domain.spec import LlmPolicy
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task
from tests.support.processes import WorkerProcess

pytestmark = [pytest.mark.crash, pytest.mark.e2e]

ANSWER = "Every effect was recorded, in order, exactly once. " * 6


async def _until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_kill_9_mid_stream_shows_the_answer_once(
    agents: LocalAgents, model: ScriptedModelServer, worker_settings: WorkerSettings, tmp_path: Path
) -> None:
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="a")), purpose="plan")
    held = threading.Event()  # the first reply stops after 4 chunks: killed while it streams
    # The retry waits after its first chunk until the client has seen it supersede the first.
    superseded = threading.Event()
    model.enqueue(
        Reply.text(ANSWER, chunk_chars=5, gate=held, gate_after=4),
        Reply.text(ANSWER, chunk_chars=5, gate=superseded, gate_after=1),
        purpose="summarize",
    )
    spec = agents.catalog.plugin("test-agent").build_spec()
    spec = spec.model_copy(
        update={"name": "test-agent-hb", "llm": LlmPolicy(timeout_s=600, heartbeat_timeout_s=2)}
    )
    agents_file = tmp_path / "agents.json"
    write_agent_specs(agents_file, [spec])
    env = dataclasses.replace(worker_settings, extra_agents_file=agents_file).process_env()
    seen: list[RunEvent] = []

    async def follow(workflow_id: str) -> None:
        async for event in agents.events(workflow_id):
            seen.append(event)
            if event.kind is EventKind.SUPERSEDED:
                superseded.set()

    first = await WorkerProcess(env, tmp_path / "worker-1.log").start()
    try:
        handle = await agents.start_run("test-agent-hb", "record a")
        follower = asyncio.create_task(follow(handle.workflow_id))
        # Killed once the client has shown some of the answer, which is still streaming.
        await _until(lambda: any(e.kind is EventKind.TOKENS and e.label == "answer" for e in seen))
    finally:
        first.kill()
        held.set()  # the dead worker's reply may end now
    assert model.count(purpose="summarize") == 1
    second = await WorkerProcess(env, tmp_path / "worker-2.log").start()
    try:
        report = await asyncio.wait_for(agents.result(handle.workflow_id), 90)
        await asyncio.wait_for(follower, 30)
    finally:
        second.terminate()
    assert report.status is RunStatus.COMPLETED, report.errors
    (call,) = {e.call_id for e in seen if e.kind is EventKind.TOKENS and e.label == "answer"}
    killed = "".join(
        e.text for e in seen if e.kind is EventKind.TOKENS and (e.call_id, e.attempt) == (call, 1)
    )
    assert killed and ANSWER.startswith(killed)  # the killed attempt's text was shown...
    assert [e.attempt for e in seen if e.kind is EventKind.SUPERSEDED] == [2]
    transcript = Transcript()
    for event in seen:
        transcript.apply(event)
    assert transcript.text_of(call) == ANSWER == report.answer  # ...and is shown no more
    own = [e for e in seen if e.kind not in LIVE_KINDS]
    assert [e.offset for e in own] == list(range(len(own)))
    assert model.count(purpose="summarize") == 2
    # Streamed text stays out of the history even then: the timeout failure the retry's
    # start records does not carry the killed attempt's last heartbeat.
    history = await agents.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
    failures = [
        e.activity_task_started_event_attributes.last_failure
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
        and e.activity_task_started_event_attributes.attempt == 2
    ]
    (failure,) = failures
    assert failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
    assert not failure.timeout_failure_info.HasField("last_heartbeat_details")
