"""Chaos harness: agent runs with real side effects under worker kills, server restarts and
model faults, then a check that nothing was stuck, repeated, overspent or lost.

    python -m bench.chaos [--runs N] [--kills K] [--server-restarts R] [--workers W]
                          [--fault-rate F] [--seed S] [--out PATH]

Roles: a Temporal dev server (subprocess, SQLite file in a temp dir, killed with SIGKILL and
restarted on the same file and port), W worker subprocesses (SIGKILLed at seeded random
moments and replaced), a scripted OpenAI-compatible model in this process (faults at
``--fault-rate``), and, as asyncio tasks in this process, the run starter, the approval
driver (the human) and the chaos schedule. Results go to ``bench/results/chaos.json``; the
exit status is 1 if an invariant fails (see ``bench.chaos_check``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from bench.chaos_check import RunOutcome, check, failed_invariants
from bench.chaos_cluster import ClusterUnderChaos
from bench.chaos_roles import WorkerPool, approval_driver, worker_env
from bench.chaos_script import ChaosScript, goal_for
from durable_agents._client.api import AgentsClient
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain.budget import BudgetOverride
from durable_agents._domain.run import RunReport
from durable_agents._infra.connection import connect
from durable_agents.testing.scripted_model import ScriptedModelServer

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "chaos.json"
TIGHT_LLM_CALLS = 3  # plan + the two parallel llm tasks: the summary does not fit


@dataclass
class ChaosConfig:
    """One chaos run's size and knobs (defaults: small enough for ``make test``)."""

    runs: int = 4
    kills: int = 2
    server_restarts: int = 1
    workers: int = 2
    fault_rate: float = 0.1
    fault_kinds: tuple[str, ...] = ("429", "500", "malformed")
    plan_fault_rate: float = 0.0  # responder-level: unknown tools, truncated, not JSON
    tight_every: int = 3  # every n-th run gets max_llm_calls=TIGHT_LLM_CALLS (0: none)
    seed: int = 7
    deadline_s: float = 150.0
    out: Path | None = DEFAULT_OUT
    workdir: Path | None = None  # None: a new temp dir, kept (named in the results)
    cluster: bool = False  # the native cluster (bench/chaos_cluster.py), not the dev server
    postgres_restarts: int = 0  # cluster only
    events: list[str] = field(default_factory=list)


def _schedule(cfg: ChaosConfig, rng: random.Random) -> tuple[float, list[tuple[float, str]]]:
    """(run start spacing, sorted chaos events as (seconds from start, kind))."""
    # A kill waits for its replacement to be ready (~3 s), a server restart ~5-10 s.
    window = max(6.0, 3.5 * cfg.kills + 10.0 * (cfg.server_restarts + cfg.postgres_restarts))
    kinds = ["kill"] * cfg.kills + ["server_restart"] * cfg.server_restarts
    kinds += ["postgres_restart"] * cfg.postgres_restarts
    events = sorted((rng.uniform(1.0, window), kind) for kind in kinds)
    return 0.8 * window / max(1, cfg.runs), events


async def _wait_health(client: Client, limit_s: float) -> float:
    """Seconds until the client's connection answers again (it reconnects by itself)."""
    started = time.monotonic()
    async with asyncio.timeout(limit_s):
        while True:
            with contextlib.suppress(Exception):
                if await client.service_client.check_health(timeout=timedelta(seconds=2)):
                    return time.monotonic() - started
            await asyncio.sleep(0.2)


async def _chaos(
    cfg: ChaosConfig,
    events: list[tuple[float, str]],
    server: DevServer | ClusterUnderChaos,
    pool: WorkerPool,
    client: Client,
    counters: dict[str, float],
    done: asyncio.Event,
) -> None:
    t0 = time.monotonic()
    for at, kind in events:
        while time.monotonic() - t0 < at:
            await pool.revive()
            await asyncio.sleep(0.2)
        if kind == "kill":
            await pool.kill_one()
        elif kind == "postgres_restart" and isinstance(server, ClusterUnderChaos):
            await server.restart_postgres()
            counters["reconnect_s"] = max(counters["reconnect_s"], await _wait_health(client, 60))
        else:
            server.kill()
            await asyncio.sleep(1.0)
            await server.restart()
            counters["server_restarts"] += 1
            counters["reconnect_s"] = max(counters["reconnect_s"], await _wait_health(client, 60))
        cfg.events.append(f"{time.monotonic() - t0:6.1f}s {kind}")
    done.set()
    while True:  # keep replacing workers that die on their own until the runs end
        await pool.revive()
        await asyncio.sleep(0.5)


