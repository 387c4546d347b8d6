"""The notes example end to end: its MCP server started by the worker, offline model, no
network. Adding a note runs freely; deleting one waits for a person."""

import asyncio
import os
from pathlib import Path

import pytest
from temporalio.client import Client

from durable_agents._domain.approvals import Decision
from durable_agents._domain.run import Outcome, RunStatus
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing import pending_request
from tests.support.agents import LocalAgents
from tests.support.mcp import notes

pytestmark = pytest.mark.e2e


async def test_the_notes_agent_adds_freely_and_deletes_only_after_approval(
    agents: LocalAgents,
    client: Client,
    worker_settings: WorkerSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = tmp_path / "notes"
    monkeypatch.setenv("NOTES_MCP_DIR", str(directory))
    settings = WorkerSettings(
        **{
            **worker_settings.__dict__,
            "openai_api_key": None,
            "openai_base_url": None,
            "plugins": "examples.notes_mcp",
        }
    )
    async with build_worker(client, settings):
        added = await agents.start_run("notes-mcp", 'add a note "standup at ten"')
        report = await agents.result(added.workflow_id)
        assert report.status is RunStatus.COMPLETED, report.errors
        assert [s.label.split("(")[0] for s in report.steps] == [
            "notes__list_notes",
            "notes__add_note",
        ]
        assert report.approvals == [] and set(report.usage_by_model) == {"offline"}
        assert [n["title"] for n in notes(directory).values()] == ["standup at ten"]

        deleting = await agents.start_run("notes-mcp", "delete note 1")
        request = await pending_request(agents, deleting.workflow_id, timeout=120)
        assert request.tool == "notes__delete_note" and "1" in notes(directory)
        await agents.approve(
            deleting.workflow_id,
            Decision(
                request_id=request.id,
                approver="ana",
                reason="done with it",
                args_digest=request.args_digest,
            ),
        )
        report = await agents.result(deleting.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert report.steps[-1].outcome is Outcome.OK
    assert notes(directory) == {}
    # The worker stopped: its stdio server went with it.
    pid = int((directory / "server.pid").read_text())
    async with asyncio.timeout(30):
        while _alive(pid):
            await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
