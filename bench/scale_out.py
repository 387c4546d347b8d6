"""Scale-out: agent-run throughput with 1, 2 and 4 worker processes, on the dev server and
on the native cluster (``make bench BENCH_ARGS=--cluster``).

    python -m bench.scale_out [--cluster] [--workers 1,2,4] [--runs 40] [--steps 5]

Each size gets a fresh task queue and that many ``agent-worker`` processes (the benchmark
agent, the scripted model in its own process with ``--latency`` per call); the runs start
together and the clock stops when the last one ends. Throughput is completed tool steps per
second. Results go to ``bench/results/scale_out.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.agent import AGENT, PLUGINS, Goal
from bench.harness import process_cpu_s
from bench.model_proc import ModelProcess
from bench.runs import uid
from durable_agents._client.api import AgentsClient
from durable_agents._devtools.cluster import Cluster
from durable_agents._devtools.cluster_parts import ClusterPorts
from durable_agents._devtools.dev_server import DevServer
from durable_agents._infra.connection import TemporalSettings, connect
from durable_agents._workers.config import WorkerSettings
from tests.support.processes import WorkerProcess

OUT = Path(__file__).resolve().parent / "results" / "scale_out.json"


@contextlib.asynccontextmanager
async def backend(kind: str, workdir: Path) -> AsyncIterator[tuple[str, int]]:
    """A dev server or a cluster under ``workdir``: (frontend address, server pid)."""
    if kind == "cluster":
        cluster = Cluster(
            workdir / "cluster", ports=ClusterPorts.free(), workers=0, ui=False, tie_to_parent=True
        )
        try:
            await cluster.up()
            assert cluster.server.pid is not None
            yield cluster.address, cluster.server.pid
        finally:
            await asyncio.to_thread(cluster.down)
            cluster.discard_database()
    else:
        server = DevServer(db_file=workdir / "temporal.db", ui=False, log_file=workdir / "dev.log")
        try:
            await server.start()
            assert server.pid is not None
            yield server.address, server.pid
        finally:
            await server.stop()


async def measure(
    address: str,
    server_pid: int,
    model_url: str,
    workers: int,
    runs: int,
    steps: int,
    workdir: Path,
) -> dict[str, Any]:
    """``runs`` runs of ``steps`` tool steps each on ``workers`` worker processes."""
    queue = uid(f"scale-{workers}w")
    env = WorkerSettings(
        temporal=TemporalSettings(address=address, task_queue=queue),
        data_dir=workdir / "data" / queue,
        openai_api_key="bench",
        openai_base_url=model_url,
        plugins=PLUGINS,
    ).process_env()
    procs = [WorkerProcess(env, workdir / f"{queue}-{i}.log") for i in range(workers)]
    await asyncio.gather(*(p.start(timeout=120) for p in procs))
    try:
        agents = AgentsClient(await connect(address), queue)
        warm = Goal(uid("warm"), 1)
        await agents.result((await agents.start_run(AGENT, warm.text())).workflow_id)
        server_cpu0 = process_cpu_s(server_pid)
        workers_cpu0 = sum(process_cpu_s(p.pid or 0) for p in procs)
        started = time.monotonic()
        handles = await asyncio.gather(
            *(agents.start_run(AGENT, Goal(uid("run"), steps).text()) for _ in range(runs))
        )
        reports = await asyncio.gather(*(agents.result(h.workflow_id) for h in handles))
        wall = time.monotonic() - started
        server_cpu = process_cpu_s(server_pid) - server_cpu0
        workers_cpu = sum(process_cpu_s(p.pid or 0) for p in procs) - workers_cpu0
    finally:
        for proc in procs:
            proc.terminate()
    completed = sum(1 for r in reports if r.status.value == "completed")
    return {
        "workers": workers,
        "runs": runs,
        "runs_completed": completed,
        "steps_per_s": round(runs * steps / wall, 2),
        "runs_per_s": round(runs / wall, 2),
        "wall_s": round(wall, 1),
        "server_cpu_s_per_step": round(server_cpu / (runs * steps), 4),
        "workers_cpu_s_per_step": round(workers_cpu / (runs * steps), 4),
    }


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Every backend asked for, every worker count."""
    backends = ["dev_server", "cluster"] if args.cluster else ["dev_server"]
    model = ModelProcess().start()
    model.set_delay(args.latency)
    results: dict[str, Any] = {"runs": args.runs, "steps": args.steps, "latency_s": args.latency}
    try:
        for kind in backends:
            async with backend(kind, workdir / kind) as (address, pid):
                results[kind] = []
                for workers in args.workers:
                    row = await measure(
                        address, pid, model.base_url, workers, args.runs, args.steps, workdir
                    )
                    results[kind].append(row)
                    print(f"{kind:<10} {json.dumps(row)}", flush=True)
    finally:
        model.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse, run, print, write ``bench/results/scale_out.json``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cluster", action="store_true", help="also on the native cluster")
    parser.add_argument(
        "--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4]
    )
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.05, help="model latency per call (s)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="durable-agents-scale-"))
    result = asyncio.run(run(args, workdir))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out} (work dir {workdir})")
    return (
        0
        if all(
            row["runs_completed"] == row["runs"]
            for kind in ("dev_server", "cluster")
            for row in result.get(kind, [])
        )
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
