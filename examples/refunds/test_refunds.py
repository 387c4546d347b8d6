"""The refunds agent's tests (docs/guide.md): a real Temporal dev server and worker."""

import json
from pathlib import Path

import pytest

from durable_agents import DecisionRefusedError, RunStatus
from durable_agents.testing import Reply, ScriptedModelServer, agent_test_env


def refunds_in(data_dir: Path) -> list[float]:
    log = data_dir / "refunds.jsonl"
    return [json.loads(line)["amount_usd"] for line in log.read_text().splitlines()]


@pytest.mark.asyncio
async def test_a_refund_waits_for_finance_then_happens_once(tmp_path: Path) -> None:
    async with agent_test_env("examples.refunds", data_dir=tmp_path) as env:  # offline model
        run = await env.agents.start_run("refunds", "Refund order A-100", user="ana")
        asked = await env.pending_request(run.workflow_id)
        assert (asked.tool, asked.args) == ("refund", {"order_id": "A-100", "amount_usd": 40.0})
        with pytest.raises(DecisionRefusedError, match="finance"):
            await env.approve(run.workflow_id, approver="mallory")  # not an approver
        said = await env.approve(run.workflow_id, approver="finance")
        assert said.state == "approved"
        report = await env.report(run.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert refunds_in(tmp_path) == [40.0]


@pytest.mark.asyncio
async def test_a_rejected_refund_is_not_made(tmp_path: Path) -> None:
    plan = {"done": True, "tasks": [{"id": "r", "tool": "refund",
            "args": {"order_id": "A-101", "amount_usd": 12.5}}]}  # fmt: skip
    with ScriptedModelServer() as model:  # the real OpenAI client calls it over HTTP
        # The plan, then (told of the rejection) a plan with nothing left to do.
        model.enqueue(Reply.json(plan), Reply.json({"done": True}), purpose="plan")
        model.enqueue(Reply.text("Nothing was refunded: finance said no."), purpose="*")
        async with agent_test_env("examples.refunds", model=model, data_dir=tmp_path) as env:
            run = await env.agents.start_run("refunds", "Refund order A-101")
            await env.reject(run.workflow_id, approver="finance", reason="already refunded")
            report = await env.report(run.workflow_id)
    assert "finance said no" in report.answer
    assert not (tmp_path / "refunds.jsonl").exists()
