"""Per-step overhead at 0 ms model latency, and throughput under concurrency.

A step's wall time is the gap between two consecutive planner requests of one run, as
the model process stamps them: plan + tool + everything the runtime does in between.
The contenders run interleaved, one run at a time, each after a warm-up run.
"""

import asyncio
import itertools
import math
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from bench import harness, peer_langgraph
from bench.agent import AGENT, STEP_AGENT, Goal, bench_budget
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
                STEP_AGENT,
                g.text(),
                request_id=g.tag,
                budget=bench_budget(agents.catalog, g.steps),
            )
            for g in goals
        )
    )
    reports = await asyncio.wait_for(
        asyncio.gather(*(agents.result(h.workflow_id) for h in handles)), RUN_TIMEOUT_S
    )
    return sum(r.status is RunStatus.COMPLETED for r in reports)


@dataclass
class Meter:
    """CPU and durable writes a contender uses over its measured runs."""

    cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    writes: int = 0
    steps: int = 0

    def per_step(self) -> dict[str, Any]:
        """CPU seconds (this process, the server) and write transactions per step."""
        n = max(self.steps, 1)
        return {
            "cpu_s_per_step": {
                "worker": round(self.cpu_s / n, 5),
                "server": round(self.server_cpu_s / n, 5),
                "total": round((self.cpu_s + self.server_cpu_s) / n, 5),
            },
            "writes_per_step": round(self.writes / n, 2),
        }


def _delta(after: int, before: int) -> int:
    return (after - before) % 2**32  # the WAL index counter is 32 bits


async def measure_overhead(h: Harness, steps: int, runs: int) -> dict[str, Any]:
    """Per-step times, CPU and durable writes of durable-agents, the floors and the peer.

    Interleaved, one run at a time. ``durable`` calls a tool declared local (a local
    activity), as do the bare-Temporal floor and the others; ``durable_activity_tool``
    is durable-agents calling the same work as a normal activity. Writes are the
    Temporal server's SQLite commits (for the peer, its checkpointer's); the asyncio
    floor writes nothing durable. CPU is this process's (worker, peer, floor) and the
    server's (only the Temporal contenders use it).
    """
    h.model.set_delay(0.0)
    spec = h.catalog.resolve(AGENT)
    fq, dq = h.queue("floor"), h.queue("overhead")
    work = floor_work(h.model.base_url, spec, h.workdir / "data" / fq)
    agents = h.agents(dq)
    peer_db = h.workdir / "langgraph" / "checkpoints.sqlite"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(floor_worker(h.client, fq, work))
        await stack.enter_async_context(h.worker(dq))
        contenders: dict[str, Contender] = {
            "floor_asyncio": Contender(lambda g: run_floor_asyncio(work, g)),
            "floor_temporal": Contender(
                lambda g: run_floor_temporal(h.client, fq, [g]), h.server_commits, True
            ),
            "durable": Contender(lambda g: run_durable(agents, [g]), h.server_commits, True),
            "durable_activity_tool": Contender(
                lambda g: run_durable(agents, [g]), h.server_commits, True, kind="tool"
            ),
        }
        if peer_langgraph.available():
            peer = await stack.enter_async_context(peer_langgraph.langgraph_peer(work, peer_db))
            contenders["langgraph"] = Contender(
                peer.run, lambda: harness.wal_commits(peer_db), False
            )
        goals: dict[str, list[Goal]] = {name: [] for name in contenders}
        meters = {name: Meter() for name in contenders}
        for name, c in contenders.items():
            await c.run(Goal(uid(f"{name}-warm"), 2, kind=c.kind))
        h.model.clear()
        for _ in range(runs):
            for name, c in contenders.items():
                goal = Goal(uid(name), steps, kind=c.kind)
                goals[name].append(goal)
                m = meters[name]
                cpu0, server0, writes0 = self_cpu_s(), h.server_cpu_s(), c.writes()
                await c.run(goal)
                m.cpu_s += self_cpu_s() - cpu0
                if c.uses_server:
                    m.server_cpu_s += h.server_cpu_s() - server0
                m.writes += _delta(c.writes(), writes0)
                m.steps += steps
    requests = h.model.requests()
    result: dict[str, Any] = {
        name: {**summary(step_times_ms(requests, goals[name])), **meters[name].per_step()}
        for name in contenders
    }
    if "langgraph" not in contenders:
        result["langgraph"] = {"skipped": peer_langgraph.MISSING}
    durable_history = await executions(h.client, f"run-{goals['durable'][-1].tag}")
    floor_history = await executions(h.client, f"floor-{goals['floor_temporal'][-1].tag}")
    result["profile"] = {
        "durable": breakdown(durable_history, steps),
        "floor_temporal": breakdown(floor_history, steps),
    }
    return result


@dataclass
class Contender:
    """How to run one goal, and what durable writes to count for it."""

    run: Callable[[Goal], Awaitable[object]]
    writes: Callable[[], int] = lambda: 0
    uses_server: bool = False
    kind: str = "local"


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
            goals = [Goal(uid(f"tp-{name}"), steps, kind="local") for _ in range(runs)]
            warm = [Goal(uid(f"tp-{name}-warm"), 1, kind="local")]
            if name == "floor_temporal":
                await run_floor_temporal(h.client, queue, warm)
            else:
                await run_durable(agents, warm)
            cpu0, server0, writes0 = self_cpu_s(), h.server_cpu_s(), h.server_commits()
            started = asyncio.get_running_loop().time()
            if name == "floor_temporal":
                await asyncio.wait_for(run_floor_temporal(h.client, queue, goals), RUN_TIMEOUT_S)
                completed = runs
            else:
                completed = await run_durable(agents, goals)
            wall = asyncio.get_running_loop().time() - started
            cpu, server = self_cpu_s() - cpu0, h.server_cpu_s() - server0
            writes = _delta(h.server_commits(), writes0)
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
            "writes_per_step": round(writes / total, 2),
        }
    return out
