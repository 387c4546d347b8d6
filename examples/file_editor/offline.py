"""The file-editor's deterministic offline model: each plan is decided from the observations.

It understands one kind of goal, "add a header line to every .<ext> file" (the header is
the goal's first quoted text; the extension defaults to ``.txt``). Each call reads the goal
and what is known (`read_findings`) and plans the first thing still missing:

(a) the workspace not listed yet -> ``list_files(".", recursive=true)``;
(b) a matching file not read yet -> ``read_file`` for each (in parallel);
(c) a file read whose first line is not the header -> ``write_file`` with the header
    prepended (files cut short by ``max_bytes`` are left alone: writing back part of a file
    would lose the rest), with ``done: true``;
(d) nothing left -> ``{"tasks": [], "done": true}``.

A goal without the word "header" stops after (a): the offline model reports what the
workspace holds instead of editing files nobody asked it to touch. A task that already
ran, failed or was refused is never proposed again, so a refusal moves the run on.
The final answer lists every file changed with its write id and the call that undoes it.
"""

import json
from typing import Any

from durable_agents import LlmCall, Purpose
from examples.file_editor.observations import Findings, Goal, read_findings, read_goal, task_key


def offline_policy(call: LlmCall, prompt: str) -> str:
    """The reply of the offline model for the file-editor agent (an `OfflinePolicy`)."""
    if call.purpose == Purpose.PLAN:
        return json.dumps(next_plan(read_goal(prompt), read_findings(prompt)))
    if call.purpose == Purpose.SUMMARIZE:
        return write_report(read_goal(prompt), read_findings(prompt))
    return "The file-editor's offline model only plans and reports; its plans use tools only."


def _task(f: Findings, key: str, tool: str, args: dict[str, Any], check: str) -> dict[str, Any]:
    return {
        "id": f"i{f.iteration}-{key}"[:64],
        "kind": "tool",
        "tool": tool,
        "args": args,
        "depends_on": [],
        "critical": False,
        "success_criteria": [f"has:{check}"],
        "confidence": 0.9,
    }


def _plan(tasks: list[dict[str, Any]], rationale: str, *, done: bool) -> dict[str, Any]:
    return {"rationale": rationale, "done": done, "tasks": tasks}


def has_header(content: str, header: str) -> bool:
    """Whether ``content`` already starts with the line ``header`` (CRLF tolerated)."""
    return content.split("\n", 1)[0].rstrip("\r") == header


def with_header(content: str, header: str) -> str:
    """``content`` with ``header`` as a new first line."""
    return f"{header}\n{content}"


def next_plan(goal: Goal, f: Findings) -> dict[str, Any]:
    """The next plan: the first stage whose information or effect is still missing."""
    if f.listing is None:
        if f.tried("list"):
            return _plan([], "the workspace could not be listed", done=True)
        args = {"path": ".", "recursive": True}
        return _plan([_task(f, "list", "list_files", args, "entries")], "list first", done=False)
    if goal.header is None:
        return _plan([], "the offline model only adds header lines; reporting", done=True)
    targets = f.files_with(goal.extension)
    reads = [
        _task(f, task_key("read", path), "read_file", {"path": path}, "content")
        for path in targets
        if path not in f.reads and not f.tried(task_key("read", path))
    ]
    if reads:
        return _plan(reads, f"read every {goal.extension} file before editing", done=False)
    writes = [
        _task(
            f,
            task_key("write", path),
            "write_file",
            {"path": path, "content": with_header(out["content"], goal.header)},
            "write_id",
        )
        for path, out in f.reads.items()
        if path in targets
        and not out.get("truncated")
        and not has_header(str(out.get("content", "")), goal.header)
        and path not in f.writes
        and not f.tried(task_key("write", path))
    ]
    if writes:
        return _plan(writes, "prepend the header where it is missing", done=True)
    return _plan([], f"every readable {goal.extension} file has the header", done=True)


def _flat(text: object, limit: int = 80) -> str:
    """``text`` on one line (a call label may hold a file's content), at most ``limit`` chars."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def write_report(goal: Goal, f: Findings) -> str:
    """A plain-text answer for the user: what changed, how to undo it, what was not done."""
    if f.listing is None:
        why = "; ".join(str(x.get("why")) for x in f.failures) or "no observations"
        return f"File editor report\n\nThe workspace could not be listed: {why}"
    lines = ["File editor report", ""]
    if goal.header is None:
        lines.append("The offline model only adds header lines; the workspace holds:")
        lines += [f"- {e.get('path')} ({e.get('type')})" for e in f.listing] or ["- nothing"]
        return "\n".join(lines)
    targets = f.files_with(goal.extension)
    lines.append(f'Goal: header "{goal.header}" on every {goal.extension} file.')
    changed = [(p, w) for p, w in f.writes.items() if p in targets and w.get("write_id")]
    lines += ["", "Files changed (undo any of them with the call shown):"]
    lines += [
        f"- {p}: header added; write {w['write_id']}; undo: {w.get('undo')}" for p, w in changed
    ]
    if not changed:
        lines.append("- none")
    kept = [p for p, out in f.reads.items() if has_header(str(out.get("content", "")), goal.header)]
    if kept:
        lines += ["", "Already had the header (left unchanged):", *(f"- {p}" for p in kept)]
    big = [p for p, out in f.reads.items() if out.get("truncated")]
    if big:
        lines += ["", "Too large to rewrite safely (left unchanged):", *(f"- {p}" for p in big)]
    if not targets:
        lines += ["", f"No {goal.extension} files were found in the workspace."]
    if f.listing_truncated:
        lines += ["", "The listing was cut short: some files may not have been seen."]
    links = [
        str(e.get("path"))
        for e in f.listing
        if e.get("type") == "symlink" and str(e.get("path")).endswith(goal.extension)
    ]
    if links:
        lines += [
            "",
            "Symbolic links (never followed, left unchanged):",
            *(f"- {p}" for p in links),
        ]
    problems = [f"- {_flat(x.get('call'))}: {x.get('outcome')}: {x.get('why')}" for x in f.failures]
    if problems:
        lines += ["", "Not done:", *problems]
    return "\n".join(lines)
