"""SQLite plumbing for the db-tuner tools: where the database is, how it is opened, its schema.

Everything here is blocking; the tools call it through ``asyncio.to_thread``. User SQL
only ever runs on a *guarded* connection: opened read-only (``mode=ro``) and with an
authorizer that allows reading and nothing else, so even a statement SQLite would accept
on a read-only file (``VACUUM INTO``, ``ATTACH``, ``PRAGMA``) is refused before it runs.
It may call only the functions in `READ_FUNCTIONS` (``fts3_tokenizer`` reads and writes
process memory; ``zeroblob`` allocates what it is asked for), and SQLite itself caps every
value at `MAX_VALUE_BYTES` and every result row at `MAX_COLUMNS`, so a query cannot make
the worker allocate without bound. Identifiers from the planner are checked against the
schema and then quoted; they are never interpolated unchecked.
"""

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from durable_agents import ToolContext, ToolFailedError, ToolInputError, ToolUnavailable
from examples.db_tuner.paths import default_db_path

T = TypeVar("T")

# Everything a plain SELECT (including WITH RECURSIVE) needs; anything else is denied.
_READ_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
# The only functions user SQL may call: pure functions of their arguments, enough to
# inspect and aggregate data. Anything else (fts3_tokenizer, load_extension, zeroblob,
# randomblob, sqlite_* introspection, extensions) is refused by name before it runs.
# fmt: off
READ_FUNCTIONS = frozenset({
    # aggregates and window functions
    "count", "sum", "total", "avg", "min", "max", "group_concat", "string_agg",
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value",
    # comparison, NULL handling, types
    "like", "glob", "coalesce", "ifnull", "nullif", "iif", "typeof", "likely", "unlikely",
    # numbers
    "abs", "round", "sign", "ceil", "ceiling", "floor", "trunc", "mod",
    # text
    "lower", "upper", "length", "octet_length", "substr", "substring", "trim", "ltrim",
    "rtrim", "replace", "instr", "printf", "format", "hex", "quote", "char", "unicode",
    # dates and times
    "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff",
    # JSON, reading only
    "json_extract", "json_type", "json_valid", "json_array_length", "->", "->>",
})
# fmt: on
MAX_VALUE_BYTES = 1_000_000  # SQLITE_LIMIT_LENGTH: longest string or blob, in bytes
MAX_COLUMNS = 64  # SQLITE_LIMIT_COLUMN: widest result row (and table, index, ORDER BY)
MAX_RESULT_BYTES = 1_000_000  # what run_readonly_query returns at most, all rows together
_FETCH_BATCH = 100  # rows fetched, then weighed, at a time
BUSY_TIMEOUT_S = 10.0
QUERY_LIMIT_S = 20.0  # below the tools' timeouts, so a runaway query fails with a reason
READ_ONLY_HINT = (
    "the database is read-only here: send a single SELECT (or WITH ... SELECT) statement; "
    "writes, PRAGMA, ATTACH and VACUUM are refused. Use create_index / drop_index / analyze "
    "to change the schema"
)


def database(ctx: ToolContext) -> Path:
    """The database file for this call, or a failure that says how to create it."""
    path = default_db_path(ctx.data_dir).absolute()
    if not path.is_file():
        raise ToolFailedError(
            f"no database at {path}: generate it with "
            f"`python -m examples.db_tuner.data --out {path}` (or set DB_TUNER_DB to an "
            "existing SQLite file)"
        )
    return path


