"""What a file-editor run was asked and has learnt so far, read back from a prompt.

The offline policy is stateless: each decision starts from the prompt. `read_goal` takes
the header line and file extension out of the GOAL line; `read_findings` turns the
observation list into `Findings` (the workspace listing, the files read, written and
undone, and what failed). Successful steps are recognised by their tool and output; task
ids are only needed to name what failed or was refused (such a step has no output).
"""

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from durable_agents import parse_observations

_GOAL = re.compile(r"^GOAL: (.*)$", re.M)
_ITERATION = re.compile(r"^ITERATION: (\d+)$", re.M)
_TASK_ID = re.compile(r"^i\d+-(.+)$")
# The header is the goal's first quoted text: "..." or “...” or `...`.
_QUOTED = re.compile(r'"([^"\n]+)"|“([^”\n]+)”|`([^`\n]+)`')
_EXTENSION = re.compile(r"(?<![\w/.])\.([A-Za-z0-9]{1,12})\b")
_SAFE_KEY = re.compile(r"^[\w./-]{1,40}$")
OK_OUTCOMES = ("ok", "soft")  # "soft": a success criterion failed but the output is real
DEFAULT_HEADER = "# Edited by the file-editor agent"
DEFAULT_EXTENSION = ".txt"


@dataclass(frozen=True)
class Goal:
    """What the user asked for, as far as the offline policy understands goals.

    ``header`` is None when the goal is not about adding a header line: the policy then
    only looks at the workspace and reports, rather than editing files nobody asked for.
    """

    text: str
    header: str | None
    extension: str


def read_goal(prompt: str) -> Goal:
    """The goal line of ``prompt``, with its header (if any) and extension (``.txt``)."""
    match = _GOAL.search(prompt)
    text = match.group(1).strip() if match else ""
    quoted = _QUOTED.search(text)
    header: str | None = None
    if "header" in text.lower():
        header = next(g for g in quoted.groups() if g) if quoted else DEFAULT_HEADER
    ext = _EXTENSION.search(_QUOTED.sub("", text))  # an extension inside the header is text
    return Goal(text, header, f".{ext.group(1)}" if ext else DEFAULT_EXTENSION)


def task_key(verb: str, path: str) -> str:
    """A readable task key for ``verb`` on ``path`` (a digest when the path is long/odd)."""
    if _SAFE_KEY.match(path):
        return f"{verb}-{path}"
    return f"{verb}-{hashlib.sha256(path.encode()).hexdigest()[:12]}"


def key_of(task_id: str) -> str:
    """The part of a task id that names the work (ids are ``i<iteration>-<key>``)."""
    match = _TASK_ID.match(task_id)
    return match.group(1) if match else task_id


@dataclass
class Findings:
    """Everything the observations say, by workspace path, oldest first."""

    iteration: int = 0
    listing: list[dict[str, Any]] | None = None
    listing_truncated: bool = False
    reads: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: dict[str, dict[str, Any]] = field(default_factory=dict)
    undos: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def tried(self, key: str) -> bool:
        """Whether a task with this key already ran (or was refused): never propose it again."""
        return key in self.seen

    def files_with(self, extension: str) -> list[str]:
        """Listed regular files whose name ends with ``extension`` (links never count)."""
        return [
            str(e["path"])
            for e in self.listing or []
            if e.get("type") == "file" and str(e.get("path", "")).endswith(extension)
        ]


def _output(obs: dict[str, Any]) -> dict[str, Any] | None:
    out = obs.get("output")
    return out if isinstance(out, dict) else None  # a preview alone cannot be decided on


def read_findings(prompt: str) -> Findings:
    """Parse the prompt's ITERATION line and observation block into `Findings`."""
    found = Findings()
    match = _ITERATION.search(prompt)
    found.iteration = int(match.group(1)) if match else 0
    for obs in parse_observations(prompt):
        key = key_of(str(obs.get("task", "")))
        found.seen.add(key)
        tool = str(obs.get("call", "")).split("(", 1)[0]
        if obs.get("outcome") not in OK_OUTCOMES:
            found.failures.append({"key": key, "tool": tool, **obs})
            continue
        out = _output(obs)
        if out is None:
            continue
        if tool == "list_files" and out.get("path") == ".":
            found.listing = list(out.get("entries", []))
            found.listing_truncated = bool(out.get("truncated"))
        elif tool == "read_file":
            found.reads[str(out.get("path"))] = out
        elif tool in ("write_file", "delete_file"):
            found.writes[str(out.get("path"))] = out
        elif tool in ("undo_write", "force_undo_write"):
            found.undos[str(out.get("write_id"))] = out
    return found
