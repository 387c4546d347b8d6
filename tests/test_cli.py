"""agentctl end to end: a real subprocess against the real dev server and a worker."""

import asyncio
import getpass
import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from durable_agents._domain.approvals import Decision
from durable_agents._workers.replay import load_history, replay_history
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agentctl import Cli
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task
from tests.support.processes import REPO

pytestmark = pytest.mark.e2e


def _launch_plan(model: ScriptedModelServer) -> None:
    model.enqueue(
        plan_reply(tool_task("go", "launch_rocket", name="cli")),
        plan_reply(done=True),
        purpose="plan",
    )
    model.enqueue(Reply.text("launched"), purpose="summarize")


async def test_agents_lists_what_the_worker_serves(cli: Cli, worker: None) -> None:
    agents = {a["name"]: a for a in await cli.json("agents")}
    assert {"db-tuner", "file-editor", "test-agent"} <= set(agents)
    assert "create_index" in agents["db-tuner"]["tools"]
    assert len(agents["db-tuner"]["spec_hash"]) == 64


async def test_agents_without_a_worker_says_how_to_start_one(cli: Cli) -> None:
    code, _, err = await cli("agents", "--wait", "2")
    assert code == 1
    assert "no worker answered on task queue" in err
    assert "AGENT_PLUGINS" in err and "Traceback" not in err


def test_agentctl_imports_no_plugin_tool_or_worker_code() -> None:
    code = (
        "import sys, durable_agents._cli.main\n"
        "print(sorted(m for m in sys.modules if m.startswith(('examples', 'openai', "
        "'durable_agents._activities', 'durable_agents._workers', 'durable_agents._devtools'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_run_wait_json_reports_a_completed_run(
    cli: Cli, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(tool_task("t", "record_effect", name="via-cli")), purpose="plan")
    model.enqueue(Reply.text("recorded"), purpose="summarize")
    report = await cli.json("run", "test-agent", "record via cli", "--request-id", "cli-1")
    assert report["status"] == "completed" and report["answer"] == "recorded"
    assert report["workflow_id"] == "run-cli-1" and report["steps"][0]["outcome"] == "ok"


