"""Long runs continue as new with their compact state: same workflow id, same status,
approvals and budget across the boundary."""

import json

import pytest

from durable_agents._domain.approvals import Decision
from durable_agents._domain.budget import Budget
from durable_agents._domain.run import Outcome, RunStatus
from durable_agents._domain.spec import LoopLimits
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import RecordedRequest, Reply, ScriptedModelServer
from tests.support import test_agent
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

pytestmark = pytest.mark.e2e


async def test_continue_as_new_keeps_status_approvals_and_budget(
    agents: LocalAgents,
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
    await agents.approve(
        handle.workflow_id,
        Decision(request_id=request.id, args_digest=request.args_digest, approver="ana"),
    )
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


@pytest.mark.unit
def test_carried_state_keeps_windows_counts_and_an_audit_digest() -> None:
    from datetime import UTC, datetime

    from durable_agents._domain.approvals import AuditEntry
    from durable_agents._domain.budget import BudgetLedger
    from durable_agents._domain.plan import TaskKind
    from durable_agents._domain.run import RunRequest, StepRecord
    from durable_agents._workflows.state import CARRIED_AUDIT, RunState

    spec = test_agent.build_spec()
    request = RunRequest(request_id="r1", goal="g", agent=spec.name)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    state = RunState(
        request=request, spec=spec, ledger=BudgetLedger(budget=spec.budget), started_at=now
    )
    outcomes = [Outcome.OK, Outcome.OK, Outcome.HARD]
    state.steps = [
        StepRecord(iteration=i, task_id=f"t{i}", kind=TaskKind.TOOL, label=f"x{i}", outcome=o)
        for i in range(300)
        for o in [outcomes[i % 3]]
    ]
    state.audit = [AuditEntry(at=now, event=f"e{i}") for i in range(CARRIED_AUDIT + 30)]
    state.call_counts = {f"sig{i}": 1 for i in range(1000)}

    carried = state.carried(spec.limits.observation_window)
    assert "request" not in carried  # it travels as the new execution's input
    resumed = RunState.resumed(carried, request)
    assert resumed.request == request
    assert len(resumed.steps) < 30 and resumed.steps[-1].task_id == "t299"
    assert resumed.earlier_steps + len(resumed.steps) == 300
    assert sum(resumed.earlier_outcomes.values()) == resumed.earlier_steps
    assert len(resumed.audit) == CARRIED_AUDIT and resumed.earlier_audit == 30
    assert len(resumed.audit_digest) == 64 and len(resumed.call_counts) <= 200
    # Continuing again adds to the counts and chains the digest.
    again = RunState.resumed(resumed.carried(spec.limits.observation_window), request)
    assert again.earlier_steps == resumed.earlier_steps
    assert again.audit_digest == resumed.audit_digest  # nothing more was dropped
    resumed.audit.append(AuditEntry(at=now, event="late"))
    third = RunState.resumed(resumed.carried(spec.limits.observation_window), request)
    assert third.earlier_audit == 31 and third.audit_digest != resumed.audit_digest
    assert len(json.dumps(carried)) < 40_000