class GuardedConnection(sqlite3.Connection):
    """A connection for user SQL that remembers which function its authorizer refused.

    SQLite reports any refusal as "not authorized"; the name kept here lets the error
    say which function was refused and what is allowed instead.
    """

    refused_function: str | None = None

    def authorize(self, action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
        """The authorizer: reading actions, and functions from `READ_FUNCTIONS` only."""
        if action not in _READ_ACTIONS:
            return sqlite3.SQLITE_DENY
        # For SQLITE_FUNCTION, arg2 is the function's name (arg1 is NULL).
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() not in READ_FUNCTIONS:
            self.refused_function = arg2 or "?"
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


def open_readonly(path: Path, *, guarded: bool) -> sqlite3.Connection:
    """A read-only connection; ``guarded`` adds the authorizer and limits (for user SQL)."""
    # isolation_level=None: no implicit BEGIN, which the authorizer would refuse anyway.
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro",
        uri=True,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=None,
        factory=GuardedConnection if guarded else sqlite3.Connection,
    )
    if isinstance(conn, GuardedConnection):
        conn.set_authorizer(conn.authorize)
        # SQLite refuses to build a longer value ("string or blob too big") instead of
        # allocating it: zeroblob(300000000) or a doubling string stop at the cap.
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        conn.setlimit(sqlite3.SQLITE_LIMIT_COLUMN, MAX_COLUMNS)
        deadline = time.monotonic() + QUERY_LIMIT_S
        # Returning True aborts the statement: bounds a runaway query's time.
        conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    return conn


def open_writable(path: Path) -> sqlite3.Connection:
    """A read-write connection for the schema-changing tools (our own SQL only)."""
    return sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)


def run_user_sql(conn: sqlite3.Connection, sql: str) -> sqlite3.Cursor:
    """Execute planner-provided SQL on a guarded connection, translating SQLite's errors."""
    if isinstance(conn, GuardedConnection):
        conn.refused_function = None  # a refusal names this statement's function only
    try:
        return conn.execute(sql)
    except sqlite3.Error as err:
        raise translate(err, conn) from err


def fetch_bounded(
    conn: sqlite3.Connection, cursor: sqlite3.Cursor, max_rows: int
) -> tuple[list[tuple[Any, ...]], bool]:
    """Up to ``max_rows`` rows of ``cursor``, and whether more were left unread.

    Rows are fetched a batch at a time and counted against `MAX_RESULT_BYTES` as they
    arrive, so an oversized result is refused after at most one batch past the budget,
    never held whole.
    """
    rows: list[tuple[Any, ...]] = []
    size = 0
    try:
        while len(rows) < max_rows:
            batch = cursor.fetchmany(min(_FETCH_BATCH, max_rows - len(rows)))
            if not batch:
                return rows, False
            for row in batch:
                size += sum(_value_bytes(v) for v in row)
                if size > MAX_RESULT_BYTES:
                    raise ToolInputError(
                        f"the result passed the {MAX_RESULT_BYTES}-byte limit on returned "
                        f"data after {len(rows)} rows: select fewer or narrower columns, "
                        "aggregate, or lower the limit"
                    )
                rows.append(row)
        more = cursor.fetchone() is not None
    except sqlite3.Error as err:  # some errors surface on a later step, not execute
        raise translate(err, conn) from err
    return rows, more


def _value_bytes(value: Any) -> int:
    """Roughly what ``value`` weighs once returned as JSON (bytes go out as hex)."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes):
        return 2 * len(value)
    return 8


def translate(err: sqlite3.Error, conn: sqlite3.Connection | None = None) -> Exception:
    """The tool error for a SQLite error, phrased so the planner knows what to change."""
    text = str(err)
    refused = conn.refused_function if isinstance(conn, GuardedConnection) else None
    if refused is not None:
        return ToolInputError(
            f"function {refused}() is not allowed in read-only SQL; allowed functions: "
            f"{', '.join(sorted(READ_FUNCTIONS))}"
        )
    if "too big" in text:
        return ToolInputError(
            f"refused ({text}): a value would pass the {MAX_VALUE_BYTES}-byte limit on one "
            "string or blob; select a substr() or length() of it instead"
        )
    if "too many columns" in text:
        return ToolInputError(
            f"refused ({text}): results have at most {MAX_COLUMNS} columns; select fewer"
        )
    if "authoriz" in text or "readonly" in text:
        return ToolInputError(f"refused ({text}): {READ_ONLY_HINT}")
    if "one statement at a time" in text:
        return ToolInputError(f"{text} Send exactly one SELECT statement.")
    if "interrupted" in text:
        return ToolInputError(
            f"query ran longer than {QUERY_LIMIT_S:.0f}s and was stopped: add a LIMIT or a "
            "narrower WHERE"
        )
    if "locked" in text or "busy" in text:
        return ToolUnavailable(f"database busy ({text}); retrying", retry_after_s=1.0)
    return ToolInputError(
        f"SQLite refused the query: {text}. Check names with list_tables / describe_table."
    )


def quote(identifier: str) -> str:
    """``identifier`` as a quoted SQL identifier (only used on names checked in the schema)."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass
