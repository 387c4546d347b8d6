"""Human checkpoints: approvals by signal, deadlines, escalation, audit of bad decisions."""

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from durable_agents._activities.notify import NotifySettings
from durable_agents._client.api import DecisionRefusedError
from durable_agents._domain.approvals import (
    ApprovalKind,
    ApprovalPolicy,
    ApprovalState,
    Decision,
    OnTimeout,
)
from durable_agents._domain.run import Outcome, RunReport, RunStatus
from durable_agents._domain.spec import AgentSpec
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents._workflows.agent_run import AgentRun
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support import test_agent
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task
from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.e2e


def _spec(agents: LocalAgents, **policy: Any) -> AgentSpec:
    spec = agents.catalog.plugin("test-agent").build_spec()
    return spec.model_copy(update={"approvals": ApprovalPolicy(**policy)})


def _script_launch(model: ScriptedModelServer) -> None:
    """Plan: launch a rocket (irreversible); after a refusal, finish without it."""
    model.enqueue(
        plan_reply(tool_task("go", "launch_rocket", name="apollo")),
        plan_reply(done=True),
        purpose="plan",
    )
    model.enqueue(Reply.text("done"), purpose="summarize")


async def _finish(agents: LocalAgents, wid: str) -> RunReport:
    return await asyncio.wait_for(agents.result(wid), 60)


def _launches(settings: WorkerSettings) -> list[str]:
    return [e[1] for e in test_agent.executions(settings.data_dir) if e[0] == "launch_rocket"]


