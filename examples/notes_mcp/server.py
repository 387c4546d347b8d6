"""A small notes server speaking MCP, written with the official ``mcp`` SDK's server side.

Tools: ``list_notes`` and ``read_note`` (read-only), ``add_note`` (additive),
``delete_note`` (destructive). Notes live in one JSON file under the data directory
(``NOTES_MCP_DIR``). Writes honour the idempotency key a client passes in the call's
``_meta`` (`IDEMPOTENCY_META_KEY`): the key is recorded with the effect, in the same file
write, so a call repeated after a crash returns the first call's answer and changes
nothing.

Run it over stdio (``python -m examples.notes_mcp.server``) or streamable HTTP
(``--http PORT``, bound to 127.0.0.1). Over HTTP, when ``NOTES_MCP_TOKEN`` is set, every
request must carry ``Authorization: Bearer <token>``.

For the crash tests: when the file named by ``NOTES_MCP_PAUSE_FILE`` exists, a write
waits after its effect is recorded until the file is removed (or the process is killed).
"""

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

IDEMPOTENCY_META_KEY = "durable-agents/idempotency-key"

server = MCPServer("notes")


def _dir() -> Path:
    path = Path(os.environ.get("NOTES_MCP_DIR", ".notes-mcp"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _load() -> dict[str, Any]:
    file = _dir() / "notes.json"
    if not file.exists():
        return {"notes": {}, "next_id": 1, "done": {}}
    data: dict[str, Any] = json.loads(file.read_text())
    return data


def _save(data: dict[str, Any]) -> None:
    file = _dir() / "notes.json"
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(file)  # the effect and its idempotency key land together


def _key(ctx: Context) -> str | None:
    meta = ctx.request_context.meta or {}
    key = meta.get(IDEMPOTENCY_META_KEY) if isinstance(meta, dict) else None
    return key if isinstance(key, str) and key else None


async def _pause_if_asked() -> None:
    pause = os.environ.get("NOTES_MCP_PAUSE_FILE")
    # Another process (the test) removes the file: poll for it, off the event loop.
    if not pause:
        return
    while await asyncio.to_thread(Path(pause).exists):  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def _write_once(ctx: Context, apply: Any) -> dict[str, Any]:
    """Apply ``apply(data) -> answer`` unless this call's key was applied before."""
    key = _key(ctx)
    data = _load()
    if key is not None and key in data["done"]:
        answer: dict[str, Any] = data["done"][key]
        return {**answer, "repeated": True}
    answer = apply(data)
    if key is not None:
        data["done"][key] = answer
    _save(data)
    await _pause_if_asked()
    return answer


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def list_notes() -> dict[str, Any]:
    """List every note: its id and title."""
    notes = _load()["notes"]
    return {"notes": [{"id": i, "title": n["title"]} for i, n in sorted(notes.items())]}


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def read_note(note_id: str) -> dict[str, Any]:
    """Read one note by id."""
    note = _load()["notes"].get(note_id)
    if note is None:
        raise ToolError(f"no note '{note_id}'")
    return {"id": note_id, **note}


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False))
async def add_note(title: str, text: str, ctx: Context) -> dict[str, Any]:
    """Add a note; returns its id."""

    def apply(data: dict[str, Any]) -> dict[str, Any]:
        note_id = str(data["next_id"])
        data["next_id"] += 1
        data["notes"][note_id] = {"title": title, "text": text}
        return {"id": note_id}

    return await _write_once(ctx, apply)


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
async def delete_note(note_id: str, ctx: Context) -> dict[str, Any]:
    """Delete a note for good."""

    def apply(data: dict[str, Any]) -> dict[str, Any]:
        if data["notes"].pop(note_id, None) is None:
            raise ToolError(f"no note '{note_id}'")
        return {"deleted": note_id}

    return await _write_once(ctx, apply)


def _http_app(token: str | None) -> Any:
    app = server.streamable_http_app()
    if token is None:
        return app

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    return guarded


def main(argv: list[str] | None = None) -> None:
    """Serve over stdio, or over streamable HTTP on 127.0.0.1 with ``--http PORT``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, default=None, help="serve HTTP on this port")
    args = parser.parse_args(argv)
    (_dir() / "server.pid").write_text(str(os.getpid()))
    if args.http is None:
        server.run("stdio")
        return
    import uvicorn

    app = _http_app(os.environ.get("NOTES_MCP_TOKEN"))
    uvicorn.run(app, host="127.0.0.1", port=args.http, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
