"""A user's ledger changes only through the runs it holds money for and signed operator
commands: forged ledger messages, made with the official ``temporal`` CLI, change nothing.

Tests whose attack makes a worker verify a signature run their worker in a process of its
own, as deployed: an attack that kills it fails the test, not the whole session.
"""

import asyncio
import base64
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from durable_agents._activities.user_limits import UserLimits
from durable_agents._client.api import InvalidRunRequestError
from durable_agents._client.keyring import ApproverKeyring, add_public_key
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain import contract
from durable_agents._domain.budget import BudgetOverride
from durable_agents._domain.signatures import new_private_key, public_key_of, sign
from durable_agents._domain.user_ledger import (
    LedgerAdjustment,
    LedgerReservation,
    UserSpend,
    ledger_workflow_id,
)
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing import report_within
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.attacks import (
    AttackedWorker,
    TemporalCli,
    agentctl,
    history_of,
    junk_file,
    replays,
    script_a_rocket,
    signals_handled,
    task_failures,
    waiting_run,
    worker_process,
)
from tests.support.plans import plan_reply

pytestmark = pytest.mark.e2e

# Base64 of 64 bytes: shaped like an Ed25519 signature, made by nobody.
MADE_UP_SIGNATURE = base64.b64encode(bytes(range(64))).decode()


@pytest.fixture
def user() -> str:
    """A user of this test's own (ledgers outlive tests)."""
    return f"u-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def operator_keys(tmp_path: Path) -> tuple[ApproverKeyring, Path]:
    """Operator op's keyring, and an approver keys file holding op's public key."""
    keyring = ApproverKeyring(tmp_path / "keys")
    approvers = tmp_path / "approvers.json"
    add_public_key(approvers, "op", keyring.generate("op"))
    return keyring, approvers


@pytest.fixture
async def ledger_worker(
    worker_settings: WorkerSettings,
    operator_keys: tuple[ApproverKeyring, Path],
    tmp_path: Path,
    user: str,
) -> AsyncIterator[AttackedWorker]:
    """The only worker on the queue, in its own process: the user may spend $2 a month,
    and op's key is on it."""
    async with worker_process(
        worker_settings,
        tmp_path / "worker",
        user_limits={user: 2.0},
        approver_keys=operator_keys[1],
    ) as worker:
        yield worker


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def _handled(client: Client, ledger: str, signals: int, worker: AttackedWorker) -> None:
    """Wait until the ledger has handled ``signals`` signals (or say its worker died)."""
    try:
        await signals_handled(client, ledger, signals, timeout=30)
    except TimeoutError:
        raise AssertionError(worker.died() or "the ledger did not handle the signals") from None


def _same_balance(after: UserSpend, before: UserSpend) -> None:
    assert (after.spent_micros, after.reservations) == (before.spent_micros, before.reservations)


# -- 3. malformed signals leave a ledger running, its balance unchanged -----------------


async def test_malformed_signals_leave_a_ledger_and_its_balance_alone(
    tcli: TemporalCli,
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    user_limits: UserLimits,
    user: str,
    worker: None,
    tmp_path: Path,
) -> None:
    user_limits.update({user: 2.0})
    run, _ = await waiting_run(agents, model, user=user)  # holds $1 of the user's $2
    ledger = ledger_workflow_id(user)
    before = await agents.user_balance(user)
    assert run in before.reservations

    sent = [
        await tcli.signal(ledger, contract.SETTLE),  # no payload
        await tcli.signal(ledger, contract.RELEASE, [{"run_id": run}, {"run_id": run}]),
        await tcli.signal(ledger, contract.SETTLE, ["settle it"]),
        await tcli.signal(ledger, contract.RELEASE, input_files=[junk_file(tmp_path, 300_000)]),
    ]
    assert [s.code for s in sent] == [0, 0, 0, 0], [s.output for s in sent]
    await signals_handled(client, ledger, len(sent))

    desc = await client.get_workflow_handle(ledger).describe()
    assert desc.status is WorkflowExecutionStatus.RUNNING
    after = await agents.user_balance(user)
    _same_balance(after, before)
    refused = [(e.op, e.detail) for e in after.audit if not e.accepted]
    assert [op for op, _ in refused] == [contract.SETTLE, contract.RELEASE] * 2
    assert "expected one payload, got 0" in refused[0][1]
    assert "expected one payload, got 2" in refused[1][1]
    assert all("malformed ledger message" in why for _, why in refused[2:])
    history = await history_of(client, ledger)
    assert task_failures(history) == []
    await replays(history)


# -- 4. forged ledger messages -----------------------------------------------------------


