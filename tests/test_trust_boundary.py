"""The trust boundary is the worker: attacks made with the official ``temporal`` CLI.

Anyone who reaches the Temporal frontend can start ``AgentRun`` with any input and send a
run any signal or update. Each test makes one such attack and checks what a user cares
about: the run obeys its worker's agent, a refused message changes nothing (and an
update's caller is told why), a malformed one never wedges or fails a run.
"""

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from durable_agents._domain import contract
from durable_agents._domain.approvals import ApprovalState, Decision
from durable_agents._domain.run import RunStatus
from durable_agents._workers.config import WorkerSettings
from durable_agents._workflows.approvals import MAX_AUDITED_IGNORED
from durable_agents.testing import pending_request, report_within
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.attacks import (
    TemporalCli,
    accepted_updates,
    ana_only,
    decision_json,
    history_of,
    junk_file,
    next_pending,
    replays,
    script_a_rocket,
    signals_handled,
    task_failures,
    waiting_run,
)
from tests.support.plans import plan_reply, tool_task
from tests.support.test_agent import executions

pytestmark = pytest.mark.e2e


# -- 1. a run's start: the worker resolves the agent, whatever the request says --------


def _request(**fields: Any) -> dict[str, Any]:
    return {"request_id": uuid.uuid4().hex, "goal": "launch the rocket", **fields}


def _approval_free(agents: LocalAgents, agent: str, tool: str) -> dict[str, Any]:
    """``agent``'s spec with its irreversible ``tool`` made approval-free, as JSON."""
    spec = agents.catalog.resolve(agent)
    tools = [
        t.model_copy(update={"requires_approval": False}) if t.name == tool else t
        for t in spec.tools
    ]
    return spec.model_copy(update={"tools": tools}).model_dump(mode="json")


START_ATTACKS: dict[str, tuple[Any, str]] = {
    # name: (the request, or a factory of it taking the agents; what the refusal says)
    "spec-of-test-agent": (
        lambda a: [
            _request(agent="test-agent", spec=_approval_free(a, "test-agent", "launch_rocket"))
        ],
        "run refused: the request carries an agent spec; workers resolve agents themselves",
    ),
    "spec-of-db-tuner": (
        lambda a: [_request(agent="db-tuner", spec=_approval_free(a, "db-tuner", "drop_index"))],
        "run refused: the request carries an agent spec",
    ),
    "spec-without-agent": (
        lambda a: [_request(spec=_approval_free(a, "test-agent", "launch_rocket"))],
        "run refused: the request carries an agent spec",
    ),
    "budget-over-cap": (
        lambda a: [_request(agent="test-agent", budget={"max_cost_usd": 500})],
        "budget max_cost_usd=500.0 is over this agent's cap of 10.0",
    ),
    "unknown-agent": (
        lambda a: [_request(agent="no-such-agent")],
        "unknown agent 'no-such-agent'; this worker has loaded: db-tuner, file-editor, test-agent",
    ),
    "resume-state-on-fresh-start": (
        lambda a: [_request(agent="test-agent", resume_state={"iteration": 99})],
        "resume_state is set only by a run continuing as new",
    ),
    "parent-without-parent": (
        lambda a: [_request(agent="test-agent", parent_workflow_id="run-someone", depth=1)],
        "parent_workflow_id and depth are set only for a run's sub-agents",
    ),
    "depth-without-parent": (
        lambda a: [_request(agent="test-agent", depth=3)],
        "parent_workflow_id and depth are set only for a run's sub-agents",
    ),
    "user-ledger-id": (
        lambda a: [_request(agent="test-agent", user_ledger_id="user-ledger-someone-else")],
        "user_ledger_id is set by the run itself",
    ),
    "a-string": (lambda a: ["just a string"], "run refused: malformed request"),
    "unknown-field": (
        lambda a: [_request(agent="test-agent", sudo=True)],
        "run refused: malformed request: sudo",
    ),
    "no-input": (lambda a: [], "a run takes one request payload (and a carry only from"),
    "three-inputs": (
        lambda a: [_request(agent="test-agent"), {}, {}],
        "got 3 payloads",
    ),
    "malformed-carry": (
        lambda a: [_request(agent="test-agent"), {"x": 1}],
        "run refused: malformed carry: x",
    ),
    "carry-with-resume-state": (
        lambda a: [_request(agent="test-agent"), {"resume_state": {"iteration": 99}}],
        "resume_state is set only by a run continuing as new",
    ),
    "carry-with-a-parent": (
        lambda a: [_request(agent="test-agent"), {"parent_workflow_id": "run-x", "depth": 1}],
        "parent_workflow_id and depth are set only for a run's sub-agents",
    ),
    "carry-with-stream-state": (  # forged events for the run's readers, from its start
        lambda a: [
            _request(agent="test-agent"),
            {"stream_state": {"log": [{"topic": "run_events", "data": "e30="}]}},
        ],
        "stream_state is set only by the run itself, when it continues as new",
    ),
    "carry-twice": (
        lambda a: [_request(agent="test-agent", depth=1), {"depth": 1}],
        "the carry comes in the second payload, not in the request",
    ),
}