async def test_no_wait_status_approve_result(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    started = await cli.json("run", "test-agent", "launch", "--no-wait", code=7)
    wid = started["workflow_id"]
    await pending_request(agents, wid)
    view = await cli.json("status", wid, code=7)
    assert view["status"] == "running" and view["pending_approvals"][0]["id"] == "a1"
    decided = await cli.json("approve", wid, "--reason", "clear skies", "--as", "ana")
    assert decided == {  # what the run did, not what was sent
        "workflow_id": wid,
        "request_id": "a1",
        "state": "approved",
        "decided_by": "ana",
        "identity_verified": False,
        "detail": "launch_rocket(cli)",
    }
    report = await cli.json("result", wid)
    assert report["status"] == "completed"
    assert report["approvals"][0]["decided_by"] == "ana"
    assert report["approvals"][0]["reason"] == "clear skies"
    # Too late for anything: each command says how and when the run ended, exit 9.
    for late in (("cancel", wid), ("approve", wid, "a1", "--as", "ana"), ("status", "run-nope")):
        rc, _, err = await cli(*late)
        if late[0] == "status":
            assert rc == 1 and "no such run" in err and "Traceback" not in err, err
        else:
            assert rc == 9 and f"{wid} already completed at" in err, (late, rc, err)


async def test_run_without_terminal_prints_the_approve_command_and_keeps_waiting(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    run = await cli.stream("run", "test-agent", "launch", "--request-id", "cli-wait")
    said = await cli.read_until(run, "no terminal", stderr=True)
    assert any("agentctl approve run-cli-wait a1" in line for line in said)
    story = next(line for line in said if line.startswith("its story in the Web UI: "))
    ui, ns = cli.env["TEMPORAL_UI_URL"], cli.env["TEMPORAL_NAMESPACE"]
    assert f"{ui}/namespaces/{ns}/workflows/run-cli-wait/" in story
    assert story.rstrip().endswith("/user-metadata")
    await asyncio.sleep(0.5)
    assert run.returncode is None  # still waiting for a decision
    request = await pending_request(agents, "run-cli-wait")
    await agents.approve(
        "run-cli-wait",
        Decision(request_id=request.id, args_digest=request.args_digest, approver="ana"),
    )
    await asyncio.wait_for(run.communicate(), 30)
    assert await run.wait() == 0


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
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    handle = await agents.start_run("test-agent", "launch")
    request = await pending_request(agents, handle.workflow_id)
    watch = await cli.stream("watch", handle.workflow_id)
    await cli.read_until(watch, "Approval needed")
    assert watch.returncode is None  # still following
    await agents.approve(
        handle.workflow_id,
        Decision(request_id=request.id, args_digest=request.args_digest, approver="ana"),
    )
    rest, _ = await asyncio.wait_for(watch.communicate(), 30)
    assert await watch.wait() == 0 and "completed" in rest.decode()


async def test_cancel_returns_a_partial_report(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
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
    cancelled = await cli.json("cancel", handle.workflow_id)
    assert cancelled == {"workflow_id": handle.workflow_id, "cancel_requested": True}
    report = await cli.json("result", handle.workflow_id, code=6)
    assert report["status"] == "cancelled"
    assert [s["task_id"] for s in report["steps"]] == ["a"]
    assert "cancelled" in report["answer"]


async def test_list_filters_by_agent_and_pending_approval(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    handle = await agents.start_run("test-agent", "launch", user="lister")
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
    assert handle.workflow_id in await cli.json("list", "--user", "lister", "--min-cost", "0")
    assert handle.workflow_id not in await cli.json("list", "--user", "someone-else")
    assert handle.workflow_id not in await cli.json("list", "--min-cost", "5")
    assert handle.workflow_id not in await cli.json("list", "--budget-alert")
    assert handle.workflow_id in await cli.json("list", "--query", "Iteration = 1")
    code, table, _ = await cli("list", "--user", "lister")  # a table a person can scan
    row = next(line for line in table.splitlines() if handle.workflow_id in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert code == 0 and cells[:4] == [
        handle.workflow_id,
        "test-agent",
        "awaiting_approval",
        "lister",
    ], row
    # Cost against the limit the run's worker resolved (the test agent's $1 default).
    assert cells[4].startswith("$0.") and cells[4].endswith("/ $1.00"), row
    assert cells[5] == "waiting", row
    assert "started (UTC)" in table and "1 run(s)" in table
    await cli("cancel", handle.workflow_id)


async def test_history_export_and_replay_check(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None, tmp_path: Path
) -> None:
    model.enqueue(plan_reply(tool_task("t", "record_effect", name="h")), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")
    handle = await agents.start_run("test-agent", "history", request_id="cli-hist")
    await agents.result(handle.workflow_id)
    out_file = tmp_path / "run-cli-hist.json"
    exported = await cli.json("history", handle.workflow_id, "--out", str(out_file))
    assert exported["events"] > 10 and exported["path"] == str(out_file)
    assert (await replay_history(load_history(out_file))).ok
    outcomes = await cli.json("replay-check", handle.workflow_id)
    assert outcomes == [{"workflow_id": "run-cli-hist", "ok": True, "error": None}]


async def test_bad_request_is_refused_with_exit_1(cli: Cli, worker: None) -> None:
    rc, _, err = await cli("run", "no-such-agent", "goal")
    assert rc == 1 and "unknown agent 'no-such-agent'" in err


async def test_status_of_unknown_or_unanswered_run_is_one_clear_line(
    cli: Cli, agents: LocalAgents
) -> None:
    rc, _, err = await cli("status", "run-does-not-exist")
    assert rc == 1 and "no such run" in err and "Traceback" not in err
    nobody = LocalAgents(agents.temporal, agents.catalog, f"{cli.env['AGENTS_TASK_QUEUE']}-x")
    handle = await nobody.start_run("test-agent", "nobody polls this queue")
    try:
        rc, _, err = await cli("status", handle.workflow_id)
    finally:
        await agents.temporal.get_workflow_handle(handle.workflow_id).terminate("test")
    assert rc == 1 and "error:" in err and "Traceback" not in err, err


async def test_watch_json_streams_events_and_ends_with_the_report(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    handle = await agents.start_run("test-agent", "launch")
    request = await pending_request(agents, handle.workflow_id)
    watch = await cli.stream("watch", handle.workflow_id, "--json")
    first = await cli.read_until(watch, "approval_asked")
    await agents.approve(
        handle.workflow_id,
        Decision(request_id=request.id, args_digest=request.args_digest, approver="ana"),
    )
    rest, _ = await asyncio.wait_for(watch.communicate(), 30)
    lines = [json.loads(line) for line in [*first, *rest.decode().splitlines()]]
    events, report = lines[:-1], lines[-1]
    assert watch.returncode == 0 and first and json.loads(first[-1])["approval_id"] == "a1"
    assert [e["offset"] for e in events] == list(range(len(events)))  # one event per line
    assert events[0]["kind"] == "call_started" and events[-1]["kind"] == "run_finished"
    assert report["status"] == "completed" and "answer" in report


async def test_extend_budget_json(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    handle = await agents.start_run("test-agent", "launch")
    await pending_request(agents, handle.workflow_id)
    ext = await cli.json("extend-budget", handle.workflow_id, "--usd", "0.25", "--as", "ana")
    assert ext["state"] == "extended" and ext["decided_by"] == "ana"
    assert "+$0.25" in ext["detail"]
    view = await agents.status(handle.workflow_id)
    assert view.budget.max_cost_usd == 1.25
    await cli("cancel", handle.workflow_id)


async def test_report_sums_cost_and_tokens_per_agent_user_and_model(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    from durable_agents._domain.spec import ModelRoute, ModelRouting

    model.set_responder("plan", lambda r: plan_reply(done=True))
    model.set_responder("summarize", lambda r: Reply.text("ok", usage=(1000, 100)))
    nano = ModelRoute(model="gpt-4.1-nano", max_tokens=256)
    spec = agents.catalog.plugin("test-agent").build_spec()
    spec_nano = spec.model_copy(
        update={
            "models": ModelRouting(
                plan=spec.models.plan, execute=nano, evaluate=nano, summarize=nano
            )
        }
    )
    agent_name = f"rep{len(model.requests)}"
    runs = [
        await agents.start_run(spec, "a", user=f"{agent_name}-ana"),
        await agents.start_run(spec_nano, "b", user=f"{agent_name}-bob"),
    ]
    reports = [await agents.result(h.workflow_id) for h in runs]
    # Two runs that cannot answer: one no worker polls for, one terminated.
    nobody = LocalAgents(agents.temporal, agents.catalog, f"{cli.env['AGENTS_TASK_QUEUE']}-nobody")
    stuck = await nobody.start_run(spec, "c", user=f"{agent_name}-cy")
    gone = await nobody.start_run(spec, "d", user=f"{agent_name}-dee")
    await agents.temporal.get_workflow_handle(gone.workflow_id).terminate("test")
    users = [f"{agent_name}-{u}" for u in ("ana", "bob", "cy", "dee")]
    try:
        for _ in range(50):  # visibility catches up with the runs
            result = await cli.json("report", "--since", "1h")
            if all(u in result["by_user"] for u in users):
                break
            await asyncio.sleep(0.2)
    finally:
        await agents.temporal.get_workflow_handle(stuck.workflow_id).terminate("test")
    ana, bob, cy, dee = (result["by_user"][u] for u in users)
    assert cy["runs"] == cy["estimated_runs"] == dee["estimated_runs"] == 1
    assert cy["cost_usd"] == dee["cost_usd"] == 0 and ana["estimated_runs"] == 0
    assert ana["cost_usd"] == pytest.approx(reports[0].usage.cost_usd)
    assert bob["cost_usd"] == pytest.approx(reports[1].usage.cost_usd)
    assert ana["llm_calls"] == bob["llm_calls"] == 2
    assert reports[1].usage_by_model["gpt-4.1-nano"].input_tokens == 1000
    assert result["by_model"]["gpt-4.1-nano"]["input_tokens"] >= 1000
    assert result["by_agent"]["test-agent"]["runs"] >= 2
    rc, out, _ = await cli("report", "--since", "1h")
    assert rc == 0 and "by model" in out and "gpt-4.1-nano" in out


class Terminal:
    """``agentctl`` on a pseudo-terminal: stdin is a tty, as when a person runs it."""

    def __init__(self, cli: Cli) -> None:
        self.cli = cli
        self.controller, self.terminal = pty.openpty()
        self.proc: asyncio.subprocess.Process | None = None
        self.said = ""  # stderr so far (the prompt has no newline: read chunks, not lines)
        self.mark = 0

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "durable_agents._cli.main",
            *args,
            cwd=REPO,
            env=self.cli.env,
            stdin=self.terminal,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return self.proc

    def type(self, text: str) -> None:
        os.write(self.controller, text.encode())

    async def until(self, text: str, timeout: float = 60) -> str:
        """Stderr from the last match up to the end of the line holding ``text``."""
        assert self.proc is not None and self.proc.stderr is not None
        async with asyncio.timeout(timeout):
            while text not in self.said[self.mark :]:
                chunk = await self.proc.stderr.read(4096)
                assert chunk, f"output ended before {text!r}: {self.said[self.mark :]}"
                self.said += chunk.decode()
        found = self.said.index(text, self.mark) + len(text)
        end = self.said.find("\n", found)
        region = self.said[self.mark : len(self.said) if end < 0 else end]
        self.mark = found
        return region

    async def finish(self) -> tuple[int, str, str]:
        """Exit code, stdout, and the rest of stderr after the last match."""
        assert self.proc is not None
        out, rest = await asyncio.wait_for(self.proc.communicate(), 60)
        assert self.proc.returncode is not None
        return self.proc.returncode, out.decode(), self.said[self.mark :] + rest.decode()

    def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
        os.close(self.controller)
        os.close(self.terminal)


async def test_run_on_a_terminal_asks_y_n_at_the_checkpoint(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    tty = Terminal(cli)
    try:
        await tty.start("run", "test-agent", "launch", "--request-id", "cli-tty")
        said = await tty.until("[y/N]")
        assert f"Approve launch_rocket(cli) as {getpass.getuser()}? [y/N]" in said
        tty.type("maybe\n")  # neither yes nor no: asked again
        await tty.until("please answer y or n (got 'maybe')")
        tty.type("y\n")
        code, _, rest = await tty.finish()
    finally:
        tty.close()
    assert code == 0, rest
    assert f"request a1 approved by {getpass.getuser()}" in rest
    report = await agents.result("run-cli-tty")
    assert report.approvals[0].decided_by == getpass.getuser()  # --as defaults to the login name
    assert report.approvals[0].reason == "approved at the terminal"


async def test_run_prompt_gives_way_when_approved_elsewhere(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    tty = Terminal(cli)
    try:
        await tty.start("run", "test-agent", "launch", "--request-id", "cli-elsewhere")
        await tty.until("[y/N]")
        request = await pending_request(agents, "run-cli-elsewhere")
        decided = await cli.json(
            "approve", "run-cli-elsewhere", request.id, "--as", "bea", "--reason", "from afar"
        )
        assert decided["state"] == "approved"
        said = await tty.until("elsewhere")  # the prompt ends by itself, saying by whom
        assert "request a1 was approved by bea elsewhere (from afar)" in said
        code, out, rest = await tty.finish()  # ...and goes on to the result
    finally:
        tty.close()
    assert code == 0, rest
    assert "completed" in out and "Approval a1: launch_rocket(cli) → approved by bea" in out
    assert "Traceback" not in rest and "no such run" not in rest


async def test_run_prompt_gives_way_when_the_run_ends(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    tty = Terminal(cli)
    try:
        await tty.start("run", "test-agent", "launch", "--request-id", "cli-ends")
        await tty.until("[y/N]")
        assert (await cli("cancel", "run-cli-ends"))[0] == 0
        said = await tty.until("request a1 was closed")
        assert "cancel" in said
        code, out, _ = await tty.finish()
    finally:
        tty.close()
    assert code == 6 and "cancelled" in out


async def test_one_ctrl_c_at_the_prompt_detaches_and_says_how_to_answer(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    _launch_plan(model)
    tty = Terminal(cli)
    try:
        proc = await tty.start("run", "test-agent", "launch", "--request-id", "cli-detach")
        await tty.until("[y/N]")
        proc.send_signal(signal.SIGINT)  # what one Ctrl-C sends the foreground process
        code, _, rest = await tty.finish()
    finally:
        tty.close()
    assert code == 7, rest  # still running
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest
    assert "detached: run-cli-detach keeps waiting for a decision on a1" in rest
    assert "agentctl approve run-cli-detach a1 --reason" in rest
    view = await agents.status("run-cli-detach")
    assert [r.id for r in view.pending_approvals] == ["a1"]  # the run goes on waiting
    await agents.temporal.get_workflow_handle("run-cli-detach").cancel()


async def test_a_small_limit_is_shown_as_itself_never_as_zero(
    cli: Cli, model: ScriptedModelServer, worker: None
) -> None:
    model.set_responder("plan", lambda r: plan_reply(done=True))
    model.set_responder("summarize", lambda r: Reply.text("nothing to do"))
    code, out, err = await cli("run", "test-agent", "tiny", "--budget-usd", "0.002")
    assert code in (0, 5), err  # done, or out of money: either way the limit reads right
    assert "/ $0.002 ·" in out and "$0.00 ·" not in out.replace("$0.002", "")