class IndexInfo:
    """One index: ``origin`` is ``c`` (CREATE INDEX), ``u`` (UNIQUE) or ``pk``."""

    name: str
    table: str
    columns: list[str]
    unique: bool
    origin: str

    def as_json(self) -> dict[str, Any]:
        """The compact form the planner reads."""
        return {
            "name": self.name,
            "columns": self.columns,
            "unique": self.unique,
            "origin": self.origin,
        }


@dataclass
class TableInfo:
    """One table: column names and types, primary key, indexes."""

    name: str
    columns: dict[str, str] = field(default_factory=dict)
    primary_key: list[str] = field(default_factory=list)
    indexes: list[IndexInfo] = field(default_factory=list)


def read_schema(conn: sqlite3.Connection) -> dict[str, TableInfo]:
    """User tables (``sqlite_*`` internals excluded) with their columns and indexes."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    tables: dict[str, TableInfo] = {}
    for name in names:
        info = TableInfo(name)
        for _, col, ctype, _, _, pk in conn.execute("SELECT * FROM pragma_table_info(?)", (name,)):
            info.columns[col] = ctype
            if pk:
                info.primary_key.append(col)
        for _, index, unique, origin, _ in conn.execute(
            "SELECT * FROM pragma_index_list(?) ORDER BY name", (name,)
        ):
            cols = [
                r[2]
                for r in conn.execute("SELECT * FROM pragma_index_info(?) ORDER BY seqno", (index,))
            ]
            info.indexes.append(IndexInfo(index, name, cols, bool(unique), origin))
        tables[name] = info
    return tables


def find_index(schema: dict[str, TableInfo], name: str) -> IndexInfo | None:
    """The index called ``name`` (SQLite names are case-insensitive), if any."""
    for table in schema.values():
        for index in table.indexes:
            if index.name.lower() == name.lower():
                return index
    return None


def resolve_table(schema: dict[str, TableInfo], name: str) -> TableInfo:
    """The table called ``name`` (case-insensitive), or an error listing the real ones."""
    for table in schema.values():
        if table.name.lower() == name.lower():
            return table
    known = ", ".join(schema) or "none"
    raise ToolInputError(f"unknown table '{name}'; known tables: {known}")


def resolve_columns(table: TableInfo, columns: list[str]) -> list[str]:
    """The canonical names of ``columns`` of ``table``, or an error listing the real ones."""
    by_lower = {c.lower(): c for c in table.columns}
    missing = [c for c in columns if c.lower() not in by_lower]
    if missing:
        known = ", ".join(table.columns)
        raise ToolInputError(
            f"table {table.name} has no column {', '.join(missing)}; its columns: {known}"
        )
    return [by_lower[c.lower()] for c in columns]


def with_connection(
    open_conn: Callable[[], sqlite3.Connection], work: Callable[[sqlite3.Connection], T]
) -> T:
    """Run ``work`` on a fresh connection and always close it."""
    conn = open_conn()
    try:
        return work(conn)
    except sqlite3.Error as err:
        raise translate(err, conn) from err
    finally:
        conn.close()
