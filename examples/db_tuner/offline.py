"""The db-tuner's deterministic offline model: it decides each plan from the observations.

There is no script. Each call reads what is known (`read_findings`) and plans the first
thing still missing, in this order:

(a) schema or slow query log unknown -> ``list_tables`` and read ``slow_query_log``;
(b) a slow query not yet explained or timed -> ``explain_query`` + ``time_query``;
(c) a plan that scans a table the query filters -> ``create_index(table, [column])``
    (column chosen from the SQL's WHERE/JOIN), then ``analyze``;
(d) indexes changed -> explain and time each query again, and propose dropping an index
    no slow query uses (low confidence; a person approves it), with ``done: true``;
(e) nothing left -> ``{"tasks": [], "done": true}``.

A task that already ran, failed or was denied is never proposed again, so a refusal
moves the run on instead of looping. Task ids are ``i<iteration>-<what>``: unique across
the run, and readable back as "what" when a failed task has no output to go by.
"""

import json
from typing import Any

from durable_agents import LlmCall, Purpose
from examples.db_tuner.observations import Findings, SlowQuery, read_findings
from examples.db_tuner.report import write_report
from examples.db_tuner.sql_parse import index_columns, sources

SLOW_LOG_SQL = "SELECT id, sql, calls, avg_ms FROM slow_query_log ORDER BY calls * avg_ms DESC"
DROP_CONFIDENCE = 0.4  # a guess from the log alone: other code may still use the index


def offline_policy(call: LlmCall, prompt: str) -> str:
    """The reply of the offline model for the db-tuner agent (a `OfflinePolicy`)."""
    if call.purpose == Purpose.PLAN:
        return json.dumps(next_plan(read_findings(prompt)))
    if call.purpose == Purpose.SUMMARIZE:
        return write_report(read_findings(prompt))
    return "The db-tuner's offline model only plans and reports; its plans use tools only."


def _task(
    f: Findings,
    key: str,
    tool: str,
    args: dict[str, Any],
    *,
    after: list[str] | None = None,
    confidence: float = 0.9,
    check: str | None = None,
) -> dict[str, Any]:
    return {
        "id": f"i{f.iteration}-{key}"[:64],
        "kind": "tool",
        "tool": tool,
        "args": args,
        "depends_on": after or [],
        "critical": False,
        "success_criteria": [f"has:{check}"] if check else [],
        "confidence": confidence,
    }


def _plan(tasks: list[dict[str, Any]], rationale: str, *, done: bool) -> dict[str, Any]:
    return {"rationale": rationale, "done": done, "tasks": tasks}


def next_plan(f: Findings) -> dict[str, Any]:
    """The next plan: the first stage whose information is still missing."""
    for stage in (_discover, _measure, _index, _verify):
        plan = stage(f)
        if plan is not None:
            return plan
    return _plan([], "the slow queries are measured, indexed and re-measured", done=True)


def _discover(f: Findings) -> dict[str, Any] | None:
    tasks = []
    if f.tables is None and not f.tried("list_tables"):
        tasks.append(_task(f, "list_tables", "list_tables", {}, check="tables"))
    if f.slow_queries is None and not f.tried("slow_log"):
        args = {"sql": SLOW_LOG_SQL, "limit": 50}
        tasks.append(_task(f, "slow_log", "run_readonly_query", args, check="rows"))
    if tasks:
        return _plan(tasks, "read the schema and the slow query log first", done=False)
    if f.tables is None or f.slow_queries is None:
        # Nothing can be tuned without both; the report explains what failed.
        return _plan([], "the schema or the slow query log could not be read", done=True)
    return None


