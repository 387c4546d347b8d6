"""What the db-tuner's read SQL may do: allowed functions only, and bounded results.

Attacks from a security review, on a real SQLite file: ``fts3_tokenizer`` handed out (and
could overwrite) process memory, and ``SELECT zeroblob(300000000)`` grew the worker by a
gigabyte. Each must now be refused with a typed error that names what to change.
"""

from pathlib import Path
from typing import Any

import pytest

from durable_agents._activities.tool_api import ToolInputError
from examples.db_tuner.data import default_db_path, generate
from examples.db_tuner.db import MAX_COLUMNS, MAX_RESULT_BYTES, MAX_VALUE_BYTES
from examples.db_tuner.tools import TOOLS
from tests.support.tool_calls import call_tool

pytestmark = pytest.mark.unit

GUARDED_TOOLS = ["run_readonly_query", "explain_query", "time_query"]
# 2**24 bytes: past the value limit, yet harmless if the limit were ever lost.
DOUBLING = (
    "WITH RECURSIVE r(s, n) AS (SELECT 'x', 0 UNION ALL SELECT s || s, n + 1 FROM r "
    "WHERE n < 24) SELECT length(s) FROM r"
)


def numbers(n: int, *columns: str) -> str:
    """A query of ``n`` rows: ``n`` and the given column expressions."""
    listed = ", ".join(("n", *columns))
    return (
        f"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < {n}) "
        f"SELECT {listed} FROM r"
    )


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DB_TUNER_DB", raising=False)
    generate(default_db_path(tmp_path), scale=0.02)
    return tmp_path


async def call(name: str, data_dir: Path, /, **args: Any) -> Any:
    return await call_tool(TOOLS, name, data_dir, "t/1", **args)


@pytest.mark.parametrize("tool", GUARDED_TOOLS)
@pytest.mark.parametrize(
    ("sql", "function"),
    [
        ("SELECT hex(fts3_tokenizer('simple'))", "fts3_tokenizer"),  # a pointer into the worker
        ("SELECT zeroblob(300000000)", "zeroblob"),
        ("SELECT id FROM orders WHERE id IN (SELECT length(randomblob(9)))", "randomblob"),
        ("WITH c AS (SELECT load_extension('x') AS v) SELECT v FROM c", "load_extension"),
        ("SELECT sqlite_compileoption_get(0)", "sqlite_compileoption_get"),
    ],
)
async def test_functions_off_the_allowlist_are_refused(
    data_dir: Path, tool: str, sql: str, function: str
) -> None:
    # explain_query never runs the statement: the refusal comes before anything executes.
    with pytest.raises(ToolInputError, match=rf"function {function}\(\) is not allowed") as err:
        await call(tool, data_dir, sql=sql)
    assert "allowed functions: " in str(err.value) and "count" in str(err.value)


async def test_allowed_functions_still_work(data_dir: Path) -> None:
    out = await call(
        "run_readonly_query",
        data_dir,
        sql="SELECT count(*), sum(total_cents) > 0, lower('AB'), substr('abc', 2), "
        "date('2024-01-02 03:04:05'), coalesce(NULL, 7), abs(-2), round(2.5) FROM orders",
    )
    assert out["rows"][0][1:] == [1, "ab", "bc", "2024-01-02", 7, 2, 3.0]
    assert out["rows"][0][0] > 0


@pytest.mark.parametrize("tool", ["run_readonly_query", "time_query"])
async def test_a_value_past_the_length_limit_is_refused(data_dir: Path, tool: str) -> None:
    with pytest.raises(ToolInputError, match=f"{MAX_VALUE_BYTES}-byte limit on one string"):
        await call(tool, data_dir, sql=DOUBLING)


async def test_the_length_limit_sits_exactly_at_its_value(data_dir: Path) -> None:
    def joined(a: int, b: int) -> str:  # a string of a + b bytes, built by SQLite
        return f"SELECT length(printf('%.{a}c', 'x') || printf('%.{b}c', 'y'))"

    half = MAX_VALUE_BYTES // 2
    out = await call("run_readonly_query", data_dir, sql=joined(half, half))
    assert out["rows"] == [[MAX_VALUE_BYTES]]
    with pytest.raises(ToolInputError, match=f"{MAX_VALUE_BYTES}-byte limit"):
        await call("run_readonly_query", data_dir, sql=joined(half, half + 1))


async def test_a_result_wider_than_the_column_limit_is_refused(data_dir: Path) -> None:
    too_wide = "SELECT " + ", ".join(str(i) for i in range(MAX_COLUMNS + 1))
    with pytest.raises(ToolInputError, match=f"at most {MAX_COLUMNS} columns"):
        await call("run_readonly_query", data_dir, sql=too_wide)


async def test_rows_past_the_byte_budget_are_refused(data_dir: Path) -> None:
    width = 2_000  # 1000 rows of 2000 bytes: twice the budget
    sql = numbers(1000, f"printf('%.{width}c', 'x')")
    with pytest.raises(ToolInputError, match=f"{MAX_RESULT_BYTES}-byte limit on returned data"):
        await call("run_readonly_query", data_dir, sql=sql, limit=1000)
    fits = await call("run_readonly_query", data_dir, sql=sql, limit=400)
    assert fits["row_count"] == 400 and fits["truncated"]


async def test_rows_are_capped_by_the_limit(data_dir: Path) -> None:
    out = await call("run_readonly_query", data_dir, sql=numbers(5000), limit=1000)
    assert (out["row_count"], out["truncated"]) == (1000, True)
    assert out["rows"][-1] == [1000]
    whole = await call("run_readonly_query", data_dir, sql=numbers(7), limit=7)
    assert (whole["row_count"], whole["truncated"]) == (7, False)
    with pytest.raises(ValueError, match="less than or equal to 1000"):
        await call("run_readonly_query", data_dir, sql=numbers(5000), limit=5000)
