"""State checks of the db-tuner for ``agentctl eval``: what its runs leave in the database."""

import sqlite3
from pathlib import Path

from examples.db_tuner.paths import default_db_path


def full_scans(conn: sqlite3.Connection, sql: str) -> list[str]:
    """Steps of ``sql``'s plan that read a whole table (``SCAN t``, not through an index)."""
    steps = [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    return [s for s in steps if s.startswith("SCAN ") and "INDEX" not in s]


def slow_queries_indexed(data_dir: Path, _arg: str) -> list[str]:
    """Every query in ``slow_query_log`` reads through an index (no full table scan)."""
    db = default_db_path(data_dir)
    if not db.exists():
        return [f"no database at {db}"]
    # Read-only: a check must not change what it checks.
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        sqls = [str(r[0]) for r in conn.execute("SELECT sql FROM slow_query_log ORDER BY id")]
        return [
            f"slow query {n} still scans: {'; '.join(scans)}"
            for n, sql in enumerate(sqls, start=1)
            if (scans := full_scans(conn, sql))
        ]


def index_absent(data_dir: Path, name: str) -> list[str]:
    """The index ``name`` is not in the database (``index_absent:idx_x``)."""
    with sqlite3.connect(f"file:{default_db_path(data_dir)}?mode=ro", uri=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
        ).fetchone()
    return [f"index {name} exists"] if found else []


def index_present(data_dir: Path, name: str) -> list[str]:
    """The index ``name`` is in the database (``index_present:idx_x``)."""
    return [] if index_absent(data_dir, name) else [f"index {name} does not exist"]


STATE_CHECKS = {
    "slow_queries_indexed": slow_queries_indexed,
    "index_absent": index_absent,
    "index_present": index_present,
}