def _explain_then_time(
    f: Findings,
    queries: list[SlowQuery],
    prefix: str,
    explained: set[str],
    timed: set[str],
    after: list[str],
) -> list[dict[str, Any]]:
    """Explain tasks, then time tasks waiting for them (for queries not yet done).

    Timings run apart from the explains, so they measure the query, not its neighbours.
    """
    explains = [
        _task(
            f,
            f"{prefix}explain-q{q.id}",
            "explain_query",
            {"sql": q.sql},
            after=after,
            check="full_scan",
        )
        for q in queries
        if q.sql not in explained and not f.tried(f"{prefix}explain-q{q.id}")
    ]
    wait_for = after + [t["id"] for t in explains]
    times = [
        _task(
            f,
            f"{prefix}time-q{q.id}",
            "time_query",
            {"sql": q.sql, "repeat": 5},
            after=wait_for,
            check="median_ms",
        )
        for q in queries
        if q.sql not in timed and not f.tried(f"{prefix}time-q{q.id}")
    ]
    return explains + times


def _measure(f: Findings) -> dict[str, Any] | None:
    tasks = _explain_then_time(
        f, f.slow_queries or [], "", set(f.explains), set(f.before_ms), after=[]
    )
    if not tasks:
        return None
    return _plan(tasks, "explain and time each slow query before changing anything", done=False)


def index_targets(f: Findings) -> list[tuple[str, str]]:
    """(table, column) pairs to index: tables the plans scan, on the column filtered."""
    targets: list[tuple[str, str]] = []
    for q in f.slow_queries or []:
        plan = f.explains.get(q.sql, {})
        for table in [*plan.get("scanned_tables", []), *plan.get("automatic_index_tables", [])]:
            info = (f.tables or {}).get(table, {})
            usable = [
                c
                for c in index_columns(q.sql, table)
                if c in info.get("columns", []) and c not in info.get("primary_key", [])
            ]
            if not usable or usable[0] in f.indexed_columns(table):
                continue  # nothing to index, or an index already leads with that column
            if (table, usable[0]) not in targets:
                targets.append((table, usable[0]))
    return targets


def _index(f: Findings) -> dict[str, Any] | None:
    tasks = [
        _task(
            f,
            f"index-{table}-{column}",
            "create_index",
            {"table": table, "columns": [column]},
            check="index",
        )
        for table, column in index_targets(f)
        if not f.tried(f"index-{table}-{column}")
    ]
    if not tasks:
        return None
    if not f.tried("analyze"):
        after = [t["id"] for t in tasks]
        tasks.append(_task(f, "analyze", "analyze", {}, after=after, check="analyzed"))
    return _plan(tasks, "index the filtered columns of the scanned tables", done=False)


def unused_indexes(f: Findings) -> list[str]:
    """Indexes made by CREATE INDEX that no slow query filters, joins or plans on."""
    used_columns = {
        (table, column)
        for q in f.slow_queries or []
        for table in set(sources(q.sql).values())
        for column in index_columns(q.sql, table)
    }
    used_names = {
        name
        for plan in [*f.explains.values(), *f.explains_after.values()]
        for name in plan.get("indexes_used", [])
    }
    created = {c.get("index") for c in f.created}
    unused = []
    for table, info in (f.tables or {}).items():
        for index in info.get("indexes", []):
            name, columns = index["name"], index.get("columns") or [""]
            if index.get("origin") != "c" or name in created or name in used_names:
                continue
            if (table, columns[0]) not in used_columns:
                unused.append(name)
    return unused


def _verify(f: Findings) -> dict[str, Any] | None:
    tasks = []
    if f.created and not f.analyzed and not f.tried("analyze"):
        tasks.append(_task(f, "analyze", "analyze", {}, check="analyzed"))
    remeasure = (f.slow_queries or []) if f.created else []  # nothing changed: no "after"
    tasks += _explain_then_time(
        f, remeasure, "after-", set(f.explains_after), set(f.after_ms), [t["id"] for t in tasks]
    )
    # Measurements first: a refused drop then cannot cut them short.
    measured = [t["id"] for t in tasks]
    for name in unused_indexes(f):
        if name not in f.drops and not f.tried(f"drop-{name}"):
            tasks.append(
                _task(
                    f,
                    f"drop-{name}",
                    "drop_index",
                    {"name": name},
                    after=measured,
                    confidence=DROP_CONFIDENCE,
                )
            )
    if not tasks:
        return None
    return _plan(tasks, "re-measure after the index changes; drop an unused index", done=True)
