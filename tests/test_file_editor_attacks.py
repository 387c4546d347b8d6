"""Attacks a security review made on the file-editor's tools, each of which must now fail.

Real files in a temporary workspace; the tools are called as the ``invoke_tool`` activity
calls them. The same attack driven through a whole run (an injected file steering the
planner to ``force_undo_write``) is in ``tests/test_examples_e2e.py``.
"""

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from durable_agents._activities.tool_api import ToolInputError
from durable_agents._domain.plan import Plan, validate_plan
from examples.file_editor import PLUGIN, ledger
from examples.file_editor.sandbox import workspace_root
from examples.file_editor.tools import TOOLS
from tests.support.plans import tool_task
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


def kept_copies(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "file-editor" / "backups").glob("replaced-*.bak"))


# -- undo with force: only with a person's approval, and never losing what it replaces ---


def test_forcing_an_undo_is_a_separate_tool_that_needs_approval() -> None:
    spec = PLUGIN.build_spec()
    force = spec.tool("force_undo_write")
    assert force is not None and force.needs_approval
    undo = spec.tool("undo_write")
    assert undo is not None and not undo.needs_approval
    # The old spelling of the attack is no longer a valid plan at all.
    task = tool_task("t", "undo_write", write_id="w0123456789abcdef", force=True)
    plan = Plan.model_validate({"rationale": "x", "done": True, "tasks": [task]})
    problems = validate_plan(plan, spec.tool_map(), spec.permissions, spec.role)
    assert problems and "force" in "; ".join(problems)


async def test_undo_refuses_and_forced_undo_keeps_a_persons_newer_edit(
    data_dir: Path, ws: Path
) -> None:
    w1 = await agent_rewrote(data_dir, ws)
    (ws / "a.txt").write_text(PERSON)
    with pytest.raises(ToolInputError, match="force_undo_write"):
        await call("undo_write", data_dir, "wf/2", write_id=w1)
    assert (ws / "a.txt").read_text() == PERSON and not kept_copies(data_dir)

    forced = await call("force_undo_write", data_dir, "wf/3", write_id=w1)
    assert (ws / "a.txt").read_text() == "v0\n"
    kept = Path(forced["replaced_backup"])
    assert kept.read_text() == PERSON  # the person's edit survives, and the output says where
    assert kept.parent == (data_dir / "file-editor" / "backups").resolve()
    assert not kept.is_relative_to(ws)  # out of the agent's reach


async def test_forced_undo_of_a_creation_keeps_the_persons_file(data_dir: Path, ws: Path):
    w1 = (await call("write_file", data_dir, "wf/1", path="new.txt", content="draft\n"))["write_id"]
    (ws / "new.txt").write_text(PERSON)  # a person took the file over
    forced = await call("force_undo_write", data_dir, "wf/2", write_id=w1)
    assert forced["restored"].startswith("removed") and not (ws / "new.txt").exists()
    assert Path(forced["replaced_backup"]).read_text() == PERSON


async def test_a_retried_forced_undo_reports_its_copy_and_takes_no_second_one(
    data_dir: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w1 = await agent_rewrote(data_dir, ws)
    (ws / "a.txt").write_text(PERSON)
    real = ledger.Ledger.mark_undone

    def crash(self: ledger.Ledger, write_id: str, key: str, result: dict[str, Any]) -> None:
        raise RuntimeError("worker killed after the undo, before recording it")

    monkeypatch.setattr(ledger.Ledger, "mark_undone", crash)
    with pytest.raises(RuntimeError):
        await call("force_undo_write", data_dir, "wf/2", write_id=w1)
    monkeypatch.setattr(ledger.Ledger, "mark_undone", real)
    retried = await call("force_undo_write", data_dir, "wf/2", write_id=w1)
    assert (ws / "a.txt").read_text() == "v0\n"
    assert [Path(retried["replaced_backup"])] == kept_copies(data_dir)
    assert kept_copies(data_dir)[0].read_text() == PERSON


async def test_a_plain_undo_keeps_the_agents_output_too(data_dir: Path, ws: Path) -> None:
    w1 = await agent_rewrote(data_dir, ws)
    undone = await call("undo_write", data_dir, "wf/2", write_id=w1)
    assert (ws / "a.txt").read_text() == "v0\n"
    assert Path(undone["replaced_backup"]).read_text() == "v1\n"


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
        ("force_undo_write", {"write_id": w1}),
    ]
    for i, (tool, args) in enumerate(calls):
        with pytest.raises(ToolInputError, match="hard links") as refused:
            await call(tool, data_dir, f"wf/h{i}", **args)
        assert OUTSIDE.decode().strip() not in str(refused.value)
    assert outside.read_bytes() == OUTSIDE and outside.stat().st_nlink == 3
    assert (ws / "b.txt").exists() and not kept_copies(data_dir)


async def test_a_symbolic_link_swapped_in_after_a_write_is_refused_by_undo(
    data_dir: Path, ws: Path, outside: Path
) -> None:
    w1 = await agent_rewrote(data_dir, ws)
    (ws / "a.txt").unlink()
    (ws / "a.txt").symlink_to(outside)
    for i, tool in enumerate(("undo_write", "force_undo_write")):
        with pytest.raises(ToolInputError, match=r"symbolic link 'a\.txt'"):
            await call(tool, data_dir, f"wf/s{i}", write_id=w1)
    assert outside.read_bytes() == OUTSIDE and (ws / "a.txt").is_symlink()


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
