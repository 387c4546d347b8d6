"""The file-editor example: its sandbox, its undoable writes, and its offline policy.

Tools are called directly with a `ToolContext`, as the ``invoke_tool`` activity calls
them. The policy test drives plan -> execute -> plan without Temporal, with prompts built
by `domain.prompts` from `StepRecord`s holding the real tools' outputs.
"""

import json
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from pydantic import ValidationError

from durable_agents._activities.tool_api import ToolContext, ToolFailedError, ToolInputError
from durable_agents._domain.llm import LlmCall, Message
from durable_agents._domain.permissions import Effect
from durable_agents._domain.plan import Plan, Task, TaskKind, validate_plan
from durable_agents._domain.prompts import answer_messages, planner_messages
from durable_agents._domain.run import Outcome, StepRecord
from durable_agents._domain.spec import AgentSpec
from examples.file_editor import PLUGIN, files, ledger
from examples.file_editor.offline import offline_policy
from examples.file_editor.sandbox import resolve, workspace_root
from examples.file_editor.tools import TOOLS

pytestmark = pytest.mark.unit

SECRET = b"top secret\n"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FILE_EDITOR_WORKSPACE", raising=False)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_bytes(SECRET)
    return tmp_path / "data"


@pytest.fixture
def ws(data_dir: Path) -> Path:
    return workspace_root(data_dir)


def ctx_of(data_dir: Path, key: str = "wf/1") -> ToolContext:
    return ToolContext(idempotency_key=key, workflow_id="wf", attempt=1, data_dir=data_dir)


async def call(name: str, data_dir: Path, key: str = "wf/1", /, **args: Any) -> Any:
    tool = TOOLS.get(name)
    return await tool.fn(tool.args_model.model_validate(args), ctx_of(data_dir, key))


def backups(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "file-editor" / "backups").glob("*.bak"))


