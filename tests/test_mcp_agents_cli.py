"""``agentctl agents`` lists each agent's MCP servers: their tools with side effect when
the server answers, and a server that cannot be reached as such (not a failure).

A real ``agentctl`` subprocess, the test's in-process worker, the example notes server
over stdio (its child) and an HTTP server nobody listens on.
"""

import socket
from pathlib import Path

import pytest

from durable_agents._activities.catalog import Catalog
from durable_agents._domain.mcp import McpServerSpec, McpToolOverride
from tests.support.agentctl import Cli
from tests.support.mcp import agent_with, notes_stdio

pytestmark = pytest.mark.e2e


def _load(catalog: Catalog, tmp_path: Path, silent_port: int | None = None) -> None:
    deny_delete = {"delete_note": McpToolOverride(deny=True)}
    catalog.add(agent_with("notes-listed", notes_stdio(tmp_path / "notes")))
    if silent_port is not None:  # accepts connections, never answers
        url = f"http://127.0.0.1:{silent_port}/mcp"
        silent = McpServerSpec(name="silent", url=url, connect_timeout_s=1.0)
        catalog.add(agent_with("notes-silent", silent))
    catalog.add(
        agent_with(
            "notes-gone",
            McpServerSpec(name="gone", url="http://127.0.0.1:9/mcp", tools=deny_delete),
        )
    )


async def test_agents_shows_mcp_tools_and_unreachable_servers(
    cli: Cli, catalog: Catalog, worker: None, tmp_path: Path
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        _load(catalog, tmp_path, silent_port=listener.getsockname()[1])
        agents = {a["name"]: a for a in await cli.json("agents")}
    assert {"db-tuner", "test-agent", "notes-listed", "notes-gone"} <= set(agents)
    (silent,) = agents["notes-silent"]["mcp_servers"]
    assert not silent["reachable"] and silent["problem"].startswith("unreachable: ")
    assert agents["db-tuner"]["mcp_servers"] == []
    (notes,) = agents["notes-listed"]["mcp_servers"]
    assert (notes["name"], notes["transport"], notes["reachable"]) == ("notes", "stdio", True)
    tools = {t["name"]: (t["side_effect"], t["needs_approval"]) for t in notes["tools"]}
    assert tools == {
        "notes__list_notes": ("read", False),
        "notes__read_note": ("read", False),
        "notes__add_note": ("write", False),
        "notes__delete_note": ("irreversible", True),
    }
    (gone,) = agents["notes-gone"]["mcp_servers"]
    assert (gone["reachable"], gone["tools"]) == (False, [])
    assert gone["problem"].startswith("unreachable: cannot connect to MCP server 'gone'")


async def test_agents_text_names_each_server_and_its_tools(
    cli: Cli, catalog: Catalog, worker: None, tmp_path: Path
) -> None:
    _load(catalog, tmp_path)
    code, out, err = await cli("agents")
    assert code == 0, err
    lines = out.splitlines()
    listed = next(line for line in lines if line.startswith("  MCP server notes (stdio): "))
    assert lines.index(listed) > lines.index(next(x for x in lines if x.startswith("notes-listed")))
    assert "notes__delete_note [irreversible, approval]" in listed
    assert "notes__list_notes [read]" in listed
    gone = next(line for line in lines if "MCP server gone" in line)
    assert gone.startswith("  MCP server gone (http): unreachable: cannot connect")
    assert "Traceback" not in err
