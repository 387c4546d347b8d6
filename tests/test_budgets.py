"""Budgets that cannot be overspent: reservations, pressure, extensions, per-user limits."""

import asyncio
import dataclasses
import uuid

import pytest
from temporalio.client import Client

from durable_agents._activities.catalog import Catalog
from durable_agents._activities.user_limits import UserLimits
from durable_agents._client.api import InvalidRunRequestError
from durable_agents._domain import search_attributes as sa
from durable_agents._domain.approvals import ApprovalKind, ApprovalPolicy, BudgetExtension, Decision
from durable_agents._domain.budget import Budget
from durable_agents._domain.events import EventKind
from durable_agents._domain.money import usd_cost_to_micros, usd_to_micros
from durable_agents._domain.run import Outcome, RunStatus
from durable_agents._domain.spec import AgentSpec, ModelRoute, ModelRouting
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

pytestmark = pytest.mark.e2e


def _spec(agents: LocalAgents, budget: Budget, ask: bool = False, **update: object) -> AgentSpec:
    spec = agents.catalog.plugin("test-agent").build_spec()
    return spec.model_copy(
        update={
            "budget": budget,
            "approvals": ApprovalPolicy(ask_budget_extension=ask, deadline_s=30),
            **update,
        }
    )


def _llm_task(task_id: str) -> dict[str, object]:
    return {"id": task_id, "kind": "llm", "prompt": f"write {task_id}", "depends_on": []}


async def test_exhaustion_stops_with_a_partial_report_keeping_results(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(tool_task("a", "record_effect", name="kept")), purpose="plan")
    spec = _spec(agents, Budget(max_llm_calls=1))
    handle = await agents.start_run(spec, "do a then answer")
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.BUDGET_EXHAUSTED
    assert [(s.task_id, s.outcome) for s in report.steps] == [("a", Outcome.OK)]
    assert report.steps[0].output == {"name": "kept", "applied": True}
    assert report.usage.llm_calls == 1 and model.count(purpose="summarize") == 0
    assert "llm_calls: 1 + 1 > 1" in report.errors[-1]
    assert "budget_exhausted" in report.answer and "record_effect(kept)" in report.answer


async def test_parallel_calls_each_reserve_so_the_limit_holds(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(_llm_task("x"), _llm_task("y"), _llm_task("z")), purpose="plan")
    model.set_responder("execute", lambda r: Reply.text("written", delay_s=0.3))
    handle = await agents.start_run(_spec(agents, Budget(max_llm_calls=3)), "three at once")
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.BUDGET_EXHAUSTED
    assert report.usage.llm_calls == 3  # plan + two of the three parallel tasks
    assert model.count(purpose="execute") == 2
    assert [s.outcome for s in report.steps] == [Outcome.OK, Outcome.OK]


