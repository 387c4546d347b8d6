"""The db-tuner example: its data, its tools on a real SQLite file, and its offline policy.

The policy tests feed it prompts built by `domain.prompts` from `StepRecord`s holding the
outputs of the real tools, and drive plan -> execute -> plan without Temporal, the way
the workflow does (waves, a failure ends the plan, approvals for drop_index).
"""

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from durable_agents._activities.tool_api import ToolContext, ToolFailedError, ToolInputError
from durable_agents._domain.evaluation import deterministic_check
from durable_agents._domain.llm import LlmCall, Message, PayloadRef
from durable_agents._domain.permissions import Effect
from durable_agents._domain.plan import Plan, Task, TaskKind, ready_waves, validate_plan
from durable_agents._domain.prompts import answer_messages, planner_messages
from durable_agents._domain.run import Outcome, StepRecord
from durable_agents._domain.spec import AgentSpec
from examples.db_tuner import PLUGIN
from examples.db_tuner.data import default_db_path, generate
from examples.db_tuner.data import main as data_main
from examples.db_tuner.offline import offline_policy
from examples.db_tuner.tools import TOOLS

pytestmark = pytest.mark.unit

GOAL = "Make the slow queries of the shop database faster."
EXPECTED_INDEXES = {
    ("orders", "customer_id"),
    ("order_items", "product_id"),
    ("customers", "email"),
    ("reviews", "customer_id"),
    ("orders", "created_at"),
}
FAILED = (Outcome.HARD, Outcome.CRITICAL, Outcome.DENIED)


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ToolContext:
    monkeypatch.delenv("DB_TUNER_DB", raising=False)
    generate(default_db_path(tmp_path), scale=0.05)
    return ToolContext(idempotency_key="t/1", workflow_id="t", attempt=1, data_dir=tmp_path)


@pytest.fixture
def spec() -> AgentSpec:
    return PLUGIN.build_spec()


async def call(tool_name: str, ctx: ToolContext, /, **args: Any) -> Any:
    tool = TOOLS.get(tool_name)
    return await tool.fn(tool.args_model.model_validate(args), ctx)


def rows(ctx: ToolContext, sql: str) -> list[Any]:
    with sqlite3.connect(default_db_path(ctx.data_dir)) as conn:
        return conn.execute(sql).fetchall()


def logged_queries(ctx: ToolContext) -> list[str]:
    return [r[0] for r in rows(ctx, "SELECT sql FROM slow_query_log ORDER BY id")]


# -- data --------------------------------------------------------------------------------


def test_generate_is_deterministic(tmp_path: Path) -> None:
    dumps = []
    for name in ("a.db", "b.db"):
        conn = sqlite3.connect(generate(tmp_path / name, scale=0.05))
        dumps.append(list(conn.iterdump()))
        conn.close()
    assert dumps[0] == dumps[1]
    assert any("idx_products_legacy_sku" in line for line in dumps[0])


def test_cli_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = str(tmp_path / "client.db")
    assert data_main(["--out", out, "--scale", "0.01"]) == 0
    assert data_main(["--out", out, "--scale", "0.01"]) == 1
    assert data_main(["--out", out, "--scale", "0.01", "--force"]) == 0
    assert data_main(["--out", str(tmp_path / "zero.db"), "--scale", "0"]) == 2


def test_default_db_path_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_TUNER_DB", raising=False)
    assert default_db_path(tmp_path) == tmp_path / "db-tuner" / "shop.db"
    monkeypatch.setenv("DB_TUNER_DB", str(tmp_path / "x.db"))
    assert default_db_path(tmp_path) == tmp_path / "x.db"


async def test_missing_database_says_how_to_build_it(tmp_path: Path) -> None:
    ctx = ToolContext(idempotency_key="k", workflow_id="w", attempt=1, data_dir=tmp_path)
    with pytest.raises(ToolFailedError, match=r"python -m examples\.db_tuner\.data --out"):
        await call("list_tables", ctx)


# -- read tools --------------------------------------------------------------------------


async def test_list_and_describe(ctx: ToolContext) -> None:
    listed = await call("list_tables", ctx)
    tables = {t["name"]: t for t in listed["tables"]}
    assert {"customers", "products", "orders", "order_items", "reviews", "slow_query_log"} <= set(
        tables
    )
    assert tables["orders"]["rows"] == 1500
    names = {i["name"]: i["origin"] for i in tables["products"]["indexes"]}
    assert names == {"idx_products_legacy_sku": "c", "sqlite_autoindex_products_1": "u"}
    described = await call("describe_table", ctx, table="orders")
    assert {"name": "customer_id", "type": "INTEGER"} in described["columns"]
    with pytest.raises(ToolInputError, match="known tables: customers"):
        await call("describe_table", ctx, table="nope")


