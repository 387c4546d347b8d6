"""Malformed requests are refused with a clear error: by the client before a run starts,
or, for what only the worker knows (its agents, their bounds and prices), by the run's
worker as it starts, which fails the run at once with the same reason."""

import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._client.api import InvalidRunRequestError
from durable_agents._domain.budget import BudgetOverride
from durable_agents._domain.spec import ModelRouting
from tests.support.agents import LocalAgents

pytestmark = pytest.mark.validation


async def _assert_not_started(agents: LocalAgents, request_id: str) -> None:
    with pytest.raises(RPCError) as err:
        await agents.temporal.get_workflow_handle(f"run-{request_id}").describe()
    assert err.value.status is RPCStatusCode.NOT_FOUND


async def _assert_refused_by_worker(agents: LocalAgents, request_id: str) -> None:
    desc = await agents.temporal.get_workflow_handle(f"run-{request_id}").describe()
    assert desc.status is WorkflowExecutionStatus.FAILED


async def test_unknown_agent_is_refused_naming_known_agents(
    agents: LocalAgents, worker: None
) -> None:
    request_id = f"bad-agent-{uuid.uuid4().hex[:8]}"
    with pytest.raises(InvalidRunRequestError, match=r"unknown agent 'nope'.*test-agent"):
        await agents.start_run("nope", "do things", request_id=request_id)
    await _assert_refused_by_worker(agents, request_id)


async def test_empty_goal_is_refused(agents: LocalAgents) -> None:
    with pytest.raises(InvalidRunRequestError, match="goal is empty"):
        await agents.start_run("test-agent", "   ", request_id="bad-goal")
    await _assert_not_started(agents, "bad-goal")


def test_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        BudgetOverride(max_cost_usd=-1)


async def test_negative_budget_in_raw_request_is_refused(agents: LocalAgents) -> None:
    override = BudgetOverride.model_construct(max_cost_usd=-5.0)  # bypasses validation
    with pytest.raises(InvalidRunRequestError, match=r"budget\.max_cost_usd"):
        await agents.start_run("test-agent", "spend", request_id="bad-budget", budget=override)
    await _assert_not_started(agents, "bad-budget")


async def test_bad_request_id_is_refused(agents: LocalAgents) -> None:
    with pytest.raises(InvalidRunRequestError, match="request_id"):
        await agents.start_run("test-agent", "x", request_id="has spaces/and slashes")


async def test_unpriced_model_is_refused_with_the_fix(agents: LocalAgents, worker: None) -> None:
    spec = agents.catalog.plugin("test-agent").build_spec()
    spec = spec.model_copy(update={"models": ModelRouting.single("mystery-model-9")})
    request_id = f"unpriced-{uuid.uuid4().hex[:8]}"
    with pytest.raises(InvalidRunRequestError, match=r"mystery-model-9.*AGENT_PRICES_FILE"):
        await agents.start_run(spec, "anything", request_id=request_id)
    await _assert_refused_by_worker(agents, request_id)


async def test_override_past_the_agents_caps_is_refused(agents: LocalAgents, worker: None) -> None:
    request_id = f"over-cap-{uuid.uuid4().hex[:8]}"
    with pytest.raises(InvalidRunRequestError, match=r"max_cost_usd=500.0 is over .* cap of 10"):
        await agents.start_run(
            "test-agent", "x", request_id=request_id, budget=BudgetOverride(max_cost_usd=500)
        )
    await _assert_refused_by_worker(agents, request_id)
