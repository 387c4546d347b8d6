"""Recovery after ``kill -9`` of a worker process, and memory per waiting run.

Recovery is measured from the new worker process's spawn to the run's next step, in two
crash situations:

- ``idle``: the run waits for an approval (nothing in flight); the worker is killed, the
  approval arrives during the outage, a new worker is spawned; the next step is the
  approved ``launch_rocket`` running.
- ``mid_tool``: the worker is killed while a 5 s ``record_slowly`` runs (a tool that never
  heartbeats itself; the worker does, with the default 5 s heartbeat timeout), and a new
  worker is spawned; measured from the kill to the tool call's completion, so it
  includes the new worker's start, the heartbeat timeout and the 5 s re-run.

and, for comparison, ``failover``: as ``idle`` but a second worker is already running, so
no process start is on the path; measured from the kill.

After a crash, the run's next workflow task is first offered to the dead worker's sticky
queue and moves to the shared queue only after ``sticky_queue_schedule_to_start_timeout``
(``AGENT_STICKY_TIMEOUT_S``: 1 s by default in agent-worker, 10 s in the SDK). Workers
are the real ``workers.main``.
"""

import asyncio
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from temporalio.service import RPCError

from bench.agent import AGENT, Goal, bench_budget
from bench.floors import floor_work, floor_worker, start_floor
from bench.harness import Harness, rss_kib
from bench.runs import uid
from durable_agents._domain import contract
from durable_agents._domain.approvals import Decision, DecisionAnswer
from durable_agents._domain.tools import DEFAULT_HEARTBEAT_TIMEOUT_S
from durable_agents.testing import pending_request
from tests.support import test_agent
from tests.support.processes import WorkerProcess

SDK_DEFAULT_STICKY_S = 10.0  # the SDK's own default, for comparison
APPROVAL_IN_FLIGHT_S = 0.5  # how long the approval is on its way before the new worker starts
SLOW_TOOL_S = 5.0  # the tool killed mid-call in 'mid_tool' (it never heartbeats itself)


async def _until(predicate: Any, limit_s: float = 120.0, poll_s: float = 0.02) -> None:
    """Poll ``predicate`` (it reads what other processes write) until it holds."""
    async with asyncio.timeout(limit_s):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(poll_s)


def _rows(data: Path, phase: str, name: str) -> list[float]:
    """Times (``time.time()``) of the ledger rows of effect ``name`` in ``phase``."""
    path = test_agent.ledger_path(data)
    if not path.exists():
        return []
    conn = sqlite3.connect(path, timeout=30)
    try:
        rows = conn.execute(
            "SELECT at FROM executions WHERE phase = ? AND name = ?", (phase, name)
        ).fetchall()
    except sqlite3.OperationalError:  # the tool has not created its table yet
        rows = []
    finally:
        conn.close()
    return [float(r[0]) for r in rows]


async def recover_once(h: Harness, situation: str, sticky_s: float | None) -> dict[str, float]:
    """One crash; ``sticky_s`` None leaves ``AGENT_STICKY_TIMEOUT_S`` unset (1 s)."""
    queue = h.queue(f"rec-{situation}")
    settings = h.settings(queue)
    extra = {} if sticky_s is None else {"AGENT_STICKY_TIMEOUT_S": str(sticky_s)}
    env = settings.process_env(extra)
    kind = WorkerProcess
    logs = h.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    agents, data = h.agents(queue), settings.data_dir
    waits = situation != "mid_tool"
    goal = (
        Goal(uid("rec"), 1, kind="approval")
        if waits
        else Goal(uid("rec"), 1, kind="slow", seconds=SLOW_TOOL_S)
    )
    # The next step: the approved launch_rocket ran, or the killed tool call completed.
    phase, name = "completed", f"{goal.tag}-1"
    first = await kind(env, logs / f"{queue}-1.log").start()
    second: WorkerProcess | None = None
    try:
        budget = bench_budget(h.catalog, goal.steps)
        handle = await agents.start_run(AGENT, goal.text(), budget=budget)
        if waits:
            request = await pending_request(agents, handle.workflow_id)
        else:
            await _until(lambda: _rows(data, "started", f"{goal.tag}-1"))
        if situation == "failover":  # a replica is up before the crash
            second = await kind(env, logs / f"{queue}-2.log").start()
    finally:
        first.kill()
    crashed = time.time()
    approval: asyncio.Task[DecisionAnswer] | None = None
    if waits:
        # The approval is an update: the server holds it until a worker takes the run, so
        # it is sent during the outage and answered once the new worker (or the replica)
        # has the run.
        decision = Decision(
            request_id=request.id, args_digest=request.args_digest, approver="bench"
        )
        approval = asyncio.create_task(agents.approve(handle.workflow_id, decision))
        await asyncio.sleep(APPROVAL_IN_FLIGHT_S)
        if approval.done():
            approval.result()  # refused, or the server could not take it: fail loudly
    spawned = time.time()
    try:
        if second is None:
            second = await kind(env, logs / f"{queue}-2.log").start()
        ready = time.time()
        await _until(lambda: _rows(data, phase, name))
        next_step = _rows(data, phase, name)[0]
        if approval is not None:
            await asyncio.wait_for(approval, 60)
        await asyncio.wait_for(agents.result(handle.workflow_id), 120)
    finally:
        if approval is not None and not approval.done():
            approval.cancel()
        if second is not None:
            second.terminate()
    if situation == "failover":
        return {"recovery_s": round(next_step - crashed, 3)}
    if situation == "mid_tool":  # from the kill: the tool's own run time included
        return {
            "recovery_s": round(next_step - crashed, 3),
            "worker_start_s": round(ready - spawned, 3),
            "tool_s": SLOW_TOOL_S,
            "heartbeat_timeout_s": DEFAULT_HEARTBEAT_TIMEOUT_S,
        }
    return {
        "recovery_s": round(next_step - spawned, 3),
        "worker_start_s": round(ready - spawned, 3),
        "after_ready_s": round(next_step - ready, 3),
    }


