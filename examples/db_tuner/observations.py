"""What a db-tuner run has learnt so far, read back from the observations in a prompt.

The offline policy is stateless: every decision starts from the prompt. This module turns
the prompt's observation list into `Findings` (schema, slow queries, plans and timings
before and after the first index change, indexes created and dropped, and what failed).
Successful steps are recognised by their tool and output, so the findings hold whatever
happened; task ids are only needed to name what *failed* (a failure has no output).
"""

import re
from dataclasses import dataclass, field
from typing import Any

from durable_agents import parse_observations

_ITERATION = re.compile(r"^ITERATION: (\d+)$", re.M)
_TASK_ID = re.compile(r"^i\d+-(.+)$")
OK_OUTCOMES = ("ok", "soft")  # "soft": a success criterion failed but the output is real


@dataclass(frozen=True)
class SlowQuery:
    """One row of slow_query_log."""

    id: int
    sql: str
    calls: int
    avg_ms: float


@dataclass
class Findings:
    """Everything the observations say, oldest first; "after" means after an index change."""

    iteration: int = 0
    tables: dict[str, dict[str, Any]] | None = None
    slow_queries: list[SlowQuery] | None = None
    explains: dict[str, dict[str, Any]] = field(default_factory=dict)
    explains_after: dict[str, dict[str, Any]] = field(default_factory=dict)
    before_ms: dict[str, float] = field(default_factory=dict)
    after_ms: dict[str, float] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)
    analyzed: bool = False
    drops: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def tried(self, key: str) -> bool:
        """Whether a task with this key already ran (or was refused): never propose it again."""
        return key in self.seen

    def indexed_columns(self, table: str) -> set[str]:
        """Leading columns of the indexes ``table`` has (as listed, plus those created)."""
        info = (self.tables or {}).get(table, {})
        leading = {i["columns"][0] for i in info.get("indexes", []) if i.get("columns")}
        leading |= {c["columns"][0] for c in self.created if c.get("table") == table}
        return leading


def task_key(task_id: str) -> str:
    """The part of a task id that names the work (ids are ``i<iteration>-<key>``)."""
    match = _TASK_ID.match(task_id)
    return match.group(1) if match else task_id


def _output(obs: dict[str, Any]) -> dict[str, Any] | None:
    out = obs.get("output")
    return out if isinstance(out, dict) else None  # a preview alone cannot be decided on


def _slow_queries(out: dict[str, Any]) -> list[SlowQuery] | None:
    columns = out.get("columns") or []
    if "sql" not in columns:
        return None
    rows = [dict(zip(columns, row, strict=False)) for row in out.get("rows", [])]
    return [
        SlowQuery(
            int(r.get("id", i + 1)),
            str(r["sql"]),
            int(r.get("calls") or 0),
            float(r.get("avg_ms") or 0),
        )
        for i, r in enumerate(rows)
    ]


def read_findings(prompt: str) -> Findings:
    """Parse the prompt's ITERATION line and observation block into `Findings`."""
    found = Findings()
    match = _ITERATION.search(prompt)
    found.iteration = int(match.group(1)) if match else 0
    changed = False  # becomes True at the first index created: later timings are "after"
    for obs in parse_observations(prompt):
        key = task_key(str(obs.get("task", "")))
        found.seen.add(key)
        tool = str(obs.get("call", "")).split("(", 1)[0]
        if obs.get("outcome") not in OK_OUTCOMES:
            found.failures.append({"key": key, "tool": tool, **obs})
            if tool == "drop_index":
                found.drops[key.removeprefix("drop-")] = {"outcome": obs.get("outcome"), **obs}
            continue
        out = _output(obs)
        if out is None:
            continue
        if tool == "list_tables":
            found.tables = {t["name"]: t for t in out.get("tables", [])}
        elif tool == "run_readonly_query" and "slow_query_log" in str(out.get("sql", "")):
            found.slow_queries = _slow_queries(out)
        elif tool == "explain_query":
            (found.explains_after if changed else found.explains)[out["sql"]] = out
        elif tool == "time_query":
            (found.after_ms if changed else found.before_ms)[out["sql"]] = out["median_ms"]
        elif tool == "create_index":
            found.created.append(out)
            changed = True
        elif tool == "analyze":
            found.analyzed = True
        elif tool == "drop_index":
            found.drops[str(out.get("index"))] = {"outcome": "ok", **out}
    return found
