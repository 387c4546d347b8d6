"""The db-tuner's tools: inspect a SQLite database, measure queries, add and drop indexes.

Every tool opens its own connection inside ``asyncio.to_thread`` (SQLite is blocking and
a connection must stay on the thread that made it). Read tools can never change the
database (see `examples.db_tuner.db`). The schema-changing tools are idempotent by
construction, so an activity retried after a crash finds its work done and says so:
``create_index`` reports ``created: false``, ``drop_index`` reports ``reason: absent``.
"""

import asyncio
import re
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from durable_agents import SideEffect, ToolContext, ToolInputError, ToolRegistry
from examples.db_tuner import db
from examples.db_tuner.args import (
    CreateIndexArgs,
    DropIndexArgs,
    NoArgs,
    QueryArgs,
    SqlArgs,
    TableArgs,
    TimeArgs,
)
from examples.db_tuner.sql_parse import sources

TOOLS = ToolRegistry()
T = TypeVar("T")
# One timing at a time per process: timings taken in parallel threads mostly measure
# waits for the GIL, and a plan may time several queries at once.
_TIMING_LOCK = threading.Lock()

# SQLite before 3.36 wrote "SCAN TABLE orders"; later versions write "SCAN orders".
_PLAN_STEP = re.compile(r"^(SCAN|SEARCH) (?:TABLE )?(\w+)(?: USING (.*))?$")


def _read(ctx: ToolContext, work: Callable[[sqlite3.Connection], T], guarded: bool) -> T:
    path = db.database(ctx)
    return db.with_connection(lambda: db.open_readonly(path, guarded=guarded), work)


def _write(ctx: ToolContext, work: Callable[[sqlite3.Connection], T]) -> T:
    path = db.database(ctx)
    return db.with_connection(lambda: db.open_writable(path), work)


def _timed_read(ctx: ToolContext, work: Callable[[sqlite3.Connection], T]) -> T:
    # The lock is taken before the connection opens, so the wait does not count
    # against the query's time limit.
    with _TIMING_LOCK:
        return _read(ctx, work, True)


async def _reading(
    ctx: ToolContext, work: Callable[[sqlite3.Connection], T], *, guarded: bool
) -> T:
    """Run ``work`` on a read-only connection in a thread (SQLite calls block)."""
    return await asyncio.to_thread(_read, ctx, work, guarded)