async def measure_recovery(
    h: Harness, sticky_s: float, with_default: bool, situations: Sequence[str]
) -> dict[str, Any]:
    """Each situation with ``sticky_s``, and (if asked) with the SDK's default 10 s."""
    out: dict[str, Any] = {"sticky_timeout_s": sticky_s}
    for situation in situations:
        out[situation] = await recover_once(h, situation, sticky_s)
        if with_default:
            default = await recover_once(h, situation, SDK_DEFAULT_STICKY_S)
            out[situation]["with_default_sticky_s"] = default["recovery_s"]
    return out


async def measure_memory(h: Harness, runs: int, batch: int = 100) -> dict[str, Any]:
    """RSS growth of a worker process per run waiting for an approval (all kept cached)."""
    queue = h.queue("memory")
    budget = bench_budget(h.catalog, 1)
    settings = h.settings(queue)
    env = settings.process_env({"BENCH_MAX_CACHED_WORKFLOWS": str(runs + 100)})
    logs = h.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    agents = h.agents(queue)
    query = f"TaskQueue = '{queue}' AND {contract.PENDING_APPROVAL} = true"
    # bench.worker_proc: workers.main with a workflow cache large enough for every run.
    worker = await WorkerProcess(env, logs / f"{queue}.log", module="bench.worker_proc").start()
    assert worker.pid is not None
    worker_pid = worker.pid
    try:
        warm_goal = Goal(uid("mem-warm"), 1, kind="approval")
        warm = await agents.start_run(AGENT, warm_goal.text(), budget=budget)
        await pending_request(agents, warm.workflow_id)
        await asyncio.sleep(1.0)
        before = rss_kib(worker_pid)
        goals = [Goal(uid("mem"), 1, kind="approval") for _ in range(runs)]
        for i in range(0, runs, batch):
            await asyncio.gather(
                *(agents.start_run(AGENT, g.text(), budget=budget) for g in goals[i : i + batch])
            )
        async with asyncio.timeout(600):
            while await _count(h, query) < runs + 1:  # noqa: ASYNC110
                await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)
        after = rss_kib(worker_pid)
    finally:
        worker.terminate()
    return {
        "memory_kib_per_waiting_run": round((after - before) / runs, 2),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "runs": runs,
        "floor_temporal_kib_per_waiting_run": await _floor_memory(h, runs, batch),
    }


async def _count(h: Harness, query: str) -> int:
    """Visibility's count, or -1 while the busy server cannot answer (seen with SQLite:
    "namespace not found" for a moment under 1,000 starting runs)."""
    try:
        return (await h.client.count_workflows(query)).count
    except RPCError:
        return -1


async def _floor_memory(h: Harness, runs: int, batch: int) -> float:
    """The same with the bare floor loop, its worker in this process (RSS of this process)."""
    queue = h.queue("memory-floor")
    spec = h.catalog.resolve(AGENT)
    work = floor_work(h.model.base_url, spec, h.workdir / "data" / queue)
    prefix = uid("memf")

    def waiting() -> int:
        return sum(r.purpose == "plan" and r.tag.startswith(prefix) for r in h.model.requests())

    h.model.clear()  # keeps the log (read on every poll) short
    async with floor_worker(h.client, queue, work, max_cached_workflows=runs + 100):
        await start_floor(h.client, queue, [Goal(f"{prefix}-warm", 1, kind="approval")])
        await _until(lambda: waiting() >= 1, poll_s=0.2)
        await asyncio.sleep(1.0)
        before = rss_kib(os.getpid())
        goals = [Goal(f"{prefix}-{i}", 1, kind="approval") for i in range(runs)]
        for i in range(0, runs, batch):
            await start_floor(h.client, queue, goals[i : i + batch])
        await _until(lambda: waiting() >= runs + 1, 600, poll_s=1.0)
        await asyncio.sleep(2.0)
        after = rss_kib(os.getpid())
    return round((after - before) / runs, 2)