async def test_every_logged_query_starts_as_a_full_scan(ctx: ToolContext) -> None:
    queries = logged_queries(ctx)
    assert len(queries) == 5
    for sql in queries:
        plan = await call("explain_query", ctx, sql=sql)
        assert plan["full_scan"], plan
    join = await call("explain_query", ctx, sql=queries[3])
    assert join["scanned_tables"] == ["reviews"]  # the plan's alias "r" mapped back


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO customers (name, email, city, created_at) VALUES ('x', 'y', 'z', 'w')",
        "UPDATE orders SET total_cents = 0",
        "DELETE FROM order_items",
        "DROP TABLE reviews",
        "CREATE TABLE evil (x)",
        "ATTACH DATABASE 'other.db' AS other",
        "PRAGMA user_version = 7",
        "PRAGMA journal_mode = WAL",
        "VACUUM INTO 'copy.db'",
    ],
)
async def test_readonly_query_refuses_writes(ctx: ToolContext, sql: str) -> None:
    snapshot = "SELECT (SELECT COUNT(*) FROM customers), (SELECT SUM(total_cents) FROM orders)"
    before = rows(ctx, snapshot), rows(ctx, "SELECT sql FROM sqlite_master")
    with pytest.raises(ToolInputError, match="read-only"):
        await call("run_readonly_query", ctx, sql=sql)
    assert (rows(ctx, snapshot), rows(ctx, "SELECT sql FROM sqlite_master")) == before
    assert rows(ctx, "PRAGMA user_version") == [(0,)]
    assert rows(ctx, "PRAGMA journal_mode") == [("delete",)]
    assert not any((Path.cwd() / name).exists() for name in ("other.db", "copy.db"))


async def test_readonly_query_returns_rows(ctx: ToolContext) -> None:
    out = await call("run_readonly_query", ctx, sql="SELECT id FROM orders ORDER BY id", limit=3)
    assert (out["columns"], out["rows"], out["truncated"]) == (["id"], [[1], [2], [3]], True)
    with pytest.raises(ToolInputError, match="one statement"):
        await call("run_readonly_query", ctx, sql="SELECT 1; SELECT 2")


async def test_time_query_reports_a_positive_median(ctx: ToolContext) -> None:
    out = await call("time_query", ctx, sql=logged_queries(ctx)[0], repeat=3)
    assert out["median_ms"] > 0 and out["runs"] == 3


# -- write tools -------------------------------------------------------------------------


async def test_create_index_is_idempotent_and_fixes_the_plans(ctx: ToolContext) -> None:
    first = await call("create_index", ctx, table="orders", columns=["customer_id"])
    again = await call("create_index", ctx, table="orders", columns=["customer_id"])
    assert (first["created"], again["created"]) == (True, False)
    assert first["index"] == again["index"] == "idx_orders_customer_id"
    for table, column in EXPECTED_INDEXES:
        await call("create_index", ctx, table=table, columns=[column])
    for sql in logged_queries(ctx):
        plan = await call("explain_query", ctx, sql=sql)
        assert not plan["full_scan"] and plan["indexes_used"], plan
    with pytest.raises(ToolInputError, match="no column nope; its columns: id"):
        await call("create_index", ctx, table="orders", columns=["nope"])
    with pytest.raises(ToolInputError, match="unknown table"):
        await call("create_index", ctx, table="orders; DROP TABLE x", columns=["id"])


async def test_drop_index(ctx: ToolContext) -> None:
    with pytest.raises(ToolInputError, match="UNIQUE constraint"):
        await call("drop_index", ctx, name="sqlite_autoindex_products_1")
    dropped = await call("drop_index", ctx, name="idx_products_legacy_sku")
    assert dropped["dropped"] and "legacy_sku" in dropped["restore_sql"]
    # A retry after a crash finds the work done instead of failing.
    assert await call("drop_index", ctx, name="idx_products_legacy_sku") == {
        "index": "idx_products_legacy_sku",
        "dropped": False,
        "reason": "absent",
    }
    assert (await call("analyze", ctx))["analyzed"]


