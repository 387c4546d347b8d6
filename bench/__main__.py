"""``python -m bench``: measure durable-agents against its floors in one run.

Starts a dev server on a SQLite file and the scripted model in its own process, runs the
scenarios (overhead, throughput, history, recovery, memory), writes
``bench/results/latest.json`` and prints a table. ``--smoke`` shrinks everything for a
test; ``--only`` runs some scenarios (the others' keys are null).
"""

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import peer_langgraph
from bench.agent import Goal
from bench.harness import Harness, open_harness
from bench.history import long_run
from bench.recovery import SDK_DEFAULT_STICKY_S, measure_memory, measure_recovery
from bench.report import machine, table, targets
from bench.runs import measure_overhead, measure_throughput, uid
from bench.streaming import measure_streaming
from durable_agents._infra.logs import configure_logging

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
CONTENDERS_NOTE = (
    "One run at a time, interleaved, 0 ms model latency; a step is the gap between two "
    "planner requests of a run. durable: durable-agents with the tool declared local (a "
    "local activity); durable_activity_tool: the same tool as a normal activity; "
    "floor_temporal: a bare Temporal workflow doing the same activities (plan as an "
    "activity, the tool as a local activity); langgraph: a LangGraph graph with an "
    "AsyncSqliteSaver checkpointer, durability='sync', in this process; floor_asyncio: a "
    "plain loop, nothing durable. cpu_s_per_step: this process (worker, peer or loop) and "
    "the Temporal server (its contenders only); the model runs in its own process and is "
    "not counted. writes_per_step: SQLite write transactions of the Temporal server's "
    "file (langgraph: of its checkpoint file), from the WAL index's commit counter."
)
SCENARIOS = ("overhead", "throughput", "history", "recovery", "memory", "streaming")  # run order
# The headline numbers (durable-agents'); null when their scenario did not run.
METRICS = (
    "overhead_ms_per_step",
    "overhead_ratio_vs_floor_temporal",
    "overhead_ratio_vs_langgraph",
    "throughput_steps_per_s",
    "cpu_s_per_step",
    "history_bytes_per_step",
    "history_events_per_step",
    "long_run_completed",
    "recovery_s",
    "mid_tool_recovery_s",
    "memory_kib_per_waiting_run",
    "stream_token_latency_ms",
    "stream_history_bytes_per_1000_tokens",
    "stream_extra_step_ratio",
)


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each scenario is (the defaults are the full benchmark)."""

    overhead_steps: int = 20
    overhead_runs: int = 5
    throughput_runs: int = 200
    throughput_steps: int = 10
    latency_ms: float = 50.0
    history_steps: int = 500
    checkpoints: tuple[int, ...] = (10, 100, 500)
    reply_bytes: int = 20 * 1024
    continue_as_new_every: int = 100
    memory_runs: int = 1000
    sticky_timeout_s: float = 1.0  # agent-worker's default
    default_sticky: bool = True
    mid_tool: bool = True  # also the mid_tool and failover situations
    stream_tokens: int = 1000  # the streamed answer's length
    stream_runs: int = 3  # long answers streamed, per mode
    # Runs timed with streaming on and off, per mode: a step's spread under a shared
    # machine's load is ~±15%, so a median of few is mostly noise.
    stream_step_runs: int = 20
    stream_steps: int = 10  # steps of the runs timed with streaming on and off
    stream_chunk_delay_ms: float = 10.0  # the model writes a chunk (~1 token) this often


SMOKE = Sizes(
    overhead_steps=3,
    overhead_runs=1,
    throughput_runs=5,
    throughput_steps=2,
    history_steps=10,
    checkpoints=(2, 5, 10),
    continue_as_new_every=5,
    memory_runs=10,
    default_sticky=False,
    mid_tool=False,
    stream_tokens=50,
    stream_runs=1,
    stream_step_runs=1,
    stream_steps=2,
)


def parse_args(argv: list[str] | None) -> tuple[Sizes, argparse.Namespace]:
    """Sizes (full or smoke, with per-flag overrides) and the other options."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, for a test (< 60 s)")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"JSON result ({RESULTS})")
    p.add_argument("--only", help=f"comma-separated scenarios of {','.join(SCENARIOS)}")
    p.add_argument("--workdir", type=Path, help="server DB, logs, data (default: a temp dir)")
    p.add_argument("--keep-workdir", action="store_true")
    for field in dataclasses.fields(Sizes):
        flag = "--" + field.name.replace("_", "-")
        if field.type is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif field.name == "checkpoints":
            p.add_argument(flag, help="comma-separated steps, e.g. 10,100,500")
        else:
            p.add_argument(flag, type=type(field.default), default=None)
    args = p.parse_args(argv)
    sizes = SMOKE if args.smoke else Sizes()
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Sizes)}
    if given["checkpoints"]:
        given["checkpoints"] = tuple(int(s) for s in given["checkpoints"].split(","))
    sizes = dataclasses.replace(sizes, **{k: v for k, v in given.items() if v is not None})
    if not args.smoke and args.history_steps and not args.checkpoints:
        steps = sizes.history_steps
        sizes = dataclasses.replace(
            sizes, checkpoints=tuple(sorted({c for c in (10, 100, steps) if c <= steps}))
        )
    return sizes, args


