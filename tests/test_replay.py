"""Recorded histories replay against the current workflow code.

A change that would break runs in flight (a different command order without a
``workflow.patched`` guard) fails here. ``basic_run.json`` was recorded before the
compact-history patch (see workflows/versions.py) and must keep replaying;
``UPDATE_HISTORIES=1`` re-records ``compact_run.json``, the current code's history.
``user_ledger_pre_sweep.json`` is a user's ledger recorded before its sweep (the
ledger-sweep patch) and ``user_ledger_sweep.json`` one that settled a terminated run.
"""

import os
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from client.api import AgentsClient
from domain.run import RunReport, RunRequest, RunStatus
from tests.support.plans import plan_reply, tool_task
from tests.support.scripted_model import Reply, ScriptedModelServer
from workers.replay import build_replayer, load_history, replay_history, replay_runs

pytestmark = pytest.mark.replay
HISTORIES = Path(__file__).parent / "histories"


def _replayer() -> Replayer:
    return build_replayer()


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_committed_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await _replayer().replay_workflow(history)


def test_histories_are_committed() -> None:
    assert sorted(HISTORIES.glob("*.json")), "no recorded history under tests/histories"


async def test_fresh_history_replays(
    agents: AgentsClient, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(
        plan_reply(
            tool_task("t1", "record_effect", name="x"),
            tool_task("t2", "flaky", name="y", failures=1),
            tool_task("t3", "check_value", value=4, depends_on=["t1", "t2"]),
        ),
        purpose="plan",
    )
    model.enqueue(Reply.text("x, y recorded; 4 is even"), purpose="summarize")
    handle = await agents.start_run(
        "test-agent", "record x and y, check 4", request_id="replay-basic"
    )
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    history = await agents.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
    await _replayer().replay_workflow(history)
    if os.environ.get("UPDATE_HISTORIES") == "1":  # older recordings stay: runs in flight
        (HISTORIES / "compact_run.json").write_text(history.to_json())


@workflow.defn(name="AgentRun", sandboxed=False)
class ChangedAgentRun:
    """A deliberately incompatible change: a timer before everything else."""

    @workflow.run
    async def run(self, request: RunRequest) -> RunReport:
        await workflow.sleep(1)
        raise RuntimeError("never reached in replay")


async def test_replay_check_passes_unchanged_code_and_flags_a_breaking_change(
    agents: AgentsClient, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="x")), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")
    handle = await agents.start_run("test-agent", "x")
    await agents.result(handle.workflow_id)
    (ok,) = await replay_runs(agents.temporal, [handle.workflow_id])
    assert ok.ok and ok.error is None
    (broken,) = await replay_runs(agents.temporal, [handle.workflow_id], [ChangedAgentRun])
    assert not broken.ok and broken.error and "nondetermin" in broken.error.lower()


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_committed_history_breaks_under_a_changed_workflow(path: Path) -> None:
    outcome = await replay_history(load_history(path), [ChangedAgentRun])
    assert not outcome.ok