@pytest.mark.parametrize("attack", sorted(START_ATTACKS))
async def test_a_started_run_obeys_its_worker_not_its_request(
    attack: str,
    tcli: TemporalCli,
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    task_queue: str,
    worker_settings: WorkerSettings,
    worker: None,
) -> None:
    make, reason = START_ATTACKS[attack]
    script_a_rocket(model)
    wid = f"run-attack-{uuid.uuid4().hex[:10]}"
    started = await tcli.start(contract.AGENT_RUN, wid, task_queue, make(agents))
    assert started.code == 0, started.output  # the server takes any input; the run decides

    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(client.get_workflow_handle(wid).result(), 30)
    assert reason in str(failed.value.cause)
    assert executions(worker_settings.data_dir) == []  # no tool ran: no rocket launched
    assert model.count() == 0  # not even the planner was asked
    assert task_failures(await history_of(client, wid)) == []


# -- 2. decisions as updates: refused by the validator, with the reason, writing nothing -


DECISION_ATTACKS: dict[str, tuple[str, Any, str]] = {
    # name: (update, payloads from the pending request, what the refusal says)
    "unknown-request": (
        contract.APPROVE,
        lambda r: [decision_json(r, request_id="a99")],
        "unknown request 'a99' (pending: a1)",
    ),
    "missing-digest": (
        contract.APPROVE,
        lambda r: [{"request_id": r.id, "approver": "ana"}],
        "the decision has no args_digest; it must carry",
    ),
    "wrong-digest": (
        contract.APPROVE,
        lambda r: [decision_json(r, args_digest="0" * 64)],
        "args_digest does not match the arguments asked about",
    ),
    "approver-not-allowed": (
        contract.APPROVE,
        lambda r: [decision_json(r, approver="intruder")],
        "'intruder' may not decide this; allowed: ana",
    ),
    "rejecter-not-allowed": (
        contract.REJECT,
        lambda r: [decision_json(r, approver="intruder")],
        "'intruder' may not decide this; allowed: ana",
    ),
    "extension-of-nothing": (
        contract.EXTEND_BUDGET,
        lambda r: [{"approver": "ana"}],
        "the extension adds nothing",
    ),
    "extension-negative": (
        contract.EXTEND_BUDGET,
        lambda r: [{"approver": "ana", "add_usd": -5}],
        "malformed budget extension: add_usd",
    ),
    "extension-over-policy": (
        contract.EXTEND_BUDGET,
        lambda r: [{"approver": "ana", "add_usd": 500}],
        "$500.0 is more than one extension may add (this agent's policy: $5.0)",
    ),
    "extension-by-intruder": (
        contract.EXTEND_BUDGET,
        lambda r: [{"approver": "intruder", "add_usd": 1}],
        "'intruder' may not decide this; allowed: ana",
    ),
    "extension-stale-seq": (
        contract.EXTEND_BUDGET,
        lambda r: [{"approver": "ana", "add_usd": 1, "seq": 7}],
        "extension number 7 is stale; this run's next one is 1",
    ),
    "malformed-string": (contract.APPROVE, lambda r: ["yes please"], "malformed decision"),
    "malformed-field": (
        contract.REJECT,
        lambda r: [decision_json(r, admin=True)],
        "malformed decision: admin: Extra inputs are not permitted",
    ),
    "malformed-extension": (
        contract.EXTEND_BUDGET,
        lambda r: [{"approver": "ana", "add_usd": "lots"}],
        "malformed budget extension: add_usd",
    ),
    "no-payload": (contract.APPROVE, lambda r: [], "expected one payload, got 0"),
    "two-payloads": (
        contract.APPROVE,
        lambda r: [decision_json(r), decision_json(r)],
        "expected one payload, got 2",
    ),
}


@pytest.mark.parametrize("attack", sorted(DECISION_ATTACKS))
async def test_a_refused_decision_says_why_and_changes_nothing(
    attack: str,
    tcli: TemporalCli,
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    worker: None,
) -> None:
    update, make, reason = DECISION_ATTACKS[attack]
    wid, request = await waiting_run(agents, model, ana_only(agents))
    before = await agents.status(wid)

    said = await tcli.update(wid, update, make(request))
    assert said.code != 0, said.output
    assert reason in said.stderr

    view = await agents.status(wid)
    assert [(r.id, r.state) for r in view.pending_approvals] == [
        (request.id, ApprovalState.PENDING)
    ]
    assert view.budget == before.budget and view.extensions == 0
    history = await history_of(client, wid)
    assert accepted_updates(history) == [contract.ADMISSION]  # the client's own; nothing else
    assert task_failures(history) == []


