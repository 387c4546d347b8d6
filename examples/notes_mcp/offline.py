"""The notes agent's offline model: list the notes, add the one the goal quotes, report.

Goals it understands: ``add a note "<title>"`` (the note's text is the goal) and
``delete note <id>``. Each plan is the first step still missing from the observations:
list the notes; add (or delete) what the goal names; then done. A step that already ran,
failed or was refused is not proposed again.
"""

import json
import re
from typing import Any

from durable_agents import LlmCall, Purpose, parse_observations

_GOAL = re.compile(r"^GOAL: (.*)$", re.MULTILINE)
_QUOTED = re.compile(r'"([^"]+)"')
_DELETE = re.compile(r"delete note (\w+)", re.IGNORECASE)


def offline_policy(call: LlmCall, prompt: str) -> str:
    """The offline model's reply for the notes agent (an `OfflinePolicy`)."""
    seen = parse_observations(prompt)
    if call.purpose == Purpose.PLAN:
        return json.dumps(next_plan(_goal(prompt), seen))
    if call.purpose == Purpose.SUMMARIZE:
        lines = [f"- {o.get('call')}: {o.get('outcome')}" for o in seen]
        return "Notes agent (offline).\n" + ("\n".join(lines) or "Nothing was done.")
    return "The notes agent's offline model only plans and reports."


def _goal(prompt: str) -> str:
    match = _GOAL.search(prompt)
    return match.group(1).strip() if match else ""


def _tried(seen: list[dict[str, Any]], tool: str) -> bool:
    return any(str(o.get("call", "")).startswith(f"{tool}(") for o in seen)


def _task(key: str, tool: str, args: dict[str, Any], n: int) -> dict[str, Any]:
    return {"id": f"{key}-{n}", "kind": "tool", "tool": tool, "args": args, "confidence": 0.9}


def next_plan(goal: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """The next plan for ``goal`` given what was observed."""
    n = len(seen)
    if not _tried(seen, "notes__list_notes"):
        task = _task("list", "notes__list_notes", {}, n)
        return {"rationale": "list first", "done": False, "tasks": [task]}
    title = _QUOTED.search(goal)
    if title and "add" in goal.lower() and not _tried(seen, "notes__add_note"):
        args = {"title": title.group(1), "text": goal}
        return {
            "rationale": "add it",
            "done": True,
            "tasks": [_task("add", "notes__add_note", args, n)],
        }
    target = _DELETE.search(goal)
    if target and not _tried(seen, "notes__delete_note"):
        args = {"note_id": target.group(1)}
        task = _task("delete", "notes__delete_note", args, n)
        return {"rationale": "delete it", "done": True, "tasks": [task]}
    return {"rationale": "nothing left to do", "done": True, "tasks": []}
