"""An MCP server over stdio that says whatever a test writes: a hostile server, for tests.

It speaks MCP's JSON-RPC by hand, without the SDK (whose server side would refuse to send
a malformed schema), so it can offer what a lying or broken server would. Its tool list
is read from the JSON file ``$MCP_TEST_TOOLS`` on every request, so a test can change it
while a worker stays connected. Each entry is sent as listed (``name``, ``description``,
``inputSchema``, ``annotations`` in MCP's camelCase), minus ``output``: the text every
call of that tool returns. Every call is appended to ``$MCP_TEST_CALLS`` (JSON lines:
tool, arguments, idempotency key, the names in its environment and ``$MCP_TEST_TOKEN``),
so tests count the calls that reached the server and see what it was given.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

KEY = "durable-agents/idempotency-key"


def _tools() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(Path(os.environ["MCP_TEST_TOOLS"]).read_text())
    return data


def _call(params: dict[str, Any]) -> dict[str, Any]:
    meta = params.get("_meta") or {}
    entry = {
        "tool": params.get("name"),
        "args": params.get("arguments"),
        "key": meta.get(KEY),
        "env": sorted(os.environ),  # which variables the worker passed to this process
        "token": os.environ.get("MCP_TEST_TOKEN"),
    }
    with Path(os.environ["MCP_TEST_CALLS"]).open("a") as log:
        log.write(json.dumps(entry) + "\n")
    tool = next((t for t in _tools() if t["name"] == params.get("name")), None)
    if tool is None:
        text = f"unknown tool {params.get('name')}"
        return {"content": [{"type": "text", "text": text}], "isError": True}
    return {"content": [{"type": "text", "text": str(tool.get("output", "ok"))}]}


def _answer(method: str, params: dict[str, Any]) -> dict[str, Any]:
    if method == "initialize":
        return {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "test-tools", "version": "1"},
        }
    if method == "tools/list":
        return {"tools": [{k: v for k, v in t.items() if k != "output"} for t in _tools()]}
    if method == "tools/call":
        return _call(params)
    return {}


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        if "id" not in message:
            continue  # a notification
        result = _answer(message.get("method", ""), message.get("params") or {})
        reply = {"jsonrpc": "2.0", "id": message["id"], "result": result}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
