"""An MCP tool named like a Python tool of another plugin is refused, never shadowed.

The worker here also loads ``tests/support/clash_plugin.py``, whose Python tool is called
``t__look``: the name the test server's tool ``look`` gets in a run. Without the check,
a call of ``t__look`` would silently run the Python tool.
"""

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from durable_agents._activities.catalog import Catalog, load_price_table
from durable_agents._activities.plugins import load_plugins, plugin_modules
from durable_agents._client.api import InvalidRunRequestError
from durable_agents._domain.approvals import Decision
from durable_agents._domain.mcp import McpToolOverride
from durable_agents._domain.run import RunStatus
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.conftest import TEST_PLUGINS
from tests.support import clash_plugin
from tests.support.agents import LocalAgents
from tests.support.mcp import agent_with, calls, hostile_stdio, tool
from tests.support.plans import plan_reply, tool_task

pytestmark = pytest.mark.e2e
PLUGINS = f"{TEST_PLUGINS},tests.support.clash_plugin"


@pytest.fixture
def catalog() -> Catalog:
    """The test plugins plus the one with a Python tool called ``t__look``."""
    return Catalog(load_plugins(plugin_modules(PLUGINS)), load_price_table(None))


@pytest.fixture
def worker_settings(worker_settings: WorkerSettings) -> WorkerSettings:
    """The worker runs the clash plugin's Python tool too."""
    return dataclasses.replace(worker_settings, plugins=PLUGINS)


def _files(tmp_path: Path, *tools: dict[str, object]) -> tuple[Path, Path]:
    tools_file, calls_file = tmp_path / "tools.json", tmp_path / "calls.jsonl"
    tools_file.write_text(json.dumps(list(tools)))
    return tools_file, calls_file


async def test_a_clash_with_another_plugins_python_tool_refuses_the_run(
    agents: LocalAgents, model: ScriptedModelServer, worker: None, tmp_path: Path
) -> None:
    tools_file, calls_file = _files(tmp_path, tool("look", readOnlyHint=True))
    spec = agent_with("mcp-clash", hostile_stdio(tools_file, calls_file))
    with pytest.raises(InvalidRunRequestError) as refused:
        await agents.start_run(spec, "look")
    message = str(refused.value)
    assert "MCP server 't' offers tools named like Python tools this worker runs" in message
    assert "t__look (plugin 'clash-agent')" in message
    assert "deny those tools" in message  # the fix
    assert model.count() == 0 and calls(calls_file) == [] and clash_plugin.CALLED == []


async def test_denying_the_clashing_tool_lets_the_run_start(
    agents: LocalAgents, model: ScriptedModelServer, worker: None, tmp_path: Path
) -> None:
    tools_file, calls_file = _files(
        tmp_path, tool("look", readOnlyHint=True), tool("peek", "P", readOnlyHint=True)
    )
    server = hostile_stdio(tools_file, calls_file, tools={"look": McpToolOverride(deny=True)})
    model.enqueue(plan_reply(tool_task("p", "t__peek", q="1")), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")
    handle = await agents.start_run(agent_with("mcp-clash-denied", server), "peek")
    report = await asyncio.wait_for(agents.result(handle.workflow_id), 90)
    assert report.status is RunStatus.COMPLETED, report.errors
    assert [c["tool"] for c in calls(calls_file)] == ["peek"]


async def test_a_clash_on_refresh_keeps_the_list_the_run_had(
    agents: LocalAgents, model: ScriptedModelServer, worker: None, tmp_path: Path
) -> None:
    """As at start, the clash refuses the list; mid-run, the run keeps the tools it had
    and the planner and the audit trail are told why."""
    tools_file, calls_file = _files(tmp_path, tool("gate"), tool("keep", readOnlyHint=True))
    model.enqueue(
        Reply.json(
            {
                "rationale": "r",
                "done": False,
                "refresh_tools": True,
                "tasks": [tool_task("g", "t__gate", q="1")],
            }
        ),
        plan_reply(tool_task("k", "t__keep", q="2")),
        purpose="plan",
    )
    model.enqueue(Reply.text("done"), purpose="summarize")
    spec = agent_with("mcp-clash-refresh", hostile_stdio(tools_file, calls_file))
    handle = await agents.start_run(spec, "go")
    request = await pending_request(agents, handle.workflow_id)
    tools_file.write_text(
        json.dumps([tool("gate"), tool("keep", readOnlyHint=True), tool("look", readOnlyHint=True)])
    )
    await agents.approve(
        handle.workflow_id,
        Decision(request_id=request.id, approver="ana", args_digest=request.args_digest),
    )
    report = await asyncio.wait_for(agents.result(handle.workflow_id), 90)
    assert report.status is RunStatus.COMPLETED, report.errors
    assert [c["tool"] for c in calls(calls_file)] == ["gate", "keep"]
    (failed,) = [e for e in report.audit if e.event == "mcp_tools_refresh_failed"]
    assert not failed.accepted and "t__look (plugin 'clash-agent')" in failed.detail
    prompt = "\n".join(
        m["content"] for m in [r for r in model.requests if r.purpose == "plan"][1].body["messages"]
    )
    assert "the MCP tool list could not be read again" in prompt
    assert "- t__look(" not in prompt and "- t__keep(" in prompt
    assert clash_plugin.CALLED == []