def test_workspace_root(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert workspace_root(data_dir) == (data_dir / "file-editor" / "workspace").resolve()
    assert workspace_root(data_dir).is_dir()
    monkeypatch.setenv("FILE_EDITOR_WORKSPACE", str(tmp_path / "elsewhere"))
    assert workspace_root(data_dir) == (tmp_path / "elsewhere").resolve()


async def test_backups_may_not_live_in_the_workspace(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FILE_EDITOR_WORKSPACE", str(data_dir))
    with pytest.raises(ToolFailedError, match="overlap"):
        await call("write_file", data_dir, path="a.txt", content="x")


async def test_list_read_write(data_dir: Path, ws: Path) -> None:
    out = await call("write_file", data_dir, path="notes/b.txt", content="héllo\n")
    assert out["created"] and out["changed"] and out["bytes"] == 7
    (ws / "a.txt").write_text("a\n")
    flat = await call("list_files", data_dir)
    assert flat["entries"] == [
        {"path": "a.txt", "type": "file", "size": 2},
        {"path": "notes", "type": "dir"},
    ]
    deep = await call("list_files", data_dir, "k", path=".", recursive=True)
    assert [e["path"] for e in deep["entries"]] == ["a.txt", "notes", "notes/b.txt"]
    assert (await call("list_files", data_dir, "k", path=".", max_entries=1))["truncated"]
    read = await call("read_file", data_dir, path="notes/b.txt")
    assert (read["content"], read["size"], read["truncated"]) == ("héllo\n", 7, False)
    cut = await call("read_file", data_dir, path="notes/b.txt", max_bytes=2)  # splits "é"
    assert (cut["content"], cut["truncated"]) == ("h", True)
    (ws / "bin.dat").write_bytes(b"\xff\xfe")
    with pytest.raises(ToolInputError, match="not UTF-8"):
        await call("read_file", data_dir, path="bin.dat")
    with pytest.raises(ToolInputError, match="does not exist"):
        await call("read_file", data_dir, path="missing.txt")
    with pytest.raises(ToolInputError, match="is a dir"):
        await call("read_file", data_dir, path="notes")


@pytest.mark.parametrize(
    ("path", "problem"),
    [("../x", "'..'"), ("a/../../x", "'..'"), ("a/../b", "'..'"), ("/etc/passwd", "absolute")],
)
@pytest.mark.parametrize("tool", ["read_file", "write_file", "list_files", "delete_file"])
async def test_traversal_is_refused(data_dir: Path, ws: Path, tool: str, path: str, problem: str):
    args: dict[str, Any] = {"path": path} | ({"content": "x"} if tool == "write_file" else {})
    with pytest.raises(ToolInputError, match=problem):
        await call(tool, data_dir, **args)
    assert not (ws.parent / "x").exists() and not backups(data_dir)


@pytest.mark.parametrize(
    ("link", "target", "path"),
    [
        ("link.txt", "outside/secret.txt", "link.txt"),  # final component, to a file
        ("linkdir", "outside", "linkdir/secret.txt"),  # to a directory
        ("linkdir", "outside", "linkdir/new/deeper.txt"),  # parents that do not exist yet
        ("a/inner", "outside", "a/inner/secret.txt"),  # an intermediate directory
        ("dangling.txt", "outside/nope.txt", "dangling.txt"),  # target missing, still out
    ],
)
async def test_links_out_of_the_workspace_are_refused(
    data_dir: Path, ws: Path, tmp_path: Path, link: str, target: str, path: str
) -> None:
    (ws / link).parent.mkdir(parents=True, exist_ok=True)
    (ws / link).symlink_to(tmp_path / target)
    calls = [
        ("read_file", {"path": path}),
        ("write_file", {"path": path, "content": "pwned"}),
        ("list_files", {"path": path}),
        ("list_files", {"path": link}),
        ("delete_file", {"path": path}),
    ]
    for tool, args in calls:
        with pytest.raises(ToolInputError, match=f"symbolic link '{link}'"):
            await call(tool, data_dir, **args)
    assert (tmp_path / "outside" / "secret.txt").read_bytes() == SECRET
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["secret.txt"]
    listed = await call("list_files", data_dir, path=".", recursive=True)
    assert {"path": link, "type": "symlink"} in listed["entries"]  # shown, not followed
    assert not any(e["path"].startswith(link + "/") for e in listed["entries"])


async def test_a_link_inside_the_workspace_is_followed(data_dir: Path, ws: Path) -> None:
    (ws / "real.txt").write_text("real\n")
    (ws / "alias.txt").symlink_to("real.txt")
    read = await call("read_file", data_dir, path="alias.txt")
    assert (read["path"], read["content"]) == ("real.txt", "real\n")


def test_a_component_swapped_for_a_link_after_the_check_is_refused(
    data_dir: Path, ws: Path, tmp_path: Path
) -> None:
    (ws / "d").mkdir()
    (ws / "f.txt").write_text("f")
    checked = [resolve(ws, "d/f.txt"), resolve(ws, "f.txt")]
    (ws / "d").rmdir()
    (ws / "d").symlink_to(tmp_path / "outside")  # the race: swapped after resolve()
    (ws / "f.txt").unlink()
    (ws / "f.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    for rel in checked:
        with pytest.raises(ToolInputError, match="symbolic link"):
            files.read(ws, rel)
    with pytest.raises(ToolInputError, match="symbolic link"):
        files.atomic_write(ws, PurePosixPath("d/new.txt"), b"x", 0o644, "t")
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["secret.txt"]


async def test_write_keeps_a_backup_and_undo_restores_exact_bytes(data_dir: Path, ws: Path):
    original = b"\x00\xffnot text\r\n"
    (ws / "a.bin").write_bytes(original)
    (ws / "a.bin").chmod(0o600)
    out = await call("write_file", data_dir, "wf/7", path="a.bin", content="new")
    assert (ws / "a.bin").read_bytes() == b"new" and (ws / "a.bin").stat().st_mode & 0o777 == 0o600
    assert backups(data_dir) == [f"{out['write_id']}.bak"]
    assert out["undo"] == f'undo_write(write_id="{out["write_id"]}")'
    undone = await call("undo_write", data_dir, "wf/8", write_id=out["write_id"])
    assert undone["undone"] and (ws / "a.bin").read_bytes() == original
    assert (ws / "a.bin").stat().st_mode & 0o777 == 0o600
    # The same undo call again (a retry) answers the same; another one finds it done.
    assert await call("undo_write", data_dir, "wf/8", write_id=out["write_id"]) == undone
    again = await call("undo_write", data_dir, "wf/9", write_id=out["write_id"])
    assert again["reason"] == "already undone"
    with pytest.raises(ToolInputError, match="unknown write_id"):
        await call("undo_write", data_dir, "wf/9", write_id="w0123456789abcdef")


async def test_undoing_a_creation_deletes_the_file(data_dir: Path, ws: Path) -> None:
    out = await call("write_file", data_dir, path="new/file.txt", content="hi")
    assert out["created"] and not backups(data_dir)  # nothing existed: nothing to keep
    undone = await call("undo_write", data_dir, "wf/2", write_id=out["write_id"])
    assert undone["restored"].startswith("removed") and not (ws / "new" / "file.txt").exists()


async def test_a_retried_write_takes_no_second_backup(
    data_dir: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ws / "a.txt").write_text("v0")
    real_finish = ledger.Ledger.finish

    def crash(self: ledger.Ledger, key: str, result: dict[str, Any]) -> None:
        raise RuntimeError("worker killed after the write, before recording it")

    monkeypatch.setattr(ledger.Ledger, "finish", crash)
    with pytest.raises(RuntimeError):
        await call("write_file", data_dir, path="a.txt", content="v1")
    monkeypatch.setattr(ledger.Ledger, "finish", real_finish)
    first = await call("write_file", data_dir, path="a.txt", content="v1")  # the retry
    assert await call("write_file", data_dir, path="a.txt", content="v1") == first
    assert (ws / "a.txt").read_text() == "v1" and len(backups(data_dir)) == 1
    with pytest.raises(ToolFailedError, match="refusing a different change"):
        await call("write_file", data_dir, path="a.txt", content="v2")
    await call("undo_write", data_dir, "wf/2", write_id=first["write_id"])
    assert (ws / "a.txt").read_text() == "v0"  # the backup holds v0, never v1


async def test_undo_refuses_to_lose_a_later_write(data_dir: Path, ws: Path) -> None:
    (ws / "a.txt").write_text("v0")
    w1 = (await call("write_file", data_dir, "wf/1", path="a.txt", content="v1"))["write_id"]
    w2 = (await call("write_file", data_dir, "wf/2", path="a.txt", content="v2"))["write_id"]
    with pytest.raises(ToolInputError, match=f"later writes: {w2}"):
        await call("undo_write", data_dir, "wf/3", write_id=w1)
    await call("undo_write", data_dir, "wf/4", write_id=w2)
    await call("undo_write", data_dir, "wf/5", write_id=w1)
    assert (ws / "a.txt").read_text() == "v0"
    (ws / "a.txt").write_text("edited by hand")
    w3 = (await call("write_file", data_dir, "wf/6", path="a.txt", content="v3"))["write_id"]
    (ws / "a.txt").write_text("edited again")
    with pytest.raises(ToolInputError, match="edited outside"):
        await call("undo_write", data_dir, "wf/7", write_id=w3)
    with pytest.raises(ValidationError, match="force"):  # forcing is its own tool now
        await call("undo_write", data_dir, "wf/8", write_id=w3, force=True)
    forced = await call("force_undo_write", data_dir, "wf/8", write_id=w3)
    assert (ws / "a.txt").read_text() == "edited by hand"
    assert Path(forced["replaced_backup"]).read_text() == "edited again"


async def test_delete_and_undo(data_dir: Path, ws: Path) -> None:
    (ws / "d").mkdir()
    (ws / "d" / "a.txt").write_bytes(b"keep me\n")
    out = await call("delete_file", data_dir, path="d/a.txt")
    assert out["deleted"] and not (ws / "d" / "a.txt").exists()
    assert await call("delete_file", data_dir, path="d/a.txt") == out  # a retry
    with pytest.raises(ToolInputError, match="nothing to delete"):
        await call("delete_file", data_dir, "wf/2", path="d/a.txt")
    with pytest.raises(ToolInputError, match="is a dir"):
        await call("delete_file", data_dir, "wf/3", path="d")
    await call("undo_write", data_dir, "wf/4", write_id=out["write_id"])
    assert (ws / "d" / "a.txt").read_bytes() == b"keep me\n"


# -- the offline policy, driven like the workflow drives a model --------------------------

GOAL = 'Add the header "# Reviewed" to every .txt file'


def ask(purpose: str, messages: list[Message]) -> str:
    llm = LlmCall(
        purpose=purpose, agent="file-editor", model="offline", messages=messages, max_tokens=2048
    )
    return offline_policy(llm, messages[-1].inline_text())


def plan_of(spec: AgentSpec, goal: str, steps: list[StepRecord], iteration: int) -> Plan:
    reply = ask("plan", planner_messages(spec, goal, steps, "", [], iteration))
    plan = Plan.model_validate_json(reply)
    assert validate_plan(plan, spec.tool_map(), spec.permissions, spec.role) == []
    return plan


async def run_task(spec: AgentSpec, data_dir: Path, task: Task, i: int, fail: str) -> StepRecord:
    tool = spec.tool(task.tool or "")
    assert tool is not None
    label = tool.describe_call(task.args)
    step = StepRecord(
        iteration=i, task_id=task.id, kind=TaskKind.TOOL, label=label, outcome=Outcome.OK
    )
    if fail and fail in task.id:
        return step.model_copy(update={"outcome": Outcome.DENIED, "why": "rejected by ana"})
    output = await call(tool.name, data_dir, f"wf/{task.id}", **task.args)
    return step.model_copy(update={"output": json.loads(json.dumps(output))})


async def run(
    spec: AgentSpec, data_dir: Path, goal: str = GOAL, fail: str = ""
) -> tuple[str, list[StepRecord]]:
    steps: list[StepRecord] = []
    for i in range(1, spec.budget.max_iterations + 1):
        plan = plan_of(spec, goal, steps, i)
        steps += [await run_task(spec, data_dir, t, i, fail) for t in plan.tasks]
        if not plan.tasks:
            break
    else:
        pytest.fail("the policy never finished")
    ids = [s.task_id for s in steps]
    assert len(ids) == len(set(ids))
    return ask("summarize", answer_messages(spec, goal, steps, "", None)), steps


@pytest.fixture
def tree(ws: Path, tmp_path: Path) -> Path:
    (ws / "notes").mkdir()
    (ws / "a.txt").write_text("hello\n")
    (ws / "notes" / "b.txt").write_text("# Reviewed\nalready done\n")
    (ws / "notes" / "c.txt").write_text("")
    (ws / "readme.md").write_text("not a .txt file\n")
    (ws / "out.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    return ws


async def test_offline_run_adds_the_header_and_says_how_to_undo(data_dir: Path, tree: Path):
    spec = PLUGIN.build_spec()
    report, _ = await run(spec, data_dir)
    assert (tree / "a.txt").read_text() == "# Reviewed\nhello\n"
    assert (tree / "notes" / "c.txt").read_text() == "# Reviewed\n"
    assert (tree / "notes" / "b.txt").read_text() == "# Reviewed\nalready done\n"
    assert (tree / "readme.md").read_text() == "not a .txt file\n"
    assert (tree.parent.parent.parent / "outside" / "secret.txt").read_bytes() == SECRET
    assert "Already had the header (left unchanged):\n- notes/b.txt" in report
    assert "Symbolic links (never followed, left unchanged):\n- out.txt" in report
    for line in [x for x in report.splitlines() if "header added" in x]:
        write_id = line.split("write ")[1].split(";")[0]
        assert f'undo_write(write_id="{write_id}")' in line
        await call("undo_write", data_dir, f"undo/{write_id}", write_id=write_id)
    assert report.count("header added") == 2
    assert (tree / "a.txt").read_text() == "hello\n"
    assert (tree / "notes" / "c.txt").read_text() == ""


async def test_offline_policy_never_repeats_a_refused_task(data_dir: Path, tree: Path) -> None:
    report, steps = await run(PLUGIN.build_spec(), data_dir, fail="write-a.txt")
    assert (tree / "a.txt").read_text() == "hello\n"
    assert [s.outcome for s in steps if s.label.startswith("write_file(a.txt")] == ["denied"]
    assert "- write_file(a.txt, # Reviewed hello ): denied: rejected by ana" in report
    assert report.count("header added") == 1


async def test_offline_policy_edits_nothing_for_other_goals(data_dir: Path, tree: Path) -> None:
    report, steps = await run(PLUGIN.build_spec(), data_dir, goal="Tidy up the notes")
    assert [s.label for s in steps] == ["list_files(., True)"]
    assert (tree / "a.txt").read_text() == "hello\n" and not backups(data_dir)
    assert "- notes/b.txt (file)" in report


def test_plugin_and_spec() -> None:
    spec = PLUGIN.build_spec()
    assert PLUGIN.name == spec.name == "file-editor"
    names = {
        "list_files",
        "read_file",
        "write_file",
        "undo_write",
        "force_undo_write",
        "delete_file",
    }
    assert {t.name for t in spec.tools} == names
    assert {t.name for t in spec.tools if t.needs_approval} == {"force_undo_write", "delete_file"}
    assert all(spec.permissions.decide("agent", n, "x") is Effect.ALLOW for n in names)
    assert spec.permissions.decide("intern", "read_file") is Effect.DENY
    assert spec.unpriced_models() == ["gpt-4o-mini"]
