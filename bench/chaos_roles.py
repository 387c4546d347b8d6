"""The process roles of the chaos harness besides the runs: workers and the approver.

- ``WorkerPool``: W ``agent-worker`` subprocesses on one task queue sharing one data dir
  (so the SQLite ledger of effects is shared); ``kill_one`` sends SIGKILL to a random one
  and starts a replacement, ``revive`` replaces any that exited on their own.
- ``approval_driver``: an asyncio task in the harness process playing the human approver.
  It polls the ``status`` of live runs, approves pending tool requests with their digest
  (sometimes twice, to check the duplicate is refused) and rejects budget extensions, so
  runs under budget pressure end ``budget_exhausted``. A decision the run refuses (its
  request was decided already) is passed over.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

from bench.chaos_check import RunOutcome
from durable_agents._activities.plugins import EXAMPLE_PLUGINS
from durable_agents._client.api import AgentsClient, DecisionRefusedError
from durable_agents._domain.approvals import ApprovalKind, Decision
from durable_agents._infra.connection import TemporalSettings
from durable_agents._workers.config import WorkerSettings
from tests.support.processes import WorkerProcess

PLUGINS = f"{EXAMPLE_PLUGINS},tests.support.test_agent"


def worker_env(address: str, task_queue: str, data_dir: Path, model_url: str) -> dict[str, str]:
    """The environment of one worker subprocess (scripted model, shared data dir)."""
    return WorkerSettings(
        temporal=TemporalSettings(address=address, task_queue=task_queue),
        data_dir=data_dir,
        openai_api_key="test",
        openai_base_url=model_url,
        plugins=PLUGINS,
    ).process_env()


class ChaosWorker(WorkerProcess):
    """A worker process that can tell whether it is still alive."""

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self._proc is not None and self._proc.poll() is None


class WorkerPool:
    """W workers; dead ones are replaced by fresh processes with their own log file."""

    def __init__(self, env: dict[str, str], log_dir: Path, size: int, rng: random.Random):
        self._env, self._log_dir, self._rng = env, log_dir, rng
        self.size = size
        self.workers: list[ChaosWorker] = []
        self.started = self.kills = self.exits = 0

    async def _spawn(self) -> ChaosWorker:
        self.started += 1
        worker = ChaosWorker(self._env, self._log_dir / f"worker-{self.started}.log")
        await worker.start(timeout=90)
        return worker

    async def start(self) -> None:
        """Start all workers in parallel."""
        self.workers = list(await asyncio.gather(*(self._spawn() for _ in range(self.size))))

    async def kill_one(self) -> None:
        """SIGKILL a random worker, then start its replacement."""
        index = self._rng.randrange(len(self.workers))
        self.workers[index].kill()
        self.kills += 1
        self.workers[index] = await self._spawn()

    async def revive(self) -> None:
        """Replace workers that exited without being killed by us."""
        for index, worker in enumerate(self.workers):
            if not worker.alive:
                self.exits += 1
                self.workers[index] = await self._spawn()

    def stop(self) -> None:
        """SIGTERM every worker (SIGKILL if it does not exit)."""
        for worker in self.workers:
            worker.terminate(timeout=10)


async def _decide(
    agents: AgentsClient, run: RunOutcome, decision: Decision, *, approve: bool
) -> bool:
    """Send one decision; False when the run refused it (the request was decided already,
    say by an earlier attempt whose answer a server restart lost, or by its deadline)."""
    try:
        if approve:
            await agents.approve(run.workflow_id, decision)
        else:
            await agents.reject(run.workflow_id, decision)
    except DecisionRefusedError:
        return False
    return True


async def _approve_once(
    agents: AgentsClient, run: RunOutcome, rng: random.Random, duplicate_rate: float
) -> None:
    view = await agents.status(run.workflow_id)
    for request in view.pending_approvals:
        if request.kind is ApprovalKind.BUDGET:
            decision = Decision(
                request_id=request.id,
                args_digest=request.args_digest,
                approver="chaos",
                reason="no more",
            )
            await _decide(agents, run, decision, approve=False)
            continue
        if request.id in run.approvals_sent:
            continue  # already approved; the run has not caught up yet
        decision = Decision(
            request_id=request.id,
            approver="chaos",
            reason="chaos approves",
            args_digest=request.args_digest,
        )
        if not await _decide(agents, run, decision, approve=True):
            continue
        run.approvals_sent.append(request.id)
        if rng.random() < duplicate_rate:
            # The run refuses the duplicate (it is decided); the audit must show one approval.
            await _decide(agents, run, decision, approve=True)
            run.duplicate_approvals_sent += 1


async def approval_driver(
    agents: AgentsClient,
    runs: list[RunOutcome],
    rng: random.Random,
    duplicate_rate: float = 0.3,
    interval_s: float = 0.3,
) -> None:
    """Poll live runs and answer their pending requests until cancelled."""
    while True:
        for run in runs:
            if run.terminal:
                continue
            # Queries fail while the server restarts or no worker holds the run: try later.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_approve_once(agents, run, rng, duplicate_rate), 5)
        await asyncio.sleep(interval_s)