async def _start_runs(agents: AgentsClient, cfg: ChaosConfig, runs: list[RunOutcome], gap: float):
    for i, run in enumerate(runs):
        tight = cfg.tight_every and i % cfg.tight_every == cfg.tight_every - 1
        budget = BudgetOverride(max_llm_calls=TIGHT_LLM_CALLS) if tight else None
        while True:  # the same request id makes a retried start return the same run
            try:
                await agents.start_run(
                    "test-agent",
                    goal_for(run.tag),
                    request_id=run.tag + f"-{cfg.seed}",
                    budget=budget,
                )
                break
            except Exception:
                await asyncio.sleep(0.5)
        await asyncio.sleep(gap)


async def _watch(client: Client, run: RunOutcome) -> None:
    """Wait for the run to close (tolerating server restarts), then fetch its report."""
    handle = client.get_workflow_handle(run.workflow_id, result_type=RunReport)
    while True:
        try:
            desc = await handle.describe()
            if desc.status == WorkflowExecutionStatus.COMPLETED:
                run.report = await handle.result()
                run.terminal = True
                return
            if desc.status not in (None, WorkflowExecutionStatus.RUNNING):
                run.error, run.terminal = f"workflow {desc.status.name}", True
                return
        except Exception:  # not started yet, or the server is restarting
            pass
        await asyncio.sleep(0.5)


async def _history_failures(client: Client, run: RunOutcome) -> None:
    with contextlib.suppress(Exception):
        history = await client.get_workflow_handle(run.workflow_id).fetch_history()
        failed = EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        run.workflow_task_failures = sum(1 for e in history.events if e.event_type == failed)


async def _last_events(client: Client, run: RunOutcome, count: int = 6) -> None:
    """Name a run that did not end with what it last did, for the evidence."""
    try:
        handle = client.get_workflow_handle(run.workflow_id)
        events = (await handle.fetch_history()).events[-count:]
        desc = await handle.describe()
    except Exception as err:  # the server may be what is wrong
        run.error = f"its history could not be read: {err}"
        return
    names = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events]
    pending = [
        f"{a.activity_type.name}#{a.activity_id} attempt {a.attempt}"
        for a in desc.raw_description.pending_activities
    ]
    run.error = f"last events: {', '.join(names)}; pending: {pending or 'none'}"


