"""Scaling out: a tool on its own task queue, served by a rate-limited activity worker."""

import pytest
from temporalio.client import Client

from durable_agents._domain import contract
from durable_agents._domain.run import RunStatus
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support import test_agent
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

pytestmark = pytest.mark.e2e


async def test_rate_limited_tool_queue(
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
    task_queue: str,
) -> None:
    tool_queue = f"{task_queue}-limited"
    spec = agents.catalog.plugin("test-agent").build_spec()
    spec = spec.model_copy(
        update={
            "tools": [
                t.model_copy(update={"task_queue": tool_queue}) if t.name == "record_effect" else t
                for t in spec.tools
            ]
        }
    )
    model.enqueue(
        plan_reply(*(tool_task(f"t{i}", "record_effect", name=f"r{i}") for i in range(8))),
        purpose="plan",
    )
    model.enqueue(Reply.text("done"), purpose="summarize")
    limited = WorkerSettings(
        **{**worker_settings.__dict__, "activities_only": True, "activities_per_second": 1.0}
    )
    async with build_worker(client, limited, task_queue=tool_queue):
        handle = await agents.start_run(spec, "four effects, politely")
        report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    starts = sorted(start for start, _ in test_agent.timings(worker_settings.data_dir).values())
    # Eight calls at 1 per second: the server spaces them (it may let a few through at
    # once: its limiter allows a burst), however fast the worker is.
    assert len(starts) == 8
    assert starts[-1] - starts[0] >= 2.0
    history = await client.get_workflow_handle(handle.workflow_id).fetch_history()
    queues = {
        e.activity_task_scheduled_event_attributes.task_queue.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == contract.INVOKE_TOOL
    }
    assert queues == {tool_queue}