async def _writing(ctx: ToolContext, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` on a read-write connection in a thread."""
    return await asyncio.to_thread(_write, ctx, work)


def _table_json(conn: sqlite3.Connection, table: db.TableInfo) -> dict[str, Any]:
    (rows,) = conn.execute(f"SELECT COUNT(*) FROM {db.quote(table.name)}").fetchone()
    return {
        "name": table.name,
        "rows": rows,
        "columns": list(table.columns),
        "primary_key": table.primary_key,
        "indexes": [i.as_json() for i in table.indexes],
    }


# Cheap catalog reads run as local activities (no server round trip); the queries that
# can take seconds, and every write, run as activities that heartbeat.
@TOOLS.tool(side_effect=SideEffect.READ, local=True)
async def list_tables(args: NoArgs, ctx: ToolContext) -> dict[str, Any]:
    """List every table with its row count, column names, primary key and indexes.

    Index origin: "c" made by CREATE INDEX, "u" enforces UNIQUE, "pk" the primary key.
    """

    def work(conn: sqlite3.Connection) -> dict[str, Any]:
        return {"tables": [_table_json(conn, t) for t in db.read_schema(conn).values()]}

    return await _reading(ctx, work, guarded=False)


@TOOLS.tool(side_effect=SideEffect.READ, resource_arg="table", local=True)
async def describe_table(args: TableArgs, ctx: ToolContext) -> dict[str, Any]:
    """Describe one table: columns with types, primary key, indexes and row count."""

    def work(conn: sqlite3.Connection) -> dict[str, Any]:
        table = db.resolve_table(db.read_schema(conn), args.table)
        described = _table_json(conn, table)
        described["columns"] = [{"name": c, "type": t} for c, t in table.columns.items()]
        return described

    return await _reading(ctx, work, guarded=False)


@TOOLS.tool(side_effect=SideEffect.READ, local=True)
async def explain_query(args: SqlArgs, ctx: ToolContext) -> dict[str, Any]:
    """Show SQLite's query plan for a SELECT (EXPLAIN QUERY PLAN), without running it.

    full_scan is true when a table is read from start to end (a "SCAN" step): the sign
    of a missing index on the filtered column. scanned_tables names those tables.
    """

    def work(conn: sqlite3.Connection) -> dict[str, Any]:
        steps = [r[3] for r in db.run_user_sql(conn, "EXPLAIN QUERY PLAN " + args.sql)]
        tables = {r[0].lower(): r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        aliases = sources(args.sql)  # the plan names aliases ("SCAN r"); map them back
        scanned: list[str] = []
        used: list[str] = []
        automatic: list[str] = []
        for step in steps:
            match = _PLAN_STEP.match(step)
            if not match:
                continue
            verb, name, using = match.groups()
            table = aliases.get(name.lower()) or tables.get(name.lower())
            if table is None:  # a CTE or subquery, not a stored table
                continue
            if verb == "SCAN" and table not in scanned:
                scanned.append(table)
            index = re.search(r"INDEX (\w+)", using or "")
            if "AUTOMATIC" in (using or ""):
                automatic.append(table)  # SQLite builds a throwaway index on every run
            elif index:
                used.append(index.group(1))
        return {
            "sql": args.sql,
            "plan": steps,
            "full_scan": bool(scanned),
            "scanned_tables": scanned,
            "indexes_used": used,
            "automatic_index_tables": automatic,
        }

    return await _reading(ctx, work, guarded=True)


def _jsonable(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


@TOOLS.tool(side_effect=SideEffect.READ)
async def run_readonly_query(args: QueryArgs, ctx: ToolContext) -> dict[str, Any]:
    """Run one SELECT and return up to `limit` rows. Writes of any kind are refused.

    The slow queries to tune are in the table slow_query_log(id, sql, calls, avg_ms).
    Only plain functions (count, sum, min, max, substr, date, ...) may be called. A very
    long value, a very wide row or too many bytes of rows in all are refused; the error
    names the limit.
    """

    def work(conn: sqlite3.Connection) -> dict[str, Any]:
        cursor = db.run_user_sql(conn, args.sql)
        fetched, more = db.fetch_bounded(conn, cursor, args.limit)
        columns = [d[0] for d in cursor.description or ()]
        rows = [[_jsonable(v) for v in row] for row in fetched]
        return {
            "sql": args.sql,
            "columns": columns,
            "rows": rows,
            "row_count": len(rows),
            "truncated": more,
        }

    return await _reading(ctx, work, guarded=True)


@TOOLS.tool(side_effect=SideEffect.READ, timeout_s=60.0)
async def time_query(args: TimeArgs, ctx: ToolContext) -> dict[str, Any]:
    """Time a SELECT: one warm-up run, then the median of `repeat` runs, in milliseconds.

    Compare before and after an index change to prove it helped.
    """

    def work(conn: sqlite3.Connection) -> dict[str, Any]:
        rows = sum(1 for _ in db.run_user_sql(conn, args.sql))  # warm-up: page cache
        samples = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            for _ in db.run_user_sql(conn, args.sql):
                pass
            samples.append((time.perf_counter() - started) * 1000)
        return {
            "sql": args.sql,
            "median_ms": max(round(statistics.median(samples), 4), 0.0001),
            "min_ms": round(min(samples), 4),
            "runs": args.repeat,
            "rows": rows,
        }

    return await asyncio.to_thread(_timed_read, ctx, work)


def default_index_name(table: str, columns: list[str]) -> str:
    """The name create_index uses when none is given: ``idx_<table>_<col>_<col>``."""
    return f"idx_{table}_{'_'.join(columns)}"


@TOOLS.tool(side_effect=SideEffect.WRITE, resource_arg="table", timeout_s=120.0)
async def create_index(args: CreateIndexArgs, ctx: ToolContext) -> dict[str, Any]:
    """Create an index on table(columns). Safe to repeat: an existing equal index is kept.

    Returns created=false (with the index's name) when an index on exactly these columns
    already exists. Run analyze afterwards so the planner has statistics.
    """

    def work(conn: sqlite3.Connection) -> dict[str, Any]:
        schema = db.read_schema(conn)
        table = db.resolve_table(schema, args.table)
        columns = db.resolve_columns(table, args.columns)
        if len({c.lower() for c in columns}) != len(columns):
            raise ToolInputError(f"columns repeat a name: {columns}; list each column once")
        name = args.name or default_index_name(table.name, columns)
        if name.lower().startswith("sqlite_"):
            raise ToolInputError("index names starting with sqlite_ are reserved; pick another")
        wanted = [c.lower() for c in columns]
        named = db.find_index(schema, name)
        if named is not None and (named.table, [c.lower() for c in named.columns]) != (
            table.name,
            wanted,
        ):
            raise ToolInputError(
                f"an index named {named.name} already exists on {named.table}"
                f"({', '.join(named.columns)}); omit name or choose another"
            )
        same = named or next(
            (i for i in table.indexes if [c.lower() for c in i.columns] == wanted), None
        )
        if same is not None:
            return {"index": same.name, "table": table.name, "columns": columns, "created": False}
        cols_sql = ", ".join(db.quote(c) for c in columns)
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {db.quote(name)} ON {db.quote(table.name)} ({cols_sql})"
        )
        return {"index": name, "table": table.name, "columns": columns, "created": True}

    return await _writing(ctx, work)


@TOOLS.tool(side_effect=SideEffect.IRREVERSIBLE, resource_arg="name", timeout_s=120.0)
async def drop_index(args: DropIndexArgs, ctx: ToolContext) -> dict[str, Any]:
    """Drop an index made by CREATE INDEX (needs a person's approval).

    Indexes that enforce UNIQUE or PRIMARY KEY are refused. Dropping an index that is
    not there returns dropped=false, reason "absent". The result has restore_sql.
    """

    def work(conn: sqlite3.Connection) -> dict[str, Any]:
        index = db.find_index(db.read_schema(conn), args.name)
        if index is None:
            return {"index": args.name, "dropped": False, "reason": "absent"}
        if index.origin != "c":
            kind = "PRIMARY KEY" if index.origin == "pk" else "UNIQUE"
            raise ToolInputError(
                f"{index.name} enforces the {kind} constraint of {index.table}"
                f"({', '.join(index.columns)}); it cannot be dropped on its own"
            )
        (restore,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (index.name,)
        ).fetchone()
        conn.execute(f"DROP INDEX IF EXISTS {db.quote(index.name)}")
        return {
            "index": index.name,
            "table": index.table,
            "columns": index.columns,
            "dropped": True,
            "restore_sql": restore,
        }

    return await _writing(ctx, work)


@TOOLS.tool(side_effect=SideEffect.WRITE, timeout_s=120.0)
async def analyze(args: NoArgs, ctx: ToolContext) -> dict[str, Any]:
    """Run ANALYZE so SQLite's planner knows table and index sizes (after index changes)."""

    def work(conn: sqlite3.Connection) -> dict[str, Any]:
        conn.execute("ANALYZE")
        (stats,) = conn.execute("SELECT COUNT(*) FROM sqlite_stat1").fetchone()
        return {"analyzed": True, "statistics_rows": stats}

    return await _writing(ctx, work)
