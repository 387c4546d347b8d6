"""Dead letter and redrive: failed runs are listed, retried from their request, or reset
to before their failing step without repeating what completed."""

import asyncio

import pytest

from durable_agents._domain import contract
from durable_agents._domain.run import RunReport, RunStatus
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support import test_agent
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

pytestmark = pytest.mark.e2e


async def _listed(agents: LocalAgents, query: str, workflow_id: str) -> bool:
    for _ in range(50):  # visibility is eventually consistent
        if workflow_id in await agents.list_runs(query):
            return True
        await asyncio.sleep(0.2)
    return False


async def test_failed_run_is_listed_and_retried_from_its_request(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(
        Reply.fault(404, message="no such model"),
        plan_reply(tool_task("t", "record_effect", name="retried")),
        purpose="plan",
    )
    model.enqueue(Reply.text("second time lucky"), purpose="summarize")
    handle = await agents.start_run("test-agent", "flaky start", request_id="dlq-1", user="ana")
    first = await agents.result(handle.workflow_id)
    assert first.status is RunStatus.FAILED
    assert await _listed(agents, f"{contract.AGENT_STATUS} = 'failed'", handle.workflow_id)
    again = await agents.retry(handle.workflow_id)
    assert again.workflow_id == "run-dlq-1.retry1"
    report = await agents.result(again.workflow_id)
    assert report.status is RunStatus.COMPLETED and report.answer == "second time lucky"
    assert (report.goal, report.user) == ("flaky start", "ana")


async def test_reset_to_last_good_resumes_before_the_failing_step(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    model.enqueue(plan_reply(tool_task("t", "record_effect", name="kept")), purpose="plan")
    model.enqueue(
        Reply.fault(400, message="context too long"),
        Reply.text("answered after reset"),
        purpose="summarize",
    )
    handle = await agents.start_run("test-agent", "reset me")
    failed = await agents.result(handle.workflow_id)
    assert failed.status is RunStatus.FAILED
    new_run = await agents.reset_to_last_good(handle.workflow_id, "model fixed")
    result = agents.temporal.get_workflow_handle(
        handle.workflow_id, run_id=new_run, result_type=RunReport
    )
    report = await result.result()
    assert report.status is RunStatus.COMPLETED
    assert report.answer == "answered after reset"
    assert test_agent.effects(worker_settings.data_dir) == ["kept"]  # not repeated
    assert model.count(purpose="plan") == 1


async def test_reset_of_a_run_without_failures_is_refused(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(done=True), purpose="plan")
    model.enqueue(Reply.text("fine"), purpose="summarize")
    handle = await agents.start_run("test-agent", "fine")
    await agents.result(handle.workflow_id)
    with pytest.raises(LookupError, match="no failed step"):
        await agents.reset_to_last_good(handle.workflow_id)