# -- the offline policy, driven like the workflow drives a model --------------------------


def ask(purpose: str, messages: list[Message]) -> str:
    llm = LlmCall(
        purpose=purpose, agent="db-tuner", model="offline", messages=messages, max_tokens=2048
    )
    return offline_policy(llm, messages[-1].inline_text())


def plan_of(spec: AgentSpec, steps: list[StepRecord], iteration: int) -> Plan:
    plan = Plan.model_validate_json(
        ask("plan", planner_messages(spec, GOAL, steps, "", [], iteration))
    )
    assert validate_plan(plan, spec.tool_map(), spec.permissions, spec.role) == []
    return plan


def answer_of(spec: AgentSpec, steps: list[StepRecord]) -> str:
    return ask("summarize", answer_messages(spec, GOAL, steps, "", None))


def record(
    iteration: int, task_id: str, label: str, outcome: Outcome = Outcome.OK, **fields: Any
) -> StepRecord:
    return StepRecord(
        iteration=iteration,
        task_id=task_id,
        kind=TaskKind.TOOL,
        label=label,
        outcome=outcome,
        **fields,
    )


async def run_task(
    spec: AgentSpec, task: Task, ctx: ToolContext, iteration: int, approve: bool, fail: set[str]
) -> StepRecord:
    tool = spec.tool(task.tool or "")
    assert tool is not None
    label = tool.describe_call(task.args)
    step = record(iteration, task.id, label)
    if tool.needs_approval and not approve:
        return step.model_copy(update={"outcome": Outcome.DENIED, "why": "rejected by dba"})
    if task.id.split("-", 1)[1] in fail:
        return step.model_copy(update={"outcome": Outcome.HARD, "why": "tool_failed: injected"})
    try:
        output = json.loads(json.dumps(await call(tool.name, ctx, **task.args)))
    except (ToolInputError, ToolFailedError) as err:
        return step.model_copy(update={"outcome": Outcome.HARD, "why": str(err)})
    text = json.dumps(output, sort_keys=True)
    assert len(text) <= 4096, f"{label} is over the inline limit: the planner sees a preview"
    failures = deterministic_check(output, task.success_criteria).failures
    outcome = Outcome.SOFT if failures else Outcome.OK
    return step.model_copy(update={"outcome": outcome, "output": output})


async def execute(
    spec: AgentSpec,
    plan: Plan,
    ctx: ToolContext,
    iteration: int,
    approve: bool = True,
    fail: frozenset[str] = frozenset(),
) -> list[StepRecord]:
    done: list[StepRecord] = []
    for wave in ready_waves(plan.tasks):
        done += await asyncio.gather(
            *(run_task(spec, t, ctx, iteration, approve, set(fail)) for t in wave)
        )
        if any(s.outcome in FAILED for s in done):
            break
    return done


def tools_of(plan: Plan) -> list[str]:
    return [t.tool or "" for t in plan.tasks]


async def test_policy_walks_the_stages(spec: AgentSpec, ctx: ToolContext) -> None:
    steps: list[StepRecord] = []
    plan = plan_of(spec, steps, 1)  # (a) nothing known
    assert sorted(tools_of(plan)) == ["list_tables", "run_readonly_query"]
    assert not plan.done and all(not t.depends_on for t in plan.tasks)
    steps += await execute(spec, plan, ctx, 1)
    plan = plan_of(spec, steps, 2)  # (b) measure before
    assert sorted(tools_of(plan)) == ["explain_query"] * 5 + ["time_query"] * 5
    steps += await execute(spec, plan, ctx, 2)
    plan = plan_of(spec, steps, 3)  # (c) index what the plans scan
    targets = {
        (t.args["table"], t.args["columns"][0]) for t in plan.tasks if t.tool == "create_index"
    }
    assert targets == EXPECTED_INDEXES
    analyze = next(t for t in plan.tasks if t.tool == "analyze")
    assert len(analyze.depends_on) == 5
    steps += await execute(spec, plan, ctx, 3)
    plan = plan_of(spec, steps, 4)  # (d) measure after, propose the unused index's drop
    drop = next(t for t in plan.tasks if t.tool == "drop_index")
    assert drop.args == {"name": "idx_products_legacy_sku"} and drop.confidence < 0.5
    assert len(drop.depends_on) == 10 and plan.done
    steps += await execute(spec, plan, ctx, 4)
    plan = plan_of(spec, steps, 5)  # (e)
    assert plan.tasks == [] and plan.done
    ids = [s.task_id for s in steps]
    assert len(ids) == len(set(ids))