async def test_approved_call_runs_once_and_is_reported(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    _script_launch(model)
    handle = await agents.start_run(_spec(agents, approvers=["ana"]), "launch")
    request = await pending_request(agents, handle.workflow_id)
    assert request.kind is ApprovalKind.TOOL and request.what == "launch_rocket(apollo)"
    view = await agents.status(handle.workflow_id)
    assert view.pending_approvals[0].id == request.id
    await agents.approve(
        handle.workflow_id,
        Decision(
            request_id=request.id,
            approver="ana",
            reason="go for launch",
            args_digest=request.args_digest,
        ),
    )
    report = await _finish(agents, handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert _launches(worker_settings) == ["apollo"]
    (approval,) = report.approvals
    assert (approval.state, approval.decided_by, approval.reason) == (
        ApprovalState.APPROVED,
        "ana",
        "go for launch",
    )
    assert approval.decided_at is not None


async def test_rejection_reason_goes_to_the_planner(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    _script_launch(model)
    handle = await agents.start_run(_spec(agents), "launch")
    request = await pending_request(agents, handle.workflow_id)
    await agents.reject(
        handle.workflow_id,
        Decision(
            request_id=request.id,
            args_digest=request.args_digest,
            approver="bob",
            reason="weather is bad",
        ),
    )
    report = await _finish(agents, handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert _launches(worker_settings) == []
    assert report.steps[0].outcome is Outcome.DENIED
    replan = [r for r in model.requests if r.purpose == "plan"][1]
    assert "weather is bad" in replan.body["messages"][-1]["content"]


async def test_forged_stale_duplicate_wrong_digest_and_unauthorized_are_refused(
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    _script_launch(model)
    handle = await agents.start_run(_spec(agents, approvers=["ana"]), "launch")
    wid = handle.workflow_id
    request = await pending_request(agents, wid)
    raw = client.get_workflow_handle(wid)
    digest = request.args_digest
    refused = {
        "unknown request 'a99'": Decision(request_id="a99", approver="ana", args_digest=digest),
        "args_digest does not match": Decision(
            request_id=request.id, approver="ana", args_digest="0" * 64
        ),
        "has no args_digest": Decision(request_id=request.id, approver="ana"),
        "'mallory' may not decide this; allowed: ana": Decision(
            request_id=request.id, args_digest=digest, approver="mallory"
        ),
    }
    for why, decision in refused.items():  # updates: refused by the validator, told why
        with pytest.raises(DecisionRefusedError, match=re.escape(why)):
            await agents.approve(wid, decision)
    await raw.signal(AgentRun.approve_signal, {"request": "a1", "who": "ana"})  # malformed payload
    await raw.signal(AgentRun.approve_signal, "yes please")  # not even an object
    view = await agents.status(wid)
    assert view.pending_approvals and _launches(worker_settings) == []
    said = await agents.reject(
        wid, Decision(request_id=request.id, args_digest=digest, approver="ana", reason="no")
    )
    assert said.state == "rejected" and said.decided_by == "ana"
    assert not said.identity_verified  # no approver keys on this worker
    with pytest.raises(DecisionRefusedError, match="already rejected by ana"):
        await agents.approve(
            wid, Decision(request_id=request.id, args_digest=digest, approver="ana")
        )
    report = await _finish(agents, wid)
    assert _launches(worker_settings) == []
    ignored = [a for a in report.audit if not a.accepted]
    assert len(ignored) == 2  # the two signals; refused updates write nothing
    assert all("malformed decision" in a.detail for a in ignored)
    assert report.approvals[0].state is ApprovalState.REJECTED
    history = await raw.fetch_history()
    accepted_updates = [
        e
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert len(accepted_updates) == 2  # the admission and the one rejection


@pytest.mark.parametrize(
    ("on_timeout", "launched", "state"),
    [
        (OnTimeout.DENY, [], ApprovalState.TIMED_OUT),
        (OnTimeout.APPROVE, ["apollo"], ApprovalState.APPROVED),
    ],
)
async def test_deadline_applies_on_timeout(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
    on_timeout: OnTimeout,
    launched: list[str],
    state: ApprovalState,
) -> None:
    _script_launch(model)
    handle = await agents.start_run(_spec(agents, deadline_s=1.0, on_timeout=on_timeout), "x")
    report = await _finish(agents, handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert _launches(worker_settings) == launched
    assert report.approvals[0].state is state
    assert report.approvals[0].decided_by == "policy:timeout"


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


async def test_escalation_notifies_the_webhook_extends_once_then_denies(
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    worker_settings: WorkerSettings,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    settings = WorkerSettings(
        **{**worker_settings.__dict__, "notify": NotifySettings(webhook_url=url)}
    )
    _script_launch(model)
    async with build_worker(client, settings, catalog=agents.catalog):
        handle = await agents.start_run(
            _spec(agents, deadline_s=1.5, on_timeout=OnTimeout.ESCALATE), "x"
        )
        report = await _finish(agents, handle.workflow_id)
    assert _launches(settings) == []
    (approval,) = report.approvals
    assert approval.extended and approval.state is ApprovalState.TIMED_OUT
    (hook,) = received
    body = hook["durable_agents"]
    assert body["kind"] == "approval_escalated" and body["workflow_id"] == handle.workflow_id
    assert f"agentctl approve {handle.workflow_id} a1" in hook["text"]
    assert "launch_rocket" in hook["text"] and body["goal"] == "x"


@pytest.mark.crash
async def test_approval_survives_kill_9_of_the_waiting_worker(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker_settings: WorkerSettings,
    tmp_path: Path,
) -> None:
    _script_launch(model)
    env = worker_settings.process_env()
    first = await WorkerProcess(env, tmp_path / "w1.log").start()
    try:
        handle = await agents.start_run(_spec(agents), "launch")
        request = await pending_request(agents, handle.workflow_id)
    finally:
        first.kill()
    second = await WorkerProcess(env, tmp_path / "w2.log").start()
    try:
        await agents.approve(
            handle.workflow_id,
            Decision(request_id=request.id, args_digest=request.args_digest, approver="ana"),
        )
        report = await _finish(agents, handle.workflow_id)
    finally:
        second.terminate()
    assert report.status is RunStatus.COMPLETED
    assert _launches(worker_settings) == ["apollo"]
    assert model.count(purpose="plan") == 1


async def test_plan_approval_and_rejection_with_reason(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    model.enqueue(
        plan_reply(tool_task("p1", "record_effect", name="first-idea")),
        plan_reply(tool_task("p2", "record_effect", name="second-idea")),
        purpose="plan",
    )
    model.enqueue(Reply.text("done"), purpose="summarize")
    handle = await agents.start_run(_spec(agents, approve_plan=True), "plan it")
    first = await pending_request(agents, handle.workflow_id)
    assert first.kind is ApprovalKind.PLAN and "record_effect" in first.what
    await agents.reject(
        handle.workflow_id,
        Decision(
            request_id=first.id, args_digest=first.args_digest, approver="ana", reason="too hasty"
        ),
    )
    await asyncio.sleep(0.5)
    second = await pending_request(agents, handle.workflow_id)
    assert second.id != first.id
    await agents.approve(
        handle.workflow_id,
        Decision(request_id=second.id, args_digest=second.args_digest, approver="ana"),
    )
    report = await _finish(agents, handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert test_agent.effects(worker_settings.data_dir) == ["second-idea"]
    replan = [r for r in model.requests if r.purpose == "plan"][1]
    assert "a person rejected the plan: too hasty" in replan.body["messages"][-1]["content"]


async def test_low_confidence_task_asks_a_human_first(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    unsure = tool_task("u", "record_effect", name="maybe")
    unsure["confidence"] = 0.3
    model.enqueue(plan_reply(unsure, tool_task("s", "record_effect", name="sure")), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")
    handle = await agents.start_run(_spec(agents, min_confidence=0.7), "unsure")
    request = await pending_request(agents, handle.workflow_id)
    assert request.kind is ApprovalKind.CONFIDENCE and "0.30" in request.why
    async with asyncio.timeout(30):  # the confident task runs meanwhile, unblocked
        while "sure" not in test_agent.effects(worker_settings.data_dir):
            await asyncio.sleep(0.1)
    assert "maybe" not in test_agent.effects(worker_settings.data_dir)
    await agents.approve(
        handle.workflow_id,
        Decision(request_id=request.id, args_digest=request.args_digest, approver="ana"),
    )
    report = await _finish(agents, handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert sorted(test_agent.effects(worker_settings.data_dir)) == ["maybe", "sure"]