async def test_a_forged_release_does_not_free_a_live_runs_hold(
    tcli: TemporalCli,
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    user: str,
    ledger_worker: AttackedWorker,
) -> None:
    run, _ = await waiting_run(agents, model, user=user)
    ledger = ledger_workflow_id(user)
    before = await agents.user_balance(user)
    assert run in before.reservations

    forged: list[dict[str, Any]] = [
        {"run_id": run},
        {"run_id": run, "issued_at": _now(), "signature": MADE_UP_SIGNATURE},
    ]
    for n, release in enumerate(forged, start=1):
        sent = await tcli.signal(ledger, contract.RELEASE, [release])
        assert sent.code == 0, sent.output
        await _handled(client, ledger, n, ledger_worker)
    assert ledger_worker.died() is None, ledger_worker.died()

    after = await agents.user_balance(user)
    _same_balance(after, before)  # the run still holds its share
    refused = [(e.op, e.detail) for e in after.audit if not e.accepted]
    assert [op for op, _ in refused] == [contract.RELEASE] * 2
    assert "unsigned: only a run's worker (or an operator) may change a ledger" in refused[0][1]
    assert "the signature is not a worker's" in refused[1][1]


async def test_a_forged_reservation_is_refused_and_the_users_runs_still_start(
    tcli: TemporalCli,
    agents: LocalAgents,
    model: ScriptedModelServer,
    user: str,
    ledger_worker: AttackedWorker,
) -> None:
    first, _ = await waiting_run(agents, model, user=user)  # holds $1 of the user's $2
    ledger = ledger_workflow_id(user)
    ghost = {"run_id": "run-ghost", "amount_micros": 1_000_000_000, "limit_micros": 10**12}

    unsigned = await tcli.update(ledger, contract.RESERVE, [ghost], timeout=30)
    assert unsigned.code != 0
    assert "unsigned: only a run's worker (or an operator) may change a ledger" in (
        unsigned.stderr
    ), unsigned.output
    made_up = {**ghost, "issued_at": _now(), "signature": MADE_UP_SIGNATURE}
    signed = await tcli.update(ledger, contract.RESERVE, [made_up], timeout=30)
    assert ledger_worker.died() is None, ledger_worker.died()
    assert signed.code != 0 and "the signature is not a worker's" in signed.stderr, signed.output
    assert list((await agents.user_balance(user)).reservations) == [first]

    second = await agents.start_run(
        "test-agent", "the next run", user=user, budget=BudgetOverride(max_cost_usd=0.5)
    )
    assert second.admitted is True
    assert set((await agents.user_balance(user)).reservations) <= {first, second.workflow_id}
    await report_within(agents, second.workflow_id, 60)


async def test_a_forged_adjustment_is_refused(
    tcli: TemporalCli,
    agents: LocalAgents,
    model: ScriptedModelServer,
    user: str,
    ledger_worker: AttackedWorker,
) -> None:
    await waiting_run(agents, model, user=user)
    ledger = ledger_workflow_id(user)
    before = await agents.user_balance(user)
    free = {"delta_micros": -(10**12), "reason": "free money"}
    attempts = [
        ({"operator": "op", **free}, "unsigned: only a run's worker (or an operator)"),
        (
            {"operator": "mallory", **free, "issued_at": _now(), "signature": MADE_UP_SIGNATURE},
            "'mallory' is not an operator with a key on the workers",
        ),
        (  # op is an operator, but this is not op's signature
            {"operator": "op", **free, "issued_at": _now(), "signature": MADE_UP_SIGNATURE},
            "the signature is not op's",
        ),
    ]
    for adjustment, reason in attempts:
        said = await tcli.update(ledger, contract.ADJUST, [adjustment], timeout=30)
        assert ledger_worker.died() is None, ledger_worker.died()
        assert said.code != 0 and reason in said.stderr, said.output
    _same_balance(await agents.user_balance(user), before)


async def test_a_squatted_ledger_starts_from_zero_whatever_its_input(
    tcli: TemporalCli,
    agents: LocalAgents,
    model: ScriptedModelServer,
    task_queue: str,
    user: str,
    worker_settings: WorkerSettings,
    tmp_path: Path,
) -> None:
    squatter = new_private_key()
    squatter_public = public_key_of(squatter)
    ledger = ledger_workflow_id(user)
    forged = {
        "user": user,
        "period": "2099-01",
        "spent_micros": -(10**12),  # an allowance without end
        "reservations": {},
        "worker_keys": [squatter_public],
        "operator_keys": {"mallory": squatter_public},
    }
    async with worker_process(worker_settings, tmp_path / "worker", user_limits={user: 0.5}) as w:
        started = await tcli.start(contract.USER_LEDGER, ledger, task_queue, [forged])
        assert started.code == 0, started.output

        balance = await _trusting_balance(agents, user)
        assert balance.spent_micros == 0 and balance.period != "2099-01"
        assert squatter_public not in balance.worker_keys and balance.operator_keys == {}

        now = datetime.now(UTC)
        adjustment = LedgerAdjustment(
            operator="mallory", delta_micros=-(10**12), reason="mine now", issued_at=now
        )
        reservation = LedgerReservation(
            run_id="run-squatter", amount_micros=1, limit_micros=10**12, issued_at=now
        )
        for op, message, reason in [
            (contract.ADJUST, adjustment, "'mallory' is not an operator with a key on the workers"),
            (contract.RESERVE, reservation, "the signature is not a worker's"),
        ]:
            signed = message.model_copy(
                update={"signature": sign(squatter, message.message(op, ledger))}
            )
            said = await tcli.update(ledger, op, [signed.model_dump(mode="json")], timeout=30)
            assert w.died() is None, w.died()
            assert said.code != 0 and reason in said.stderr, said.output

        # The user's real limit holds: a run needing $1 does not fit in $0.50.
        script_a_rocket(model)
        with pytest.raises(InvalidRunRequestError, match=rf"user '{user}' has spent \$0\.0000"):
            await agents.start_run("test-agent", "spend the forged allowance", user=user)


