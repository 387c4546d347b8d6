"""A whole agent run on the real dev server, with the real openai client."""

import pytest

from durable_agents._domain.run import Outcome, RunStatus
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support import test_agent
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

pytestmark = pytest.mark.e2e


async def test_run_completes_with_report(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    model.enqueue(
        plan_reply(
            tool_task("t1", "record_effect", name="alpha"),
            tool_task("t2", "record_effect", name="beta", depends_on=["t1"]),
        ),
        purpose="plan",
    )
    model.enqueue(Reply.text("Recorded alpha then beta.", usage=(120, 30)), purpose="summarize")

    handle = await agents.start_run("test-agent", "record alpha then beta")
    report = await agents.result(handle.workflow_id)

    assert report.status is RunStatus.COMPLETED
    assert report.answer == "Recorded alpha then beta."
    assert [(s.task_id, s.outcome) for s in report.steps] == [
        ("t1", Outcome.OK),
        ("t2", Outcome.OK),
    ]
    assert report.steps[0].output == {"name": "alpha", "applied": True}
    assert test_agent.effects(worker_settings.data_dir) == ["alpha", "beta"]
    # Two model calls, both through the real client; usage is the sum of both replies.
    assert model.count(purpose="plan") == 1 and model.count(purpose="summarize") == 1
    assert report.usage.llm_calls == 2 and report.usage.tool_calls == 2
    plan_usage = model.requests[0]
    assert plan_usage.body["model"] == "gpt-4o-mini"
    assert report.usage.output_tokens > 30 and report.usage.cost_micros > 0


async def test_repeated_request_returns_the_same_run(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="once")), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")
    first = await agents.start_run("test-agent", "once", request_id="dedup-1")
    second = await agents.start_run("test-agent", "once", request_id="dedup-1")
    assert first.workflow_id == second.workflow_id == "run-dedup-1"
    assert first.run_id is not None and second.run_id == first.run_id
    report = await agents.result(first.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert model.count(purpose="plan") == 1
