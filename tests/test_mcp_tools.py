"""Tools from MCP servers, end to end: real servers (stdio and streamable HTTP), a real
Temporal dev server, the real ``openai`` client against the scripted model.

A read tool runs without approval and a destructive one waits for a person; a server
killed mid-call is restarted and the effect lands once; the tool list a run planned with
is in its history (it replays after the server changed); a tool removed mid-run is
reported to the planner; secret headers never reach a history.
"""

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError

from durable_agents._client.api import InvalidRunRequestError
from durable_agents._domain.approvals import ApprovalRequest, ApprovalState, Decision
from durable_agents._domain.mcp import McpServerSpec
from durable_agents._domain.run import Outcome, RunReport, RunRequest, RunStatus, workflow_id_for
from durable_agents._domain.spec import ModelRoute, ModelRouting
from durable_agents._workers.replay import build_replayer
from durable_agents._workflows.agent_run import AgentRun
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.mcp import (
    agent_with,
    calls,
    free_port,
    history_text,
    hostile_stdio,
    notes,
    notes_http,
    notes_stdio,
    tool,
)
from tests.support.plans import plan_reply, tool_task

pytestmark = pytest.mark.e2e


def _seed(directory: Path, **titled: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    entries = {i: {"title": t, "text": t} for i, t in titled.items()}
    data = {"notes": entries, "next_id": len(entries) + 1, "done": {}}
    (directory / "notes.json").write_text(json.dumps(data))


def _script(model: ScriptedModelServer, *plans: Reply, then_done: bool = True) -> None:
    model.enqueue(*plans, *([plan_reply(done=True)] if then_done else []), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")


async def _finish(agents: LocalAgents, wid: str) -> RunReport:
    return await asyncio.wait_for(agents.result(wid), 90)


async def test_stdio_read_runs_freely_and_destructive_waits_for_approval(
    agents: LocalAgents, model: ScriptedModelServer, worker: None, tmp_path: Path
) -> None:
    _seed(tmp_path / "notes", **{"1": "groceries", "2": "taxes"})
    _script(
        model,
        plan_reply(  # two calls at once over the worker's one connection
            tool_task("look", "notes__list_notes"),
            tool_task("read", "notes__read_note", note_id="2"),
            done=False,
        ),
        plan_reply(tool_task("drop", "notes__delete_note", note_id="1")),
    )
    spec = agent_with("mcp-notes", notes_stdio(tmp_path / "notes"))
    handle = await agents.start_run(spec, "delete the groceries note")
    request = await pending_request(agents, handle.workflow_id)
    assert request.what == "notes__delete_note(1)"
    assert request.risk == "irreversible"  # the server's destructiveHint
    assert set(notes(tmp_path / "notes")) == {"1", "2"}  # nothing deleted before approval
    view = await agents.status(handle.workflow_id)
    labels = [s.label for s in view.steps]
    assert labels == ["notes__list_notes()", "notes__read_note(2)"]  # ran without asking
    assert "groceries" in json.dumps(view.steps[0].output)
    assert view.steps[1].output == {"id": "2", "title": "taxes", "text": "taxes"}
    await agents.approve(handle.workflow_id, _decision(request))
    report = await _finish(agents, handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert set(notes(tmp_path / "notes")) == {"2"}
    (approval,) = report.approvals
    assert approval.state is ApprovalState.APPROVED and approval.tool == "notes__delete_note"


def _decision(request: ApprovalRequest) -> Decision:
    return Decision(
        request_id=request.id, approver="ana", reason="ok", args_digest=request.args_digest
    )


async def test_streamable_http_with_a_secret_header_that_never_reaches_history(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "s3cr3t-token-5d1f0c"
    monkeypatch.setenv("NOTES_TEST_AUTH", f"Bearer {secret}")
    with notes_http(tmp_path / "notes", secret) as url:
        server = McpServerSpec(
            name="notes",
            url=url,
            headers={"X-Client": "durable-agents-tests"},
            secret_headers={"Authorization": "NOTES_TEST_AUTH"},
            honours_idempotency_key=True,
        )
        _script(model, plan_reply(tool_task("add", "notes__add_note", title="hi", text="there")))
        handle = await agents.start_run(agent_with("mcp-http", server), "add a note")
        report = await _finish(agents, handle.workflow_id)
    assert report.status is RunStatus.COMPLETED, report.errors
    assert [n["title"] for n in notes(tmp_path / "notes").values()] == ["hi"]
    assert report.steps[0].outcome is Outcome.OK  # additive: no approval asked
    assert report.approvals == []
    text = await history_text(client, handle.workflow_id)
    assert "NOTES_TEST_AUTH" in text  # the spec, naming the variable, is in the history
    assert secret not in text


async def test_a_missing_secret_refuses_the_run_naming_the_variable(
    agents: LocalAgents, model: ScriptedModelServer, worker: None, client: Client
) -> None:
    os.environ.pop("NOTES_TEST_UNSET", None)
    server = McpServerSpec(
        name="notes",
        url="http://127.0.0.1:9/mcp",
        secret_headers={"Authorization": "NOTES_TEST_UNSET"},
    )
    with pytest.raises(InvalidRunRequestError) as refused:
        await agents.start_run(agent_with("mcp-nosecret", server), "anything")
    assert "environment variable NOTES_TEST_UNSET" in str(refused.value)
    assert model.count() == 0


async def test_server_killed_mid_call_is_restarted_and_the_effect_lands_once(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    tmp_path: Path,
) -> None:
    directory, pause = tmp_path / "notes", tmp_path / "pause"
    pause.touch()
    _script(model, plan_reply(tool_task("add", "notes__add_note", title="once", text="x")))
    server = notes_stdio(directory, env={"NOTES_MCP_PAUSE_FILE": str(pause)})
    handle = await agents.start_run(agent_with("mcp-crash", server), "add once")
    async with asyncio.timeout(60):  # the effect is recorded; the call has not answered
        while not notes(directory):
            await asyncio.sleep(0.05)
    first_pid = int((directory / "server.pid").read_text())
    os.kill(first_pid, signal.SIGKILL)
    pause.unlink()
    report = await _finish(agents, handle.workflow_id)
    assert report.status is RunStatus.COMPLETED, report.errors
    assert [n["title"] for n in notes(directory).values()] == ["once"]
    step = report.steps[0]
    assert step.outcome is Outcome.OK and step.attempts == 2
    assert step.output == {"id": "1", "repeated": True}  # the retry found its key applied
    assert int((directory / "server.pid").read_text()) != first_pid  # a new server process


async def test_tool_list_changed_between_runs_and_the_first_history_still_replays(
    agents: LocalAgents, model: ScriptedModelServer, worker: None, client: Client, tmp_path: Path
) -> None:
    tools_file, calls_file = tmp_path / "tools.json", tmp_path / "calls.jsonl"
    tools_file.write_text(json.dumps([tool("alpha", "A", readOnlyHint=True)]))
    spec = agent_with("mcp-change", hostile_stdio(tools_file, calls_file))
    _script(model, plan_reply(tool_task("a", "t__alpha", q="1")), then_done=False)
    first = await agents.start_run(spec, "use alpha")
    assert (await _finish(agents, first.workflow_id)).status is RunStatus.COMPLETED
    tools_file.write_text(json.dumps([tool("beta", "B", readOnlyHint=True)]))
    _script(model, plan_reply(tool_task("b", "t__beta", q="2")))
    second = await agents.start_run(spec, "use beta")
    assert (await _finish(agents, second.workflow_id)).status is RunStatus.COMPLETED
    assert [c["tool"] for c in calls(calls_file)] == ["alpha", "beta"]
    plans = [r for r in model.requests if r.purpose == "plan"]
    assert "t__beta" in json.dumps(plans[-1].body) and "t__alpha" not in json.dumps(plans[-1].body)
    history = await client.get_workflow_handle(first.workflow_id).fetch_history()
    result = await build_replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None  # alpha is gone from the server, not from history


async def test_a_tool_removed_mid_run_is_reported_to_the_planner(
    agents: LocalAgents, model: ScriptedModelServer, worker: None, tmp_path: Path
) -> None:
    tools_file, calls_file = tmp_path / "tools.json", tmp_path / "calls.jsonl"
    tools_file.write_text(json.dumps([tool("keep", readOnlyHint=True), tool("omega")]))
    _script(model, plan_reply(tool_task("o", "t__omega", q="x"), done=False))
    spec = agent_with("mcp-removed", hostile_stdio(tools_file, calls_file))
    handle = await agents.start_run(spec, "use omega")
    request = await pending_request(agents, handle.workflow_id)  # omega: destructive default
    tools_file.write_text(json.dumps([tool("keep", readOnlyHint=True)]))
    await agents.approve(handle.workflow_id, _decision(request))
    report = await _finish(agents, handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    step = report.steps[0]
    assert step.outcome is Outcome.HARD
    assert step.why is not None and "no longer offered by MCP server 't'" in step.why
    replan = [r for r in model.requests if r.purpose == "plan"][1]
    assert "no longer offered" in replan.body["messages"][-1]["content"]
    assert calls(calls_file) == []  # nothing called under the old name


def _strict_tool_task(task_id: str, name: str, **args: object) -> dict[str, object]:
    return {
        "id": task_id,
        "kind": "tool",
        "tool": name,
        "args": args,
        "prompt": None,
        "depends_on": [],
        "critical": False,
        "success_criteria": [],
        "confidence": 1.0,
    }


async def test_a_run_with_mcp_tools_and_structured_plans_replays(
    agents: LocalAgents, model: ScriptedModelServer, worker: None, client: Client, tmp_path: Path
) -> None:
    """``tests/histories/mcp_run.json`` (``UPDATE_HISTORIES=1`` re-records it): MCP tools in
    the resolved spec, a read call, an approved destructive call, strict plan schemas."""
    tools_file, calls_file = tmp_path / "tools.json", tmp_path / "calls.jsonl"
    tools_file.write_text(json.dumps([tool("look", "seen", readOnlyHint=True), tool("drop")]))
    strict_plan = ModelRoute(model="gpt-4o-mini", max_tokens=512, structured_outputs=True)
    plain = ModelRoute(model="gpt-4o-mini", max_tokens=512)
    models = ModelRouting(plan=strict_plan, execute=plain, evaluate=plain, summarize=plain)
    spec = agent_with("mcp-replay", hostile_stdio(tools_file, calls_file), models=models)
    plans = [
        [_strict_tool_task("a", "t__look", q="x")],
        [_strict_tool_task("b", "t__drop", q="y")],
        [],
    ]
    model.enqueue(
        *(
            Reply.json({"rationale": "r", "done": not p, "tasks": p, "refresh_tools": False})
            for p in plans
        ),
        purpose="plan",
    )
    model.enqueue(Reply.text("done"), purpose="summarize")
    handle = await agents.start_run(spec, "look, then drop")
    request = await pending_request(agents, handle.workflow_id)
    await agents.approve(handle.workflow_id, _decision(request))
    report = await _finish(agents, handle.workflow_id)
    assert report.status is RunStatus.COMPLETED, report.errors
    assert [c["tool"] for c in calls(calls_file)] == ["look", "drop"]
    assert {r.response_format for r in model.requests if r.purpose == "plan"} == {"json_schema"}
    history = await client.get_workflow_handle(handle.workflow_id).fetch_history()
    await build_replayer().replay_workflow(history)
    if os.environ.get("UPDATE_HISTORIES") == "1":
        target = Path(__file__).parent / "histories" / "mcp_run.json"
        target.write_text(history.to_json())


async def test_an_unreachable_server_refuses_the_run_naming_it(
    agents: LocalAgents, model: ScriptedModelServer, worker: None, client: Client
) -> None:
    """Listing is retried (resolve_agent's retry policy, ~15 s), then the run is refused."""
    server = McpServerSpec(name="gone", url="http://127.0.0.1:9/mcp", connect_timeout_s=5.0)
    spec = agent_with("mcp-gone", server)
    name = agents.catalog.add(spec)
    handle = await client.start_workflow(
        AgentRun.run,
        RunRequest(request_id="mcp-gone-1", goal="anything", agent=name),
        id=workflow_id_for("mcp-gone-1"),
        task_queue=agents.task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), 90)
    message = str(failed.value.cause)
    assert "run refused: cannot connect to MCP server 'gone'" in message
    assert model.count() == 0


async def test_large_output_goes_to_the_payload_store_and_labels_are_redacted(
    agents: LocalAgents, model: ScriptedModelServer, worker: None, client: Client, tmp_path: Path
) -> None:
    big = "row " * 10_000  # 40 KB: over the inline limit
    tools_file, calls_file = tmp_path / "tools.json", tmp_path / "calls.jsonl"
    tools_file.write_text(json.dumps([tool("dump", big, readOnlyHint=True)]))
    spec = agent_with("mcp-big", hostile_stdio(tools_file, calls_file), sensitive_fields=["q"])
    _script(model, plan_reply(tool_task("d", "t__dump", q="hunter2-password")))
    handle = await agents.start_run(spec, "dump")
    report = await _finish(agents, handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    step = report.steps[0]
    assert step.output is None and step.output_ref is not None
    assert step.output_ref.size_bytes > len(big) and step.output_preview.startswith('{"content"')
    assert step.label == "t__dump([redacted])"
    assert [c["args"] for c in calls(calls_file)] == [{"q": "hunter2-password"}]
    assert big not in await history_text(client, handle.workflow_id)  # a reference only


async def test_the_worker_reconnects_after_the_http_server_restarts(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTES_TEST_AUTH", "Bearer tok")
    port = free_port()
    server = McpServerSpec(
        name="notes",
        url=f"http://127.0.0.1:{port}/mcp",
        secret_headers={"Authorization": "NOTES_TEST_AUTH"},
        honours_idempotency_key=True,
    )
    spec = agent_with("mcp-http-restart", server)
    for title in ("first", "second"):  # a new server process (and session) for the second
        with notes_http(tmp_path / "notes", "tok", port=port):
            add = tool_task("add", "notes__add_note", title=title, text="")
            _script(model, plan_reply(add), then_done=False)
            handle = await agents.start_run(spec, f"add {title}")
            report = await _finish(agents, handle.workflow_id)
            assert report.status is RunStatus.COMPLETED, report.errors
    assert sorted(n["title"] for n in notes(tmp_path / "notes").values()) == ["first", "second"]


async def test_a_stdio_server_gets_its_own_environment_not_the_workers(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKER_ONLY_SECRET", "do-not-pass")
    monkeypatch.setenv("TOKEN_FOR_TOOLS", "tool-token-77a1")
    tools_file, calls_file = tmp_path / "tools.json", tmp_path / "calls.jsonl"
    tools_file.write_text(json.dumps([tool("look", readOnlyHint=True)]))
    server = hostile_stdio(tools_file, calls_file, env_from={"MCP_TEST_TOKEN": "TOKEN_FOR_TOOLS"})
    _script(model, plan_reply(tool_task("l", "t__look", q="x")))
    handle = await agents.start_run(agent_with("mcp-env", server), "look")
    assert (await _finish(agents, handle.workflow_id)).status is RunStatus.COMPLETED
    (call,) = calls(calls_file)
    assert call["token"] == "tool-token-77a1"  # env_from: the worker's variable, by name
    assert "WORKER_ONLY_SECRET" not in call["env"] and "OPENAI_API_KEY" not in call["env"]
    text = await history_text(client, handle.workflow_id)
    assert "TOKEN_FOR_TOOLS" in text and "tool-token-77a1" not in text