async def _trusting_balance(agents: LocalAgents, user: str, timeout: float = 30) -> UserSpend:
    """The ledger's balance once it has loaded who may sign for it."""
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    while True:
        try:
            balance = await agents.user_balance(user)
            if balance.worker_keys:
                return balance
        except Exception:  # not picked up by a worker yet
            pass
        assert datetime.now(UTC) < deadline, "the ledger never loaded its signers"
        await asyncio.sleep(0.1)


async def test_a_ledger_squatted_on_a_queue_no_worker_polls_does_not_block_its_user(
    tcli: TemporalCli,
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    user_limits: UserLimits,
    user: str,
    worker: None,
) -> None:
    ledger = ledger_workflow_id(user)
    squatted = await tcli.start(contract.USER_LEDGER, ledger, "nobody-polls-this", [{"user": user}])
    assert squatted.code == 0, squatted.output
    user_limits.update({user: 5.0})
    script_a_rocket(model)
    rid = uuid.uuid4().hex
    wid = f"run-{rid}"
    try:
        # Refused at once, naming the squatter and the fix (not left waiting forever).
        with pytest.raises(InvalidRunRequestError, match="held by a workflow this deploy"):
            async with asyncio.timeout(30):
                await agents.start_run("test-agent", "after a squatter", request_id=rid, user=user)
        assert await _admitted_or_refused(agents, wid, timeout=20) == "refused"
    finally:
        for stuck in (wid, ledger):
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(stuck).terminate("test cleanup")


async def _admitted_or_refused(agents: LocalAgents, workflow_id: str, timeout: float) -> str | None:
    """'admitted' once the run answers status, 'refused' once it failed; None if neither."""
    handle = agents.temporal.get_workflow_handle(workflow_id)
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    while datetime.now(UTC) < deadline:
        if (await handle.describe()).status is WorkflowExecutionStatus.FAILED:
            return "refused"
        with contextlib.suppress(Exception):  # not admitted yet: no state to show
            await agents.status(workflow_id)
            return "admitted"
        await asyncio.sleep(0.2)
    return None


# -- 9. operators correct a ledger with a key the workers hold ---------------------------


async def test_an_operator_with_a_key_on_the_workers_corrects_a_ledger(
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    dev_server: DevServer,
    task_queue: str,
    user_limits: UserLimits,
    user: str,
    worker_settings: WorkerSettings,
    operator_keys: tuple[ApproverKeyring, Path],
) -> None:
    keyring, approvers = operator_keys
    user_limits.update({user: 5.0})
    settings = dataclasses.replace(worker_settings, approver_keys_file=approvers)
    async with build_worker(client, settings, catalog=agents.catalog, limits=user_limits):
        model.set_responder("plan", lambda r: plan_reply(done=True))
        model.set_responder("summarize", lambda r: Reply.text("done"))
        run = await agents.start_run("test-agent", "spend a little", user=user)
        await report_within(agents, run.workflow_id, 60)
        before = await agents.user_balance(user)

        ctl = partial(
            agentctl,
            dev_server.address,
            task_queue,
            keyring.directory,
            namespace=dev_server.namespace,
        )
        adjusted = await ctl(
            "ledger", "adjust", user, "--usd", "-0.01", "--reason", "refund", "--as", "op"
        )
        assert adjusted.code == 0, adjusted.output
        after = await agents.user_balance(user)
        assert after.spent_micros == max(0, before.spent_micros - 10_000)
        shown = await ctl("ledger", "show", user)
        assert shown.code == 0, shown.output
        assert "✓ adjust op -10000 micros: refund" in shown.stdout, shown.stdout


async def test_an_operator_without_a_key_on_the_workers_is_refused(
    agents: LocalAgents,
    model: ScriptedModelServer,
    dev_server: DevServer,
    task_queue: str,
    user_limits: UserLimits,
    user: str,
    worker: None,
    operator_keys: tuple[ApproverKeyring, Path],
) -> None:
    keyring, _ = operator_keys  # op has a key, but the workers do not know it
    user_limits.update({user: 5.0})
    await waiting_run(agents, model, user=user)
    before = await agents.user_balance(user)
    ctl = partial(
        agentctl, dev_server.address, task_queue, keyring.directory, namespace=dev_server.namespace
    )
    adjusted = await ctl(
        "ledger", "adjust", user, "--usd", "-0.01", "--reason", "refund", "--as", "op"
    )
    assert adjusted.code == 8, adjusted.output  # refused, and told why
    assert "'op' is not an operator with a key on the workers" in adjusted.stderr
    _same_balance(await agents.user_balance(user), before)
    shown = await ctl("ledger", "show", user)
    assert "adjust op" not in shown.stdout, shown.stdout
