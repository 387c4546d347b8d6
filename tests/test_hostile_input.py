"""Hostile and malformed input: refused before a run starts, or recorded and ignored by a
running workflow, which never gets stuck."""

import asyncio
import contextlib
import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NonInteractiveExampleWarning
from temporalio.client import Client

from durable_agents._client.api import InvalidRunRequestError, build_request
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain import contract
from durable_agents._domain.approvals import BudgetExtension, Decision
from durable_agents._domain.budget import BudgetOverride
from durable_agents._domain.plan import Plan, validate_plan
from durable_agents._domain.run import RunStatus
from durable_agents._domain.spec import AgentSpec
from durable_agents._workflows.agent_run import AgentRun
from durable_agents._workflows.approvals import MAX_AUDITED_IGNORED
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task
from tests.support.test_agent import build_spec

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
SPEC = build_spec()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.unit
@FUZZ
@given(
    goal=st.text(max_size=300),
    request_id=st.none() | st.text(max_size=200),
    user=st.text(max_size=300),
    budget=st.none()
    | st.dictionaries(
        st.sampled_from(
            [
                "max_cost_usd",
                "max_tokens",
                "max_iterations",
                "max_wall_time_s",
                "max_llm_calls",
                "bogus",
            ]
        ),
        st.floats() | st.integers(min_value=-(10**12), max_value=10**12),
        max_size=3,
    ),
)
def test_client_refuses_any_bad_request_with_a_clear_error(
    goal: str, request_id: str | None, user: str, budget: dict[str, Any] | None
) -> None:
    override = BudgetOverride.model_construct(**budget) if budget is not None else None
    try:
        request = build_request(SPEC.name, goal, request_id=request_id, user=user, budget=override)
    except InvalidRunRequestError as err:
        assert str(err).startswith("run request refused:\n  - ")
        return
    assert request.goal.strip() and request.goal == goal.strip()
    b = request.budget_of(SPEC)
    assert b.max_cost_usd is None or 0 <= b.max_cost_usd < float("inf")


@pytest.mark.unit
@FUZZ
@given(data=JSON)
def test_decisions_and_extensions_validate_or_refuse(data: Any) -> None:
    for model in (Decision, BudgetExtension, AgentSpec, Plan):
        # pydantic.ValidationError is a ValueError: a clear refusal; nothing else may escape.
        with contextlib.suppress(ValueError):
            model.model_validate(data)


@pytest.mark.unit
@FUZZ
@given(tool=st.sampled_from([t.name for t in SPEC.tools] + ["drop_tabel", ""]), args=JSON)
def test_any_tool_arguments_give_problems_never_an_exception(tool: str, args: Any) -> None:
    task = {
        "id": "t",
        "kind": "tool",
        "tool": tool,
        "args": args if isinstance(args, dict) else {"value": args},
    }
    plan = Plan.model_validate({"tasks": [task]})
    problems = validate_plan(plan, SPEC.tool_map(), SPEC.permissions, SPEC.role)
    assert all(isinstance(p, str) and p for p in problems)


def _fuzz_payloads(n: int) -> list[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        return [JSON.example() for _ in range(n)]


@pytest.mark.e2e
async def test_raw_signals_are_recorded_ignored_and_never_leave_the_run_stuck(
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    worker: None,
    dev_server: DevServer,
    temporal_cli: Path,
) -> None:
    model.enqueue(plan_reply(tool_task("go", "launch_rocket", name="fuzz")), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")
    handle = await agents.start_run("test-agent", "fuzz me")
    wid = handle.workflow_id
    request = await pending_request(agents, wid)
    raw = client.get_workflow_handle(wid)
    payloads = [
        *_fuzz_payloads(20),
        {"request_id": request.id},  # no approver
        {"request_id": request.id, "approver": "   "},
        {"request_id": request.id, "approver": "x", "args_digest": "nothex"},
        {"approver": "x", "add_usd": -5},
        {"approver": "x", "add_usd": "lots"},
    ]
    signals = (AgentRun.approve_signal, AgentRun.reject_signal, AgentRun.extend_budget_signal)
    for i, payload in enumerate(payloads):
        await raw.signal(signals[i % 3], payload)
    # Also through the real temporal CLI, as an operator might.
    cli = await asyncio.to_thread(
        subprocess.run,
        [
            str(temporal_cli),
            "workflow",
            "signal",
            "--address",
            dev_server.address,
            "--namespace",
            dev_server.namespace,
            "--workflow-id",
            wid,
            "--name",
            contract.APPROVE,
            "--input",
            json.dumps({"oops": [1, 2]}),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli.returncode == 0, cli.stderr
    view = await agents.status(wid)  # still answering queries, still waiting
    assert view.status is RunStatus.RUNNING and view.pending_approvals[0].id == request.id
    await agents.approve(
        wid, Decision(request_id=request.id, args_digest=request.args_digest, approver="ana")
    )
    report = await asyncio.wait_for(agents.result(wid), 60)
    assert report.status is RunStatus.COMPLETED
    ignored = [a for a in report.audit if not a.accepted]
    # Each ignored signal is audited, up to a bound that keeps the state small.
    assert len(ignored) == min(len(payloads) + 1, MAX_AUDITED_IGNORED)
    history = await raw.fetch_history()
    failed_tasks = [
        e for e in history.events if e.HasField("workflow_task_failed_event_attributes")
    ]
    assert failed_tasks == []  # no signal ever failed a workflow task
