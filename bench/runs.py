"""Per-step overhead at 0 ms model latency, and throughput under concurrency.

A step's wall time is the gap between two consecutive planner requests of one run, as
the model process stamps them: plan + tool + everything the runtime does in between.
The three contenders run interleaved, one run at a time, each after a warm-up run.
"""

import asyncio
import itertools
import math
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench.agent import AGENT, Goal, bench_budget
from bench.floors import floor_work, floor_worker, run_floor_asyncio, run_floor_temporal
from bench.harness import Harness, self_cpu_s
from bench.history import breakdown, executions
from bench.model_proc import Request
from durable_agents._domain.run import RunStatus
from tests.support.agents import LocalAgents

RUN_TIMEOUT_S = 900.0


def uid(prefix: str) -> str:
    """A tag no other run of this benchmark uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def step_times_ms(requests: Sequence[Request], goals: Sequence[Goal]) -> list[float]:
    """Gaps between consecutive planner requests of each run, in ms."""
    tags = {g.tag for g in goals}
    times: dict[str, list[float]] = defaultdict(list)
    for r in requests:
        if r.purpose == "plan" and r.tag in tags:
            times[r.tag].append(r.received_at)
    gaps: list[float] = []
    for stamps in times.values():
        stamps.sort()
        gaps += [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
    return gaps


def summary(samples: Sequence[float]) -> dict[str, float]:
    """p50 and p99 of per-step times (ms) and the sample count."""
    return {
        "p50": round(percentile(samples, 50), 2),
        "p99": round(percentile(samples, 99), 2),
        "mean": round(sum(samples) / max(len(samples), 1), 2),
        "samples": len(samples),
    }


async def run_durable(agents: LocalAgents, goals: Sequence[Goal]) -> int:
    """Start one run of the test agent per goal concurrently, wait for all; return how many
    completed."""
    handles = await asyncio.gather(
        *(
            agents.start_run(
                AGENT, g.text(), request_id=g.tag, budget=bench_budget(agents.catalog, g.steps)
            )
            for g in goals
        )
    )
    reports = await asyncio.wait_for(
        asyncio.gather(*(agents.result(h.workflow_id) for h in handles)), RUN_TIMEOUT_S
    )
    return sum(r.status is RunStatus.COMPLETED for r in reports)


async def measure_overhead(h: Harness, steps: int, runs: int) -> dict[str, Any]:
    """Per-step times of durable-agents and both floors, and a history profile of each."""
    h.model.set_delay(0.0)
    spec = h.catalog.resolve(AGENT)
    fq, dq = h.queue("floor"), h.queue("overhead")
    work = floor_work(h.model.base_url, spec, h.workdir / "data" / fq)
    agents = h.agents(dq)
    contenders: dict[str, Callable[[Goal], Awaitable[object]]] = {
        "floor_asyncio": lambda g: run_floor_asyncio(work, g),
        "floor_temporal": lambda g: run_floor_temporal(h.client, fq, [g]),
        "durable": lambda g: run_durable(agents, [g]),
    }
    goals: dict[str, list[Goal]] = {name: [] for name in contenders}
    async with floor_worker(h.client, fq, work), h.worker(dq):
        for name, run in contenders.items():
            await run(Goal(uid(f"{name}-warm"), 2))
        h.model.clear()
        for _ in range(runs):
            for name, run in contenders.items():
                goal = Goal(uid(name), steps)
                goals[name].append(goal)
                await run(goal)
    requests = h.model.requests()
    result: dict[str, Any] = {
        name: summary(step_times_ms(requests, goals[name])) for name in contenders
    }
    durable_history = await executions(h.client, f"run-{goals['durable'][-1].tag}")
    floor_history = await executions(h.client, f"floor-{goals['floor_temporal'][-1].tag}")
    result["profile"] = {
        "durable": breakdown(durable_history, steps),
        "floor_temporal": breakdown(floor_history, steps),
    }
    return result


async def measure_throughput(h: Harness, runs: int, steps: int, latency_s: float) -> dict[str, Any]:
    """Steps per second and CPU seconds per step (worker process + server) for both."""
    h.model.set_delay(latency_s)
    spec = h.catalog.resolve(AGENT)
    out: dict[str, Any] = {}
    for name in ("floor_temporal", "durable"):
        queue = h.queue(f"tp-{name}")
        settings = h.settings(queue)
        options = {
            "max_concurrent_activities": settings.max_concurrent_activities,
            "max_cached_workflows": settings.max_cached_workflows,
        }
        work = floor_work(h.model.base_url, spec, settings.data_dir)
        agents = h.agents(queue)
        worker = (
            floor_worker(h.client, queue, work, **options)
            if name == "floor_temporal"
            else h.worker(queue)
        )
        async with worker:
            goals = [Goal(uid(f"tp-{name}"), steps) for _ in range(runs)]
            warm = [Goal(uid(f"tp-{name}-warm"), 1)]
            if name == "floor_temporal":
                await run_floor_temporal(h.client, queue, warm)
            else:
                await run_durable(agents, warm)
            cpu0, server0 = self_cpu_s(), h.server_cpu_s()
            started = asyncio.get_running_loop().time()
            if name == "floor_temporal":
                await asyncio.wait_for(run_floor_temporal(h.client, queue, goals), RUN_TIMEOUT_S)
                completed = runs
            else:
                completed = await run_durable(agents, goals)
            wall = asyncio.get_running_loop().time() - started
            cpu, server = self_cpu_s() - cpu0, h.server_cpu_s() - server0
        total = runs * steps
        out[name] = {
            "throughput_steps_per_s": round(total / wall, 2),
            "wall_s": round(wall, 2),
            "runs_completed": completed,
            "cpu_s_per_step": {
                "worker": round(cpu / total, 5),
                "server": round(server / total, 5),
                "total": round((cpu + server) / total, 5),
            },
        }
    return out
