"""MCP servers for the tests: the example notes server (stdio or HTTP) and the hostile one.

Both are real processes speaking MCP; the HTTP one binds 127.0.0.1 on a free port.
"""

import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from temporalio.client import Client

from durable_agents._domain.mcp import McpServerSpec
from durable_agents._domain.permissions import Effect, PermissionMatrix, PermissionRule
from durable_agents._domain.spec import AgentSpec
from examples.notes_mcp.spec import SERVER_SCRIPT
from tests.support import test_agent

HOSTILE_SCRIPT = Path(__file__).with_name("mcp_test_server.py")


def agent_with(name: str, *servers: McpServerSpec, **update: Any) -> AgentSpec:
    """The test agent's settings (fast retries, scripted model) with only MCP tools."""
    spec = test_agent.build_spec()
    fields: dict[str, Any] = {
        "name": name,
        "tools": [],
        "mcp_servers": list(servers),
        "permissions": PermissionMatrix(rules=[PermissionRule(effect=Effect.ALLOW)]),
        **update,
    }
    return spec.model_copy(update=fields)


def notes_stdio(directory: Path, **fields: Any) -> McpServerSpec:
    """The example notes server as a stdio child of the worker."""
    return McpServerSpec(
        name="notes",
        command=[sys.executable, str(SERVER_SCRIPT)],
        env={"NOTES_MCP_DIR": str(directory), **fields.pop("env", {})},
        honours_idempotency_key=True,
        **fields,
    )


def hostile_stdio(tools_file: Path, calls_file: Path, **fields: Any) -> McpServerSpec:
    """The test server that offers what ``tools_file`` says (see mcp_test_server.py)."""
    return McpServerSpec(
        name="t",
        command=[sys.executable, str(HOSTILE_SCRIPT)],
        env={"MCP_TEST_TOOLS": str(tools_file), "MCP_TEST_CALLS": str(calls_file)},
        **fields,
    )


def tool(name: str, output: str = "ok", **hints: bool) -> dict[str, Any]:
    """A tool entry for the hostile server's tools file (string argument ``q``)."""
    entry: dict[str, Any] = {
        "name": name,
        "description": f"the {name} tool",
        "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}},
        "output": output,
    }
    if hints:
        entry["annotations"] = hints
    return entry


def calls(calls_file: Path) -> list[dict[str, Any]]:
    """The calls that reached the hostile server."""
    if not calls_file.exists():
        return []
    return [json.loads(line) for line in calls_file.read_text().splitlines()]


def notes(directory: Path) -> dict[str, Any]:
    """The notes server's notes, by id."""
    file = directory / "notes.json"
    data: dict[str, Any] = json.loads(file.read_text()) if file.exists() else {"notes": {}}
    return dict(data["notes"])


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def notes_http(directory: Path, token: str, port: int | None = None) -> Iterator[str]:
    """The notes server over streamable HTTP (requiring the bearer ``token``); its URL."""
    port = port or free_port()
    env = {"NOTES_MCP_DIR": str(directory), "NOTES_MCP_TOKEN": token}
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--http", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_for_port(port: int, proc: "subprocess.Popen[bytes]") -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the notes server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the notes server did not listen within 30 s")


async def history_text(client: Client, workflow_id: str) -> str:
    """A run's whole history as text, with every payload decoded (for grepping)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    raw = history.to_json()
    decoded: list[str] = [raw]
    _decode_payloads(json.loads(raw), decoded)
    return "\n".join(decoded)


def _decode_payloads(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        data = node.get("data")
        if isinstance(data, str) and "metadata" in node:
            with suppress(ValueError):
                out.append(base64.b64decode(data).decode("utf-8", "replace"))
        for value in node.values():
            _decode_payloads(value, out)
    elif isinstance(node, list):
        for value in node:
            _decode_payloads(value, out)
