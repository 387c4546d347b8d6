"""Approvals an attacker cannot confuse: ids never reused, ended runs closing what they
asked, and, when the workers hold approvers' keys, decisions that prove who made them.

Attacks are made with the official ``temporal`` CLI (`tests.support.attacks`).
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client

from durable_agents._client.api import AgentsClient, DecisionRefusedError, RunEndedError
from durable_agents._client.keyring import ApproverKeyring, add_public_key
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain import contract
from durable_agents._domain import search_attributes as sa
from durable_agents._domain.approvals import (
    ApprovalKind,
    ApprovalRequest,
    ApprovalState,
    Decision,
    OnTimeout,
    Verdict,
    decision_message,
)
from durable_agents._domain.budget import BudgetLedger
from durable_agents._domain.run import RunRequest, RunStatus
from durable_agents._domain.spec import LoopLimits
from durable_agents._workers.config import WorkerSettings
from durable_agents._workflows.state import CARRIED_DECIDED_APPROVALS, RunState
from durable_agents.testing import report_within
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.attacks import (
    AttackedWorker,
    TemporalCli,
    accepted_updates,
    agentctl,
    ana_only,
    decision_json,
    history_of,
    next_pending,
    signals_handled,
    waiting_run,
    worker_process,
)
from tests.support.plans import plan_reply, tool_task
from tests.support.test_agent import build_spec

# -- 6. approval ids are unique for the life of a run, across continue-as-new ----------


def _state_with_decided_approvals(n: int) -> RunState:
    spec = build_spec()
    state = RunState(
        request=RunRequest(request_id="r1", goal="g", agent=spec.name),
        spec=spec,
        ledger=BudgetLedger(budget=spec.budget),
        started_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    now = datetime(2025, 1, 1, tzinfo=UTC)
    for _ in range(n):
        state.approvals.append(
            ApprovalRequest(
                id=state.next_approval_id(),
                kind=ApprovalKind.TOOL,
                args_digest="0" * 64,
                what="launch",
                why="asked",
                risk="irreversible",
                requested_at=now,
                deadline=now,
                on_timeout=OnTimeout.DENY,
                state=ApprovalState.APPROVED,
            )
        )
    return state


@pytest.mark.unit
def test_approval_ids_stay_unique_after_continue_as_new_drops_old_ones() -> None:
    state = _state_with_decided_approvals(30)
    seen = {a.id for a in state.approvals}
    assert len(seen) == 30
    carried = state.carried(state.spec.limits.observation_window)
    assert len(carried["approvals"]) == CARRIED_DECIDED_APPROVALS  # older ones dropped
    resumed = RunState.resumed(carried, state.request)
    fresh = [resumed.next_approval_id() for _ in range(5)]
    assert not seen & set(fresh) and len(set(fresh)) == 5


@pytest.mark.unit
def test_approval_ids_stay_unique_for_a_run_carried_before_ids_were_counted() -> None:
    """A run in flight from before ``approval_seq`` carried its approvals without it."""
    state = _state_with_decided_approvals(30)
    carried = state.carried(state.spec.limits.observation_window)
    del carried["approval_seq"]
    kept = {a["id"] for a in carried["approvals"]}
    resumed = RunState.resumed(carried, state.request)
    fresh = resumed.next_approval_id()
    assert fresh not in kept, f"{fresh} is already the id of a carried approval"


@pytest.mark.e2e
async def test_approval_ids_stay_unique_across_continue_as_new_in_a_run(
    agents: LocalAgents, client: Client, model: ScriptedModelServer, worker: None
) -> None:
    spec = agents.catalog.plugin("test-agent").build_spec()
    spec = spec.model_copy(
        update={"name": "short-lived", "limits": LoopLimits(continue_as_new_every=1)}
    )
    for n in range(3):  # one rocket per iteration, so one approval per execution
        model.enqueue(
            plan_reply(tool_task(f"go{n}", "launch_rocket", name=f"r{n}"), done=False),
            purpose="plan",
        )
    model.set_responder("plan", lambda r: plan_reply(done=True))
    model.set_responder("summarize", lambda r: Reply.text("done"))
    handle = await agents.start_run(spec, "three rockets, one per execution")
    wid = handle.workflow_id
    seen: set[str] = set()
    executions_seen: set[str] = set()
    for _ in range(3):
        request = await next_pending(agents, wid, seen)
        seen.add(request.id)
        executions_seen.add((await client.get_workflow_handle(wid).describe()).run_id or "")
        await agents.approve(wid, Decision(**decision_json(request)))
    report = await report_within(agents, wid, 60)
    assert report.status is RunStatus.COMPLETED
    assert len(executions_seen) == 3  # each approval was asked in an execution of its own
    assert len(seen) == 3
    assert sorted(a.id for a in report.approvals) == sorted(seen)


# -- 7. a run that ends closes its pending approvals, in every view --------------------


@pytest.mark.e2e
async def test_an_ended_run_closes_its_approvals_and_refuses_late_decisions(
    tcli: TemporalCli, agents: LocalAgents, client: Client, model: ScriptedModelServer, worker: None
) -> None:
    wid, request = await waiting_run(agents, model)
    await agents.cancel(wid)
    report = await report_within(agents, wid, 60)
    assert report.status is RunStatus.CANCELLED
    assert [(a.id, a.state) for a in report.approvals] == [(request.id, ApprovalState.CLOSED)]
    desc = await client.get_workflow_handle(wid).describe()
    assert desc.typed_search_attributes.get(sa.PENDING_APPROVAL) is False
    assert (await agents.status(wid)).pending_approvals == []

    with pytest.raises(RunEndedError, match=rf"{wid} already completed at \d{{4}}-\d\d-\d\d "):
        await agents.approve(wid, Decision(**decision_json(request)))
    late = await tcli.update(wid, contract.APPROVE, [decision_json(request)])
    assert late.code != 0 and "completed" in late.stderr, late.output


# -- 8. with approvers' keys on the workers, a decision proves who made it -------------


@pytest.fixture
async def ana_signs(
    worker_settings: WorkerSettings, agents: LocalAgents, tmp_path: Path
) -> AsyncIterator[tuple[ApproverKeyring, AttackedWorker]]:
    """Ana's keyring, and the only worker on the queue, holding ana's public key.

    The worker runs in a process of its own, as deployed: an attack that kills it must
    fail this test, not the whole session.
    """
    keyring = ApproverKeyring(tmp_path / "ana-keys")
    approvers = tmp_path / "approvers.json"
    add_public_key(approvers, "ana", keyring.generate("ana"))
    async with worker_process(
        worker_settings, tmp_path / "worker", specs=[ana_only(agents)], approver_keys=approvers
    ) as worker:
        yield keyring, worker


@pytest.mark.e2e
async def test_with_approver_keys_a_decision_must_be_signed_by_its_approver(
    ana_signs: tuple[ApproverKeyring, AttackedWorker],
    tcli: TemporalCli,
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    tmp_path: Path,
) -> None:
    keyring, worker = ana_signs
    wid, request = await waiting_run(agents, model, ana_only(agents))
    assert (await agents.status(wid)).identity_verified
    decision = Decision(**decision_json(request))
    impostor = ApproverKeyring(tmp_path / "impostor-keys")
    impostor.generate("ana")  # a key of the same name, not the one on the workers
    forged = impostor.sign("ana", decision_message(wid, Verdict.APPROVE, decision))
    # ana's real signature, but of a rejection: it cannot be replayed as an approval
    of_a_reject = keyring.sign("ana", decision_message(wid, Verdict.REJECT, decision))

    unsigned = await tcli.update(wid, contract.APPROVE, [decision_json(request)], timeout=30)
    assert unsigned.code != 0 and "the decision is not signed" in unsigned.stderr
    for signature in (forged, of_a_reject):
        said = await tcli.update(
            wid, contract.APPROVE, [decision_json(request, signature=signature)], timeout=30
        )
        assert worker.died() is None, worker.died()
        assert said.code != 0 and "the signature is not ana's" in said.stderr, said.output
    extension = await tcli.update(
        wid, contract.EXTEND_BUDGET, [{"approver": "ana", "add_usd": 1, "seq": 1}], timeout=30
    )
    assert extension.code != 0 and "not signed" in extension.stderr, extension.output
    with pytest.raises(DecisionRefusedError, match="the signature is not ana's"):
        await AgentsClient(client, agents.task_queue, keys=impostor).approve(wid, decision)
    sent = await tcli.signal(wid, contract.APPROVE, [decision_json(request)])  # older clients' way
    assert sent.code == 0
    await signals_handled(client, wid, 1)
    assert [r.id for r in (await agents.status(wid)).pending_approvals] == [request.id]
    assert accepted_updates(await history_of(client, wid)) == [contract.ADMISSION]

    ana = AgentsClient(client, agents.task_queue, keys=keyring)
    answer = await ana.approve(wid, decision)
    assert (answer.state, answer.decided_by, answer.identity_verified) == ("approved", "ana", True)
    report = await report_within(agents, wid, 60)
    assert report.status is RunStatus.COMPLETED and report.identity_verified
    assert worker.died() is None, worker.died()


@pytest.mark.e2e
async def test_without_approver_keys_every_view_says_identity_is_not_verified(
    agents: LocalAgents,
    model: ScriptedModelServer,
    dev_server: DevServer,
    task_queue: str,
    worker: None,
    tmp_path: Path,
) -> None:
    wid, request = await waiting_run(agents, model)
    status = await agentctl(
        dev_server.address,
        task_queue,
        tmp_path / "keys",
        "status",
        wid,
        namespace=dev_server.namespace,
    )
    answer = await agents.approve(wid, Decision(**decision_json(request)))
    assert answer.identity_verified is False
    assert (await report_within(agents, wid, 60)).identity_verified is False
    assert "approver identity not verified" in status.stdout, status.output
