"""Attacks a security review made on the file-editor's tools, each of which must now fail.

Real files in a temporary workspace; the tools are called as the ``invoke_tool`` activity
calls them.
"""

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from activities.tool_api import ToolInputError
from examples.file_editor.sandbox import workspace_root
from examples.file_editor.tools import TOOLS
from tests.support.tool_calls import call_tool

pytestmark = pytest.mark.unit

OUTSIDE = b"the payroll, outside the workspace\n"
PERSON = "a person's newer edit\n"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FILE_EDITOR_WORKSPACE", raising=False)
    return tmp_path / "data"


@pytest.fixture
def ws(data_dir: Path) -> Path:
    return workspace_root(data_dir)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the workspace, on the same file system (so it can be hard-linked)."""
    path = tmp_path / "outside.txt"
    path.write_bytes(OUTSIDE)
    return path


async def call(name: str, data_dir: Path, key: str = "wf/1", /, **args: Any) -> Any:
    return await call_tool(TOOLS, name, data_dir, key, **args)


async def agent_rewrote(data_dir: Path, ws: Path) -> str:
    """A person's ``a.txt`` ("v0") rewritten by the agent ("v1"): the write's id."""
    (ws / "a.txt").write_text("v0\n")
    out = await call("write_file", data_dir, "wf/1", path="a.txt", content="v1\n")
    return str(out["write_id"])


# -- links: neither a hard link nor a symbolic one reaches a file outside -----------------


async def test_a_hard_link_to_an_outside_file_is_refused_by_every_tool(
    data_dir: Path, ws: Path, outside: Path
) -> None:
    w1 = await agent_rewrote(data_dir, ws)
    (ws / "a.txt").unlink()
    os.link(outside, ws / "a.txt")  # the attack: the workspace name is the outside file
    os.link(outside, ws / "b.txt")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("read_file", {"path": "b.txt"}),
        ("write_file", {"path": "b.txt", "content": "pwned"}),
        ("delete_file", {"path": "b.txt"}),
        ("undo_write", {"write_id": w1}),
    ]
    for i, (tool, args) in enumerate(calls):
        with pytest.raises(ToolInputError, match="hard links") as refused:
            await call(tool, data_dir, f"wf/h{i}", **args)
        assert OUTSIDE.decode().strip() not in str(refused.value)
    assert outside.read_bytes() == OUTSIDE and outside.stat().st_nlink == 3
    assert (ws / "b.txt").exists()


# -- modes: a rewrite never keeps setuid, setgid or sticky ------------------------------


@pytest.mark.parametrize(
    "planted", [0o4755, 0o2755, 0o6755, 0o1755], ids=["setuid", "setgid", "both", "sticky"]
)
async def test_a_rewrite_drops_setuid_setgid_and_sticky(
    data_dir: Path, ws: Path, planted: int
) -> None:
    (ws / "tool.sh").write_text("#!/bin/sh\ntrue\n")
    (ws / "tool.sh").chmod(planted)
    assert stat.S_IMODE((ws / "tool.sh").stat().st_mode) == planted  # the bit really was set
    out = await call("write_file", data_dir, "wf/1", path="tool.sh", content="#!/bin/sh\nid\n")
    assert stat.S_IMODE((ws / "tool.sh").stat().st_mode) == 0o755
    await call("undo_write", data_dir, "wf/2", write_id=out["write_id"])  # nor does an undo
    assert (ws / "tool.sh").read_text() == "#!/bin/sh\ntrue\n"
    assert stat.S_IMODE((ws / "tool.sh").stat().st_mode) == 0o755