async def run_chaos(cfg: ChaosConfig) -> dict[str, object]:
    """Run the whole scenario and return the results (also written to ``cfg.out``)."""
    rng = random.Random(cfg.seed)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        # Kept afterwards (worker and server logs, the effects ledger): it is the evidence.
        root = cfg.workdir or Path(tempfile.mkdtemp(prefix="durable-agents-chaos-"))
        root.mkdir(parents=True, exist_ok=True)
        data_dir = root / "agent-data"
        server: DevServer | ClusterUnderChaos = (
            ClusterUnderChaos(root)
            if cfg.cluster
            else DevServer(db_file=root / "temporal.db", ui=False, log_file=root / "server.log")
        )
        model = stack.enter_context(ScriptedModelServer())
        script = ChaosScript(cfg.seed, cfg.plan_fault_rate)
        script.install(model)
        if cfg.fault_rate > 0:
            model.inject_faults(cfg.fault_rate, cfg.fault_kinds, cfg.seed)
        await server.start()
        queue = f"chaos-{cfg.seed}"
        env = worker_env(server.address, queue, data_dir, model.base_url)
        pool = WorkerPool(env, root, cfg.workers, rng)
        tasks: list[asyncio.Task[None]] = []
        counters = {"server_restarts": 0.0, "reconnect_s": 0.0}
        done = asyncio.Event()
        try:
            client = await connect(server.address)
            agents = AgentsClient(client, queue)
            await pool.start()
            runs = [RunOutcome(f"r{i:03d}", f"run-r{i:03d}-{cfg.seed}") for i in range(cfg.runs)]
            gap, events = _schedule(cfg, rng)
            tasks = [
                asyncio.create_task(_start_runs(agents, cfg, runs, gap)),
                asyncio.create_task(approval_driver(agents, runs, rng)),
            ]
            tasks.append(
                asyncio.create_task(_chaos(cfg, events, server, pool, client, counters, done))
            )
            watchers = [asyncio.create_task(_watch(client, r)) for r in runs]
            tasks += watchers
            deadline = cfg.deadline_s + (events[-1][0] if events else 0.0)
            await asyncio.wait(watchers, timeout=deadline)
            # Let the scheduled chaos finish (if the runs were faster), then stop it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 60 + 5.0 * len(events))
            await asyncio.gather(*(_history_failures(client, r) for r in runs))
            await asyncio.gather(*(_last_events(client, r) for r in runs if not r.terminal))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            pool.stop()
            await server.stop()
        counts, evidence = check(runs, data_dir)
        result: dict[str, object] = {
            "runs": cfg.runs,
            "worker_kills": pool.kills,
            "server_restarts": int(counters["server_restarts"]),
            "postgres_restarts": server.postgres_restarts
            if isinstance(server, ClusterUnderChaos)
            else 0,
            "backend": "cluster" if cfg.cluster else "dev_server",
            "workdir": str(root),
            "llm_faults": script.injected_faults(model),
            **counts,
            "seed": cfg.seed,
            "duration_s": round(time.monotonic() - started, 1),
            "workers": cfg.workers,
            "worker_exits": pool.exits,
            "fault_rate": cfg.fault_rate,
            "plan_fault_rate": cfg.plan_fault_rate,
            "scripted_faults": script.scripted_faults,
            "max_reconnect_s": round(counters["reconnect_s"], 1),
            "events": cfg.events,
            "evidence": evidence,
            "failed_invariants": [],
        }
        result["failed_invariants"] = failed_invariants(result)
        if cfg.out is not None:
            cfg.out.parent.mkdir(parents=True, exist_ok=True)
            cfg.out.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
        return result


def render(result: dict[str, object]) -> str:
    """The results as a two-column table."""
    skip = {"events", "evidence"}
    rows = [
        (k, json.dumps(v) if isinstance(v, dict | list) else str(v))
        for k, v in result.items()
        if k not in skip
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines += [f"  ! {line}" for line in result.get("evidence") or []]  # type: ignore[attr-defined]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the scenario, print the table; 1 if an invariant fails."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    d = ChaosConfig()
    parser.add_argument("--runs", type=int, default=d.runs)
    parser.add_argument("--kills", type=int, default=d.kills)
    parser.add_argument("--server-restarts", type=int, default=d.server_restarts)
    parser.add_argument("--workers", type=int, default=d.workers)
    parser.add_argument("--fault-rate", type=float, default=d.fault_rate)
    parser.add_argument("--plan-fault-rate", type=float, default=d.plan_fault_rate)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--deadline", type=float, default=d.deadline_s)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cluster", action="store_true", help="on the native cluster")
    parser.add_argument("--postgres-restarts", type=int, default=0, help="with --cluster")
    parser.add_argument("--workdir", type=Path, help="kept afterwards (default: a new temp dir)")
    args = parser.parse_args(argv)
    cfg = ChaosConfig(
        runs=args.runs,
        kills=args.kills,
        server_restarts=args.server_restarts,
        workers=args.workers,
        fault_rate=args.fault_rate,
        plan_fault_rate=args.plan_fault_rate,
        seed=args.seed,
        deadline_s=args.deadline,
        out=args.out,
        workdir=args.workdir,
        cluster=args.cluster,
        postgres_restarts=args.postgres_restarts,
    )
    result = asyncio.run(run_chaos(cfg))
    print(render(result))
    return 1 if result["failed_invariants"] else 0


if __name__ == "__main__":
    sys.exit(main())
