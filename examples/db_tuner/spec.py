"""The db-tuner's `AgentSpec`: prompt, tools, model, budget, permissions and approvals."""

from durable_agents import (
    AgentSpec,
    ApprovalPolicy,
    Budget,
    Effect,
    LoopLimits,
    ModelRouting,
    OnTimeout,
    PermissionMatrix,
    PermissionRule,
)
from examples.db_tuner.tools import TOOLS

ROLE = "agent"

SYSTEM_PROMPT = """You are a careful database performance engineer working on a SQLite database.
Goal: make the queries in slow_query_log faster without changing any data.
Work in this order:
1. Read the schema (list_tables) and the slow queries
   (run_readonly_query on slow_query_log).
2. For every slow query, explain_query and time_query it BEFORE changing anything.
3. Where a plan scans a whole table filtered on a column, create_index on that column
   (one index per table and column, named by default), then analyze.
4. Explain and time every slow query again and compare with step 2.
5. An index that no slow query uses may be proposed for drop_index, with low confidence:
   a person approves every drop, and a refusal is final for this run.
Rules: never write data; run_readonly_query refuses writes. Never repeat a task that
failed or was refused; choose another step. Task ids must be unique across the run.
Report every query's time before and after, the indexes created and what was dropped."""


def build_spec() -> AgentSpec:
    """The full db-tuner spec (prices are filled in by the client's catalog)."""
    rules = [
        PermissionRule(role=ROLE, tool=spec.name, effect=Effect.ALLOW) for spec in TOOLS.specs()
    ]
    # Defence in depth: SQLite's own indexes are never the agent's to touch.
    rules.append(PermissionRule(tool="drop_index", resource="sqlite_*", effect=Effect.DENY))
    return AgentSpec(
        name="db-tuner",
        description="Finds the slow queries of a SQLite database and indexes them; "
        "measures before and after; drops unused indexes only with approval.",
        system_prompt=SYSTEM_PROMPT,
        role=ROLE,
        tools=TOOLS.specs(),
        models=ModelRouting.single("gpt-4o-mini", max_tokens=2048),
        budget=Budget(max_cost_usd=0.50, max_iterations=8),
        # drop_index is irreversible, so it waits for a person; silence means no.
        approvals=ApprovalPolicy(deadline_s=600.0, on_timeout=OnTimeout.DENY),
        permissions=PermissionMatrix(rules=rules, default=Effect.DENY),
        # A whole tuning pass is ~30 steps; the planner must see all of them to compare
        # each query's "before" with its "after".
        limits=LoopLimits(observation_window=40),
    )
