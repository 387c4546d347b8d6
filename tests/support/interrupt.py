"""Kill the worker that is running a given tool call, not just any worker.

The test agent's tools record each start under the call's idempotency key,
``<workflow id>/<activity id>``; the pending activity of that id names the worker running
it (``pid@host``). Choosing the victim this way, rather than from any pending activity of
any run, is what makes "the kill interrupted the slow effect" hold whatever the timing.
"""

import asyncio
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client

from tests.support import test_agent


@dataclass(frozen=True)
class RunningCall:
    """A tool call that has started and not completed, and the worker process running it."""

    name: str
    key: str
    worker_pid: int


def _completed_keys(data_dir: Path) -> set[str]:
    return {key for _, _, key, _ in test_agent.executions(data_dir)}


async def running_call(
    client: Client, data_dir: Path, names: set[str], timeout: float = 60
) -> RunningCall:
    """Wait until a tool call named in ``names`` runs on a worker; say which and where."""
    async with asyncio.timeout(timeout):
        while True:
            done = _completed_keys(data_dir)
            for _, name, key, _ in test_agent.executions(data_dir, "started"):
                if name not in names or key in done:
                    continue
                workflow_id, _, activity_id = key.rpartition("/")
                desc = await client.get_workflow_handle(workflow_id).describe()
                for act in desc.raw_description.pending_activities:
                    started = act.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                    pid = act.last_worker_identity.split("@")[0]
                    if act.activity_id == activity_id and started and pid.isdigit():
                        return RunningCall(name, key, int(pid))
            await asyncio.sleep(0.05)


def still_running(data_dir: Path, call: RunningCall) -> bool:
    """Whether ``call`` has not completed (checked right after its worker was killed: then
    the kill interrupted it, and another worker must start it again)."""
    return call.key not in _completed_keys(data_dir)
