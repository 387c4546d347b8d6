"""Recorded histories replay against the current workflow code.

A change that would break runs in flight (a different command order without a
``workflow.patched`` guard) fails here. Set ``UPDATE_HISTORIES=1`` to re-record the
committed history after an intended, guarded change.
"""

import os
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from client.api import AgentsClient
from domain.run import RunStatus
from tests.support.plans import plan_reply, tool_task
from tests.support.scripted_model import Reply, ScriptedModelServer
from workers.build import PASSTHROUGH_MODULES
from workflows.agent_run import AgentRun

pytestmark = pytest.mark.replay
HISTORIES = Path(__file__).parent / "histories"


def _replayer() -> Replayer:
    return Replayer(
        workflows=[AgentRun],
        data_converter=pydantic_data_converter,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
    )


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
    if os.environ.get("UPDATE_HISTORIES") == "1":
        (HISTORIES / "basic_run.json").write_text(history.to_json())
