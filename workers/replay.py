"""Will this deploy break live runs? Replay recorded histories against the current code.

A change to workflow code that alters the order of commands (without a
``workflow.patched`` guard) makes replay fail with a non-determinism error; finding that
before deploying saves every run in flight.
"""

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from durable_agents._domain import contract
from durable_agents._infra.connection import data_converter
from durable_agents._workers.build import SHARED_MODULES
from durable_agents._workflows.agent_run import AgentRun
from durable_agents._workflows.user_ledger import UserLedger

DEFAULT_WORKFLOWS: tuple[type, ...] = (AgentRun, UserLedger)


@dataclass(frozen=True)
class ReplayOutcome:
    """Whether one history replays on the current code, and why not."""

    workflow_id: str
    ok: bool
    error: str | None = None


def build_replayer(workflows: Sequence[type] = DEFAULT_WORKFLOWS) -> Replayer:
    """A replayer configured like the worker (converter, sandbox), but stricter: the
    workflows' helper modules are imported inside the sandbox, where a non-deterministic
    call fails the replay."""
    return Replayer(
        workflows=list(workflows),
        # Encrypted histories (AGENT_CODEC_KEYS set) replay with the same keys.
        data_converter=data_converter(),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*SHARED_MODULES)
        ),
    )


async def replay_history(
    history: WorkflowHistory, workflows: Sequence[type] = DEFAULT_WORKFLOWS
) -> ReplayOutcome:
    """Replay one history; a failure is reported, not raised."""
    result = await build_replayer(workflows).replay_workflow(history, raise_on_replay_failure=False)
    error = result.replay_failure
    return ReplayOutcome(history.workflow_id, error is None, None if error is None else str(error))


async def replay_runs(
    client: Client, workflow_ids: Sequence[str], workflows: Sequence[type] = DEFAULT_WORKFLOWS
) -> list[ReplayOutcome]:
    """Fetch each run's history from the server and replay it."""
    outcomes = []
    for wid in workflow_ids:
        history = await client.get_workflow_handle(wid).fetch_history()
        outcomes.append(await replay_history(history, workflows))
    return outcomes


async def open_runs(client: Client, limit: int = 1000) -> list[str]:
    """Workflow ids of every AgentRun still running."""
    query = f"WorkflowType = '{contract.AGENT_RUN}' AND ExecutionStatus = 'Running'"
    return [wf.id async for wf in client.list_workflows(query, limit=limit)]


async def export_history(client: Client, workflow_id: str, out: Path) -> int:
    """Write a run's history as JSON (the format the replayer and the Web UI read)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    await asyncio.to_thread(out.write_text, history.to_json())
    return len(history.events)


def load_history(path: Path) -> WorkflowHistory:
    """A history exported by `export_history`, under the workflow id it was recorded with.

    The id matters: what a ledger checks is signed for its own id. Histories that do not
    record it in their start event fall back to the file name.
    """
    text = path.read_text()
    started = json.loads(text)["events"][0].get("workflowExecutionStartedEventAttributes", {})
    return WorkflowHistory.from_json(started.get("workflowId") or path.stem, text)