async def test_cost_pressure_routes_to_a_cheaper_model(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    route = ModelRoute(model="gpt-4o", max_tokens=512)
    routing = ModelRouting(
        plan=route, execute=route, evaluate=route, summarize=route, cheaper=["gpt-4o-mini"]
    )
    spec = agents.resolve(_spec(agents, Budget(max_cost_usd=0.004), models=routing))
    model.enqueue(plan_reply(tool_task("a", "record_effect", name="cheap")), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")
    handle = await agents.start_run(spec, "be frugal")
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert {r.model for r in model.requests} == {"gpt-4o-mini"}
    assert report.usage.cost_micros <= usd_to_micros(0.004)


async def test_a_human_extension_lets_the_run_finish(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(tool_task("a", "record_effect", name="more")), purpose="plan")
    model.enqueue(Reply.text("finished with more budget"), purpose="summarize")
    handle = await agents.start_run(_spec(agents, Budget(max_llm_calls=1), ask=True), "x")
    request = await pending_request(agents, handle.workflow_id)
    assert request.kind is ApprovalKind.BUDGET and "llm_calls" in request.why
    await agents.extend_budget(
        handle.workflow_id, BudgetExtension(approver="ana", add_llm_calls=1, reason="worth it")
    )
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert report.answer == "finished with more budget"
    assert report.budget.max_llm_calls == 2
    assert any(a.event == "budget_extended" and a.actor == "ana" for a in report.audit)


async def test_a_rejected_extension_stops_the_run(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(done=True), purpose="plan")
    handle = await agents.start_run(_spec(agents, Budget(max_llm_calls=1), ask=True), "x")
    request = await pending_request(agents, handle.workflow_id)
    await agents.reject(
        handle.workflow_id,
        Decision(
            request_id=request.id, args_digest=request.args_digest, approver="ana", reason="enough"
        ),
    )
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.BUDGET_EXHAUSTED


async def test_soft_alert_fires_exactly_once(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(_llm_task("p")), purpose="plan")
    model.enqueue(Reply.text("a"), purpose="execute")
    model.enqueue(Reply.text("done"), purpose="summarize")
    spec = _spec(agents, Budget(max_llm_calls=4, soft_fraction=0.5))
    handle = await agents.start_run(spec, "x")
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED and report.usage.llm_calls == 3
    assert [a.event for a in report.audit].count("soft_limit_reached") == 1
    desc = await agents.temporal.get_workflow_handle(handle.workflow_id).describe()
    assert desc.typed_search_attributes.get(sa.BUDGET_ALERT) is True
    # ...and once on the run's event stream.
    events = [e async for e in agents.events(handle.workflow_id)]
    assert [e.kind for e in events].count(EventKind.BUDGET_ALERT) == 1
    assert desc.typed_search_attributes.get(sa.TOKENS_USED) == report.usage.tokens


def _limited(agents: LocalAgents, limits: UserLimits, users: dict[str, float]) -> LocalAgents:
    limits.update(users)  # the worker enforces them
    return agents


async def test_user_over_the_monthly_limit_is_refused_until_a_run_settles(
    agents: LocalAgents, model: ScriptedModelServer, user_limits: UserLimits, worker: None
) -> None:
    limited = _limited(agents, user_limits, {"ana": 0.01})
    model.enqueue(plan_reply(tool_task("go", "launch_rocket", name="x")), purpose="plan")
    model.set_responder("plan", lambda r: plan_reply(done=True))
    model.set_responder("summarize", lambda r: Reply.text("done"))
    spec = _spec(agents, Budget(max_cost_usd=0.006))
    first = await limited.start_run(spec, "waits for approval", user="ana")
    request = await pending_request(agents, first.workflow_id)
    with pytest.raises(InvalidRunRequestError, match=r"user 'ana' has spent .* needs up to"):
        await limited.start_run(spec, "second", user="ana")
    await agents.approve(
        first.workflow_id,
        Decision(request_id=request.id, args_digest=request.args_digest, approver="ana"),
    )
    report = await agents.result(first.workflow_id)
    await asyncio.sleep(0.5)  # the settlement signal reaches the ledger
    balance = await limited.user_balance("ana")
    assert balance.reservations == {} and balance.spent_micros == report.usage.cost_micros
    third = await limited.start_run(spec, "third", user="ana")
    assert (await agents.result(third.workflow_id)).status is RunStatus.COMPLETED


async def test_concurrent_runs_of_one_user_are_counted_exactly(
    agents: LocalAgents,
    client: Client,
    catalog: Catalog,
    model: ScriptedModelServer,
    user_limits: UserLimits,
    worker: None,
) -> None:
    limited = _limited(agents, user_limits, {"*": 0.01})
    model.set_responder("plan", lambda r: plan_reply(done=True))
    model.set_responder("summarize", lambda r: Reply.text("done"))
    spec = _spec(agents, Budget(max_cost_usd=0.004))
    results = await asyncio.gather(
        *(limited.start_run(spec, f"run {i}", user="bob") for i in range(6)),
        return_exceptions=True,
    )
    started = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, InvalidRunRequestError)]
    assert len(started) == 2 and len(refused) == 4  # 2 x $0.004 fit in $0.01, a third not
    for handle in started:
        await agents.result(handle.workflow_id)


async def test_a_run_that_ends_without_settling_gives_its_share_back(
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    user_limits: UserLimits,
    worker_settings: WorkerSettings,
) -> None:
    user = f"uma-{uuid.uuid4().hex[:8]}"
    # Ledgers sweep every second on this worker (the default is every 10 minutes).
    settings = dataclasses.replace(worker_settings, ledger_sweep_s=1.0)
    async with build_worker(client, settings, catalog=agents.catalog, limits=user_limits):
        await _terminated_run_gives_its_share_back(agents, model, user_limits, user)


async def _terminated_run_gives_its_share_back(
    agents: LocalAgents, model: ScriptedModelServer, user_limits: UserLimits, user: str
) -> None:
    limited = _limited(agents, user_limits, {user: 0.01})
    model.set_responder("plan", lambda r: plan_reply(tool_task("go", "launch_rocket", name="x")))
    spec = _spec(agents, Budget(max_cost_usd=0.004))
    doomed = await limited.start_run(spec, "terminated while it waits", user=user)
    kept = await limited.start_run(spec, "keeps waiting", user=user)
    for run in (doomed, kept):
        await pending_request(agents, run.workflow_id)
    handle = agents.temporal.get_workflow_handle(doomed.workflow_id)
    reported = (await handle.describe()).typed_search_attributes.get(sa.COST_USD)
    assert reported  # the plan call it paid for
    await handle.terminate("an operator stopped it; it never settles")

    async with asyncio.timeout(60):
        while doomed.workflow_id in (await limited.user_balance(user)).reservations:
            await asyncio.sleep(0.2)
    balance = await limited.user_balance(user)
    # Counted at the cost it last reported; the run still waiting keeps its share.
    assert balance.spent_micros == usd_cost_to_micros(reported)
    assert list(balance.reservations) == [kept.workflow_id]
    await agents.cancel(kept.workflow_id)
    assert (await agents.result(kept.workflow_id)).status is RunStatus.CANCELLED
    await asyncio.sleep(0.5)  # the cancelled run's settlement reaches the ledger
    assert (await limited.user_balance(user)).reservations == {}