async def test_a_decided_request_cannot_be_decided_again(
    tcli: TemporalCli, agents: LocalAgents, client: Client, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(
        plan_reply(
            tool_task("one", "launch_rocket", name="moon"),
            tool_task("two", "launch_rocket", name="mars", depends_on=["one"]),
        ),
        purpose="plan",
    )
    model.set_responder("plan", lambda r: plan_reply(done=True))
    model.set_responder("summarize", lambda r: Reply.text("done"))
    handle = await agents.start_run(ana_only(agents), "launch two rockets")
    wid = handle.workflow_id
    first = await pending_request(agents, wid)
    await agents.approve(wid, Decision(**decision_json(first)))
    second = await next_pending(agents, wid, seen={first.id})

    for update in (contract.APPROVE, contract.REJECT):
        said = await tcli.update(wid, update, [decision_json(first, reason="again")])
        assert said.code != 0, said.output
        assert f"request {first.id} is already approved by ana" in said.stderr
    view = await agents.status(wid)
    assert [r.id for r in view.pending_approvals] == [second.id]
    history = await history_of(client, wid)
    # the client's own, and only the real decision
    assert accepted_updates(history) == [contract.ADMISSION, contract.APPROVE]
    assert task_failures(history) == []


# -- 3. malformed signals: audited and ignored, never failing or wedging the run --------


async def test_malformed_decision_signals_leave_the_run_waiting(
    tcli: TemporalCli,
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    worker_settings: WorkerSettings,
    worker: None,
    tmp_path: Path,
) -> None:
    wid, request = await waiting_run(agents, model)
    sent = [
        await tcli.signal(wid, contract.REJECT),  # no payload
        await tcli.signal(wid, contract.REJECT, [decision_json(request), decision_json(request)]),
        await tcli.signal(wid, contract.REJECT, ["reject it"]),
        await tcli.signal(wid, contract.REJECT, input_files=[junk_file(tmp_path, 300_000)]),
    ]
    assert [s.code for s in sent] == [0, 0, 0, 0], [s.output for s in sent]
    await signals_handled(client, wid, len(sent))

    assert (await client.get_workflow_handle(wid).describe()).status is (
        WorkflowExecutionStatus.RUNNING
    )
    view = await agents.status(wid)
    assert view.status is RunStatus.AWAITING_APPROVAL or view.status is RunStatus.RUNNING
    assert [(r.id, r.state) for r in view.pending_approvals] == [
        (request.id, ApprovalState.PENDING)
    ]
    history = await history_of(client, wid)
    assert task_failures(history) == []
    await replays(history)

    await agents.approve(wid, Decision(**decision_json(request)))
    report = await report_within(agents, wid, 60)
    assert report.status is RunStatus.COMPLETED
    assert [e[1] for e in executions(worker_settings.data_dir)] == ["moon"]  # launched once
    ignored = [(a.event, a.detail) for a in report.audit if not a.accepted]
    assert [e for e, _ in ignored] == ["reject_ignored"] * 4
    assert "expected one payload, got 0" in ignored[0][1]
    assert "expected one payload, got 2" in ignored[1][1]
    assert "malformed decision" in ignored[2][1] and "malformed decision" in ignored[3][1]


# -- 5. the server bounds what callers can add to a run's history ----------------------


async def test_the_server_bounds_signals_and_their_size(
    tcli: TemporalCli,
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    worker: None,
    tmp_path: Path,
) -> None:
    wid, request = await waiting_run(agents, model)
    big = await tcli.signal(wid, contract.REJECT, input_files=[junk_file(tmp_path, 600 * 1024)])
    assert big.code != 0, "a 600 KB signal was taken"
    assert "size" in big.stderr.lower() and "limit" in big.stderr.lower(), big.stderr

    for i in range(64):
        sent = await tcli.signal(
            wid, contract.APPROVE, [{"request_id": f"x{i}", "approver": "ana"}]
        )
        assert sent.code == 0, (i, sent.output)
    over = await tcli.signal(wid, contract.APPROVE, [{"request_id": "x64", "approver": "ana"}])
    assert over.code != 0, "a 65th signal was taken"
    assert "signal" in over.stderr.lower() and "limit" in over.stderr.lower(), over.stderr

    await signals_handled(client, wid, 64)
    view = await agents.status(wid)
    assert [r.id for r in view.pending_approvals] == [request.id]
    await agents.approve(wid, Decision(**decision_json(request)))
    report = await report_within(agents, wid, 60)
    assert report.status is RunStatus.COMPLETED
    # The run's own state stays bounded too: only so many ignored signals are audited.
    assert 0 < len([a for a in report.audit if not a.accepted]) <= MAX_AUDITED_IGNORED
    assert task_failures(await history_of(client, wid)) == []
