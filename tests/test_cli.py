"""agentctl end to end: a real subprocess against the real dev server and a worker."""

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from client.api import AgentsClient
from client.dev_server import DevServer
from domain.approvals import Decision
from tests.conftest import TEST_PLUGINS
from tests.support.plans import plan_reply, tool_task
from tests.support.processes import REPO
from tests.support.scripted_model import Reply, ScriptedModelServer
from tests.support.waiting import pending_request
from workers.replay import load_history, replay_history

pytestmark = pytest.mark.e2e


class Cli:
    """Runs ``agentctl`` (``python -m client.cli``) with this test's server and queue."""

    def __init__(self, server: DevServer, task_queue: str) -> None:
        self.env = {
            **os.environ,
            "TEMPORAL_ADDRESS": server.address,
            "AGENTS_TASK_QUEUE": task_queue,
            "AGENT_PLUGINS": TEST_PLUGINS,
            "COLUMNS": "200",
        }

    async def __call__(self, *args: str, timeout: float = 60) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "client.cli",
            *args,
            cwd=REPO,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def json(self, *args: str, code: int = 0) -> Any:
        rc, out, err = await self(*args, "--json")
        assert rc == code, f"exit {rc}\n{out}\n{err}"
        return json.loads(out)


@pytest.fixture
def cli(dev_server: DevServer, task_queue: str) -> Cli:
    return Cli(dev_server, task_queue)


def _launch_plan(model: ScriptedModelServer) -> None:
    model.enqueue(
        plan_reply(tool_task("go", "launch_rocket", name="cli")),
        plan_reply(done=True),
        purpose="plan",
    )
    model.enqueue(Reply.text("launched"), purpose="summarize")


async def test_agents_lists_the_catalog(cli: Cli) -> None:
    names = {a["name"] for a in await cli.json("agents")}
    assert {"db-tuner", "test-agent"} <= names


async def test_run_wait_json_reports_a_completed_run(
    cli: Cli, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(tool_task("t", "record_effect", name="via-cli")), purpose="plan")
    model.enqueue(Reply.text("recorded"), purpose="summarize")
    report = await cli.json("run", "test-agent", "record via cli", "--request-id", "cli-1")
    assert report["status"] == "completed" and report["answer"] == "recorded"
    assert report["workflow_id"] == "run-cli-1" and report["steps"][0]["outcome"] == "ok"


async def test_no_wait_status_approve_result(
    cli: Cli, agents: AgentsClient, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    started = await cli.json("run", "test-agent", "launch", "--no-wait", code=7)
    wid = started["workflow_id"]
    await pending_request(agents, wid)
    view = await cli.json("status", wid, code=7)
    assert view["status"] == "running" and view["pending_approvals"][0]["id"] == "a1"
    rc, out, err = await cli("approve", wid, "--reason", "clear skies", "--as", "ana")
    assert rc == 0, err
    assert "approved a1" in out
    report = await cli.json("result", wid)
    assert report["status"] == "completed"
    assert report["approvals"][0]["decided_by"] == "ana"
    assert report["approvals"][0]["reason"] == "clear skies"


async def test_run_without_terminal_prints_the_approve_command_and_keeps_waiting(
    cli: Cli, agents: AgentsClient, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    task = asyncio.ensure_future(cli("run", "test-agent", "launch", "--request-id", "cli-wait"))
    request = await pending_request(agents, "run-cli-wait")
    await asyncio.sleep(1.0)
    assert not task.done()  # still waiting for a decision
    await agents.approve("run-cli-wait", Decision(request_id=request.id, approver="ana"))
    rc, _out, err = await task
    assert rc == 0, err
    assert "agentctl approve run-cli-wait a1" in err
    assert "no terminal" in err


@pytest.mark.parametrize(
    ("script", "code", "status"),
    [
        ("escalate", 4, "escalated"),
        ("exhaust", 5, "budget_exhausted"),
        ("fail", 3, "failed"),
    ],
)
async def test_exit_codes(
    cli: Cli, model: ScriptedModelServer, worker: None, script: str, code: int, status: str
) -> None:
    if script == "escalate":
        model.set_responder("plan", lambda r: plan_reply(tool_task("x", "no_such_tool")))
    elif script == "exhaust":
        model.set_responder(
            "plan",
            lambda r: plan_reply(
                tool_task(
                    f"t{len(model.requests)}", "record_effect", name=f"e{len(model.requests)}"
                ),
                done=False,
            ),
        )
    else:
        model.enqueue(Reply.fault(403, message="forbidden"), purpose="plan")
    args = ["run", "test-agent", script, "--max-iterations", "2"]
    report = await cli.json(*args, code=code)
    assert report["status"] == status


async def test_watch_ends_when_the_run_ends(
    cli: Cli, agents: AgentsClient, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    handle = await agents.start_run("test-agent", "launch")
    request = await pending_request(agents, handle.workflow_id)
    watch = asyncio.ensure_future(cli("watch", handle.workflow_id))
    await asyncio.sleep(1.5)
    assert not watch.done()
    await agents.approve(handle.workflow_id, Decision(request_id=request.id, approver="ana"))
    rc, out, _ = await asyncio.wait_for(watch, 30)
    assert rc == 0 and "Approval needed" in out and "completed" in out


async def test_cancel_returns_a_partial_report(
    cli: Cli, agents: AgentsClient, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(
        plan_reply(
            tool_task("a", "record_effect", name="done-before"),
            tool_task("go", "launch_rocket", name="never", depends_on=["a"]),
        ),
        purpose="plan",
    )
    handle = await agents.start_run("test-agent", "to be cancelled")
    await pending_request(agents, handle.workflow_id)
    rc, _out, err = await cli("cancel", handle.workflow_id)
    assert rc == 0, err
    report = await cli.json("result", handle.workflow_id, code=6)
    assert report["status"] == "cancelled"
    assert [s["task_id"] for s in report["steps"]] == ["a"]
    assert "cancelled" in report["answer"]


async def test_list_filters_by_agent_and_pending_approval(
    cli: Cli, agents: AgentsClient, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    handle = await agents.start_run("test-agent", "launch")
    await pending_request(agents, handle.workflow_id)
    for _ in range(50):  # visibility is eventually consistent
        ids = await cli.json("list", "--agent", "test-agent", "--pending-approval")
        if handle.workflow_id in ids:
            break
        await asyncio.sleep(0.2)
    assert handle.workflow_id in ids
    waiting = await cli.json("list", "--status", "awaiting_approval")
    assert handle.workflow_id in waiting
    assert handle.workflow_id not in await cli.json("list", "--status", "completed")
    await cli("cancel", handle.workflow_id)


async def test_history_export_and_replay_check(
    cli: Cli, agents: AgentsClient, model: ScriptedModelServer, worker: None, tmp_path: Path
) -> None:
    model.enqueue(plan_reply(tool_task("t", "record_effect", name="h")), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")
    handle = await agents.start_run("test-agent", "history", request_id="cli-hist")
    await agents.result(handle.workflow_id)
    out_file = tmp_path / "run-cli-hist.json"
    rc, _, err = await cli("history", handle.workflow_id, "--out", str(out_file))
    assert rc == 0 and "events" in err
    assert (await replay_history(load_history(out_file))).ok
    outcomes = await cli.json("replay-check", handle.workflow_id)
    assert outcomes == [{"workflow_id": "run-cli-hist", "ok": True, "error": None}]


async def test_bad_request_is_refused_with_exit_1(cli: Cli) -> None:
    rc, _, err = await cli("run", "no-such-agent", "goal")
    assert rc == 1 and "unknown agent 'no-such-agent'" in err
