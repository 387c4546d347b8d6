"""Chaos: worker kills, a server restart and model faults, then nothing stuck, repeated,
overspent or lost (``bench.chaos`` at its small default size, plus two focused scenarios)."""

import asyncio
import random
import uuid
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import Client

from bench.chaos import ChaosConfig, run_chaos
from bench.chaos_check import RunOutcome, check
from bench.chaos_roles import ChaosWorker, approval_driver
from bench.chaos_script import ChaosScript, effect_names, goal_for
from durable_agents._domain import contract
from durable_agents._domain.run import RunStatus
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import ScriptedModelServer
from tests.support import test_agent
from tests.support.agents import LocalAgents

pytestmark = [pytest.mark.crash, pytest.mark.e2e]

DOCUMENTED = {s.value for s in RunStatus if s.terminal} - {RunStatus.CANCELLED.value}
INVARIANTS = ("stuck", "duplicate_effects", "budget_overruns", "lost_approvals")


@pytest.mark.timeout(240)
async def test_harness_default_size_keeps_every_invariant(tmp_path: Path) -> None:
    result = await run_chaos(ChaosConfig(out=tmp_path / "chaos.json", workdir=tmp_path / "w"))
    assert (tmp_path / "chaos.json").exists()
    assert {k: result[k] for k in INVARIANTS} == dict.fromkeys(INVARIANTS, 0), result["evidence"]
    assert result["failed_invariants"] == [], result["evidence"]
    assert result["worker_kills"] == 2 and result["server_restarts"] == 1
    assert result["completed"] and result["rocket_launches"]


async def _holder_of_slow_effect(
    client: Client, runs: list[RunOutcome], workers: list[ChaosWorker], data_dir: Path
) -> ChaosWorker:
    """The worker running some slow record_effect right now (by its pid@host identity)."""
    slow = {effect_names(r.tag)[2] for r in runs}
    async with asyncio.timeout(60):
        while True:
            started = {e[1] for e in test_agent.executions(data_dir, "started")} & slow
            done = {e[1] for e in test_agent.executions(data_dir)}
            if started - done:
                for run in runs:
                    desc = await client.get_workflow_handle(run.workflow_id).describe()
                    for act in desc.raw_description.pending_activities:
                        who = act.last_worker_identity.split("@")[0]
                        if act.activity_type.name == contract.INVOKE_TOOL and who:
                            holder = [w for w in workers if str(w.pid) == who]
                            if holder:
                                return holder[0]
            await asyncio.sleep(0.1)


async def test_three_workers_one_killed_mid_activity_others_finish_exactly_once(
    agents: LocalAgents,
    client: Client,
    model: ScriptedModelServer,
    worker_settings: WorkerSettings,
    tmp_path: Path,
) -> None:
    ChaosScript(seed=1).install(model)
    data = worker_settings.data_dir
    env = worker_settings.process_env()
    workers = [ChaosWorker(env, tmp_path / f"worker-{i}.log") for i in range(3)]
    await asyncio.gather(*(w.start() for w in workers))
    key = uuid.uuid4().hex[:6]
    runs = [RunOutcome(f"r{i:03d}", f"run-{key}-{i}") for i in range(3)]
    driver = asyncio.create_task(approval_driver(agents, runs, random.Random(1)))
    try:
        for i, run in enumerate(runs):
            await agents.start_run("test-agent", goal_for(run.tag), request_id=f"{key}-{i}")
        victim = await _holder_of_slow_effect(client, runs, workers, data)
        victim.kill()
        for run in runs:
            run.report = await asyncio.wait_for(agents.result(run.workflow_id), 120)
            run.terminal = True
    finally:
        driver.cancel()
        for w in workers:
            w.terminate()
    assert not victim.alive and sum(w is not victim for w in workers) == 2
    assert all(r.report and r.report.status is RunStatus.COMPLETED for r in runs), [
        (r.report.status, r.report.errors) for r in runs if r.report
    ]
    counts, evidence = check(runs, data)
    assert counts["duplicate_effects"] == counts["lost_approvals"] == 0, evidence
    expected = {name for r in runs for name in effect_names(r.tag)}
    assert Counter(test_agent.effects(data)) == dict.fromkeys(expected, 1)
    assert counts["rocket_launches"] == 3
    # The kill interrupted a slow effect: it started twice and took effect once.
    started = Counter(e[1] for e in test_agent.executions(data, "started"))
    assert any(started[effect_names(r.tag)[2]] >= 2 for r in runs), started


@pytest.mark.timeout(240)
async def test_model_faults_end_every_run_in_a_documented_status(tmp_path: Path) -> None:
    cfg = ChaosConfig(
        runs=4,
        kills=0,
        server_restarts=0,
        workers=2,
        fault_rate=0.25,
        plan_fault_rate=0.25,
        seed=11,
        out=None,
        workdir=tmp_path / "w",
    )
    result = await run_chaos(cfg)
    statuses = result["status_counts"]
    assert isinstance(statuses, dict)
    assert set(statuses) <= DOCUMENTED, result["evidence"]
    assert result["stuck"] == 0 and result["workflow_task_failure_loops"] == 0, result["evidence"]
    assert result["duplicate_effects"] == result["budget_overruns"] == 0, result["evidence"]
    assert result["llm_faults"] and result["scripted_faults"], result