async def _overhead(h: Harness, s: Sizes, result: dict[str, Any]) -> None:
    o = await measure_overhead(h, s.overhead_steps, s.overhead_runs)
    result["overhead_ms_per_step"] = o["durable"]
    result["floors"]["floor_temporal"]["overhead_ms_per_step"] = o["floor_temporal"]
    result["floors"]["floor_asyncio"]["overhead_ms_per_step"] = o["floor_asyncio"]
    ratio = o["durable"]["p50"] / o["floor_temporal"]["p50"]
    result["overhead_ratio_vs_floor_temporal"] = round(ratio, 3)
    peer = o["langgraph"]
    if "p50" in peer:
        result["overhead_ratio_vs_langgraph"] = round(o["durable"]["p50"] / peer["p50"], 3)
    result["contenders"] = {k: v for k, v in o.items() if k != "profile"}
    result["contenders"]["note"] = CONTENDERS_NOTE
    result["overhead_profile"] = o["profile"]


async def _throughput(h: Harness, s: Sizes, result: dict[str, Any]) -> None:
    t = await measure_throughput(h, s.throughput_runs, s.throughput_steps, s.latency_ms / 1000)
    result["throughput_steps_per_s"] = t["durable"]["throughput_steps_per_s"]
    result["cpu_s_per_step"] = t["durable"]["cpu_s_per_step"]
    result["throughput"] = t
    floor = t["floor_temporal"]
    result["floors"]["floor_temporal"].update(
        throughput_steps_per_s=floor["throughput_steps_per_s"],
        cpu_s_per_step=floor["cpu_s_per_step"],
    )


async def _history(h: Harness, s: Sizes, result: dict[str, Any]) -> None:
    queue = h.queue("history")
    h.model.set_delay(0.0)
    goal = Goal(uid("long"), s.history_steps, kind="llm", reply=s.reply_bytes)
    async with h.worker(queue):
        agents = h.agents(queue)
        result.update(await long_run(agents, goal, s.checkpoints, s.continue_as_new_every))


async def _recovery(h: Harness, s: Sizes, result: dict[str, Any]) -> None:
    situations = ("idle", "mid_tool", "failover") if s.mid_tool else ("idle",)
    r = await measure_recovery(h, s.sticky_timeout_s, s.default_sticky, situations)
    result["recovery_s"] = r["idle"]["recovery_s"]
    if "mid_tool" in r:
        result["mid_tool_recovery_s"] = r["mid_tool"]["recovery_s"]
    result["recovery"] = {
        "sticky_timeout_s": s.sticky_timeout_s,
        "with_default_sticky_s": r["idle"].get("with_default_sticky_s"),
        "worker_start_s": r["idle"]["worker_start_s"],
        "default_sticky_s": SDK_DEFAULT_STICKY_S,
        "situations": {k: r[k] for k in situations},
        "note": (
            "recovery_s: spawn of a new worker process -> the run's next step, after kill -9 "
            "of the previous worker while the run waited for an approval that arrived during "
            "the outage ('idle'). 'mid_tool': from kill -9 during a 5 s tool call (a tool "
            "that never heartbeats itself; its worker does, 5 s heartbeat timeout) to the "
            "call's completion on a new worker: worker start, heartbeat timeout and the 5 s "
            "re-run. 'failover': as 'idle' with a second worker "
            "already up, measured from the kill. Measured with "
            f"AGENT_STICKY_TIMEOUT_S={s.sticky_timeout_s} (the worker's "
            "sticky_queue_schedule_to_start_timeout; 1 s is agent-worker's default); "
            "with_default_sticky_s: the same with the SDK's default (10 s)."
        ),
    }