async def test_policy_never_repeats_a_failed_or_denied_task(
    spec: AgentSpec, ctx: ToolContext
) -> None:
    steps: list[StepRecord] = []
    for i in (1, 2):
        steps += await execute(spec, plan_of(spec, steps, i), ctx, i)
    steps += await execute(
        spec, plan_of(spec, steps, 3), ctx, 3, fail=frozenset({"index-customers-email"})
    )
    plan = plan_of(spec, steps, 4)
    assert not any(t.args.get("table") == "customers" for t in plan.tasks)
    assert "analyze" in tools_of(plan)  # its wave was cut short by the failure
    steps += await execute(spec, plan, ctx, 4, approve=False)
    assert steps[-1].outcome is Outcome.DENIED
    final = plan_of(spec, steps, 5)
    assert final.tasks == [] and final.done
    report = answer_of(spec, steps)
    assert "idx_products_legacy_sku: kept; the drop was refused: rejected by dba" in report
    assert "create_index(customers, …): hard: tool_failed: injected" in report


async def test_policy_stops_when_the_database_is_missing(spec: AgentSpec, tmp_path: Path) -> None:
    ctx = ToolContext(idempotency_key="k", workflow_id="w", attempt=1, data_dir=tmp_path)
    steps = await execute(spec, plan_of(spec, [], 1), ctx, 1)
    assert plan_of(spec, steps, 2).tasks == []
    assert "python -m examples.db_tuner.data --out" in answer_of(spec, steps)


def test_policy_does_not_loop_on_an_output_it_cannot_read(spec: AgentSpec) -> None:
    # An output over the inline limit reaches the prompt as a preview only.
    ref = PayloadRef(key="k", size_bytes=9000, preview='{"tables": [{"name": "cust…')
    steps = [
        record(1, "i1-list_tables", "list_tables()", output_ref=ref),
        record(1, "i1-slow_log", "run_readonly_query(…)", Outcome.DENIED, why="no"),
    ]
    plan = plan_of(spec, steps, 2)
    assert plan.tasks == [] and plan.done
    assert "could not be inspected" in answer_of(spec, steps)


async def test_offline_run_puts_every_slow_query_on_an_index(
    spec: AgentSpec, ctx: ToolContext
) -> None:
    generate(default_db_path(ctx.data_dir), scale=0.2)
    steps: list[StepRecord] = []
    for iteration in range(1, spec.budget.max_iterations + 1):
        plan = plan_of(spec, steps, iteration)
        if not plan.tasks:
            break
        new = await execute(spec, plan, ctx, iteration)
        steps += new
        if plan.done and not any(s.outcome in FAILED for s in new):
            break
    times: dict[str, list[float]] = {}
    for s in steps:
        if s.label.startswith("time_query"):
            times.setdefault(s.output["sql"], []).append(s.output["median_ms"])
    assert set(times) == set(logged_queries(ctx))
    for sql, timings in times.items():
        assert len(timings) == 2, sql  # timed before and after; speed itself is not asserted
        query_plan = [r[3] for r in rows(ctx, f"EXPLAIN QUERY PLAN {sql}")]
        assert not [p for p in query_plan if p.startswith("SCAN ") and "INDEX" not in p], query_plan
    assert not rows(ctx, "SELECT 1 FROM sqlite_master WHERE name = 'idx_products_legacy_sku'")
    report = answer_of(spec, steps)
    assert report.count("x faster") + report.count("x slower") == 5
    assert "idx_products_legacy_sku: dropped" in report


def test_plugin_and_spec(spec: AgentSpec) -> None:
    assert PLUGIN.name == spec.name == "db-tuner"
    assert {t.name for t in spec.tools} == {
        "list_tables",
        "describe_table",
        "explain_query",
        "run_readonly_query",
        "time_query",
        "create_index",
        "drop_index",
        "analyze",
    }
    assert [t.name for t in spec.tools if t.needs_approval] == ["drop_index"]
    for tool in spec.tools:
        assert spec.permissions.decide("agent", tool.name, "orders") is Effect.ALLOW
    assert spec.permissions.decide("agent", "drop_index", "sqlite_autoindex_x_1") is Effect.DENY
    assert spec.permissions.decide("intern", "list_tables") is Effect.DENY
    assert spec.unpriced_models() == ["gpt-4o-mini"]  # priced by the client's catalog
