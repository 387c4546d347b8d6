"""Long runs continue as new with their compact state: same workflow id, same status,
approvals and budget across the boundary."""

import pytest

from client.api import AgentsClient
from domain.approvals import Decision
from domain.budget import Budget
from domain.run import Outcome, RunStatus
from domain.spec import LoopLimits
from tests.support import test_agent
from tests.support.plans import plan_reply, tool_task
from tests.support.scripted_model import RecordedRequest, Reply, ScriptedModelServer
from tests.support.waiting import pending_request
from workers.config import WorkerSettings

pytestmark = pytest.mark.e2e


async def test_continue_as_new_keeps_status_approvals_and_budget(
    agents: AgentsClient,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    def planner(request: RecordedRequest) -> Reply:
        n = model.count(purpose="plan")  # this call is the n-th plan call
        if n == 5:
            return plan_reply(tool_task(f"t{n}", "launch_rocket", name="late"), done=False)
        if n >= 6:
            return plan_reply(done=True)
        return plan_reply(tool_task(f"t{n}", "record_effect", name=f"step{n}"), done=False)

    model.set_responder("plan", planner)
    model.set_responder("summarize", lambda r: Reply.text("all steps done"))
    spec = (
        agents.catalog.plugin("test-agent")
        .build_spec()
        .model_copy(
            update={
                "limits": LoopLimits(continue_as_new_every=2),
                "budget": Budget(max_cost_usd=1.0, max_iterations=10),
            }
        )
    )
    handle = await agents.start_run(spec, "many steps", request_id="long-can")
    request = await pending_request(agents, handle.workflow_id)
    view = await agents.status(handle.workflow_id)
    # Iteration 5 runs in the third execution of the same workflow id.
    assert view.iteration == 5 and view.usage.llm_calls == 5 and view.usage.tool_calls == 4
    desc = await agents.temporal.get_workflow_handle(handle.workflow_id).describe()
    assert desc.run_id != handle.run_id
    await agents.approve(handle.workflow_id, Decision(request_id=request.id, approver="ana"))
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert [s.task_id for s in report.steps] == ["t1", "t2", "t3", "t4", "t5"]
    assert all(s.outcome is Outcome.OK for s in report.steps)
    assert report.usage.llm_calls == 7 and report.usage.tool_calls == 5
    assert report.iterations == 6
    assert report.approvals[0].decided_by == "ana"
    effects = test_agent.effects(worker_settings.data_dir)
    assert effects == ["step1", "step2", "step3", "step4"]  # nothing repeated across runs
    executions = [
        e for e in test_agent.executions(worker_settings.data_dir) if e[0] == "launch_rocket"
    ]
    assert len(executions) == 1
    runs = [
        wf async for wf in agents.temporal.list_workflows(f"WorkflowId = '{handle.workflow_id}'")
    ]
    assert len(runs) >= 3  # each continue-as-new is a new execution of the same id