async def _memory(h: Harness, s: Sizes, result: dict[str, Any]) -> None:
    m = await measure_memory(h, s.memory_runs)
    result["memory_kib_per_waiting_run"] = m.pop("memory_kib_per_waiting_run")
    floor = m.pop("floor_temporal_kib_per_waiting_run")
    result["floors"]["floor_temporal"]["memory_kib_per_waiting_run"] = floor
    result["memory"] = {
        **m,
        "note": "RSS growth of the worker process per run waiting for approval, all cached; "
        "the floor's worker runs in the benchmark process (its RSS growth).",
    }


async def _streaming(h: Harness, s: Sizes, result: dict[str, Any]) -> None:
    m = await measure_streaming(
        h,
        s.stream_tokens,
        s.stream_runs,
        s.stream_steps,
        s.stream_chunk_delay_ms,
        s.stream_step_runs,
    )
    result["stream_token_latency_ms"] = m["token_latency_ms"]
    result["stream_history_bytes_per_1000_tokens"] = m["history_bytes_per_1000_tokens"]
    result["stream_extra_step_ratio"] = m["extra_step_ratio"]
    result["streaming"] = m


Scenario = Callable[[Harness, Sizes, dict[str, Any]], Awaitable[None]]
PHASES: dict[str, tuple[str, Scenario]] = {
    "overhead": ("step times at 0 ms model latency", _overhead),
    "throughput": ("concurrent runs", _throughput),
    "history": ("long run with large replies", _history),
    "recovery": ("kill -9 and restart of a worker", _recovery),
    "memory": ("runs waiting for approval", _memory),
    "streaming": ("model tokens streamed to a client", _streaming),
}


def save(result: dict[str, Any], out: Path) -> None:
    """Write ``result`` atomically (temp file + rename)."""
    result["targets"] = targets(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    tmp.replace(out)


async def run(
    s: Sizes, only: set[str], workdir: Path, out: Path, smoke: bool = False
) -> dict[str, Any]:
    """Every selected scenario on one server; the result is saved after each one.

    A scenario that fails is reported under ``errors`` and the others still run.
    """
    result: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "sizes": {**dataclasses.asdict(s), "scenarios": sorted(only)},
        **dict.fromkeys(METRICS),
        "floors": {"floor_temporal": {}, "floor_asyncio": {}},
        "phase_s": {},
        "errors": {},
        "smoke": smoke,
    }
    async with open_harness(workdir) as h:
        result["server"] = {
            **h.server.settings(),
            "running": h.server.running_settings(),
            "cli": "temporal server start-dev (Temporal CLI 1.5.1)",
        }
        result["machine"]["langgraph"] = peer_langgraph.version()
        print(f"server: {json.dumps(result['server'])}", file=sys.stderr, flush=True)
        for name, (what, scenario) in PHASES.items():
            if name not in only:
                continue
            print(f"{name}: {what} ...", file=sys.stderr, flush=True)
            started = time.monotonic()
            try:
                await scenario(h, s, result)
            except Exception as err:
                traceback.print_exc()
                result["errors"][name] = f"{type(err).__name__}: {err}"
            result["phase_s"][name] = round(time.monotonic() - started, 1)
            result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
            save(result, out)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run, write the JSON, print the table; exit 1 if a scenario failed."""
    if "--cluster" in (sys.argv[1:] if argv is None else argv):  # scale-out, bench/scale_out.py
        from bench.scale_out import main as scale_out

        return scale_out(argv)
    sizes, args = parse_args(argv)
    configure_logging(logging.WARNING)  # the in-process worker's info logs would drown the table
    only = set(args.only.split(",")) if args.only else set(SCENARIOS)
    unknown = only - set(SCENARIOS)
    if unknown:
        sys.exit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="durable-agents-bench-"))
    try:
        result = asyncio.run(run(sizes, only, workdir, args.out, args.smoke))
    finally:
        if not args.keep_workdir and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(result))
    for name, error in result["errors"].items():
        print(f"{name} FAILED: {error}")
    print(f"\nwritten to {args.out}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
