"""A test agent whose tools have real, countable side effects.

Every execution of a tool appends a row to an ``executions`` table of a SQLite file in
the worker's data directory, and effects are recorded in the same transaction as their
idempotency key, so tests can tell "ran twice" from "took effect twice".
"""

import asyncio
import sqlite3
import time
from pathlib import Path

from pydantic import BaseModel, Field

from durable_agents._activities.plugins import AgentPlugin
from durable_agents._activities.tool_api import (
    ToolContext,
    ToolFailedError,
    ToolInputError,
    ToolRegistry,
    ToolUnavailable,
)
from durable_agents._domain.budget import Budget
from durable_agents._domain.permissions import Effect, PermissionMatrix, PermissionRule
from durable_agents._domain.spec import AgentSpec, LlmPolicy, ModelRouting
from durable_agents._domain.tools import RetrySpec, SideEffect

TOOLS = ToolRegistry()
FAST_RETRY = RetrySpec(initial_interval_s=0.2, backoff=2.0, max_interval_s=1.0, max_attempts=3)


def ledger_path(data_dir: Path) -> Path:
    """Where the test tools keep their executions and effects."""
    return data_dir / "test-agent.sqlite"


def _connect(data_dir: Path) -> sqlite3.Connection:
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(ledger_path(data_dir), timeout=30, isolation_level=None)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS executions (tool TEXT, name TEXT, key TEXT, attempt INT,"
        " phase TEXT, at REAL)"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, name TEXT)")
    return conn


def _record(ctx: ToolContext, tool: str, name: str, phase: str) -> None:
    with _connect(ctx.data_dir) as conn:
        conn.execute(
            "INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?)",
            (tool, name, ctx.idempotency_key, ctx.attempt, phase, time.time()),
        )


def timings(data_dir: Path) -> dict[str, tuple[float, float]]:
    """(first start, last completion) wall times per effect name."""
    out: dict[str, tuple[float, float]] = {}
    with _connect(data_dir) as conn:
        for name, phase, at in conn.execute("SELECT name, phase, at FROM executions"):
            start, end = out.get(name, (float("inf"), 0.0))
            if phase == "started":
                start = min(start, at)
            else:
                end = max(end, at)
            out[name] = (start, end)
    return out


def executions(data_dir: Path, phase: str = "completed") -> list[tuple[str, str, str, int]]:
    """(tool, name, key, attempt) of every execution in ``phase``, in order."""
    if not ledger_path(data_dir).exists():
        return []
    with _connect(data_dir) as conn:
        rows = conn.execute(
            "SELECT tool, name, key, attempt FROM executions WHERE phase = ? ORDER BY rowid",
            (phase,),
        ).fetchall()
    return [(str(a), str(b), str(c), int(d)) for a, b, c, d in rows]


def effects(data_dir: Path) -> list[str]:
    """Names of effects that took place (once per idempotency key)."""
    if not ledger_path(data_dir).exists():
        return []
    with _connect(data_dir) as conn:
        return [str(r[0]) for r in conn.execute("SELECT name FROM effects ORDER BY rowid")]


class EffectArgs(BaseModel):
    """Arguments of the effect tools."""

    name: str = Field(min_length=1)
    seconds: float = Field(default=0.0, ge=0, le=60)


@TOOLS.tool(side_effect=SideEffect.WRITE, retry=FAST_RETRY, heartbeat_timeout_s=2.0, timeout_s=90)
async def record_effect(args: EffectArgs, ctx: ToolContext) -> dict[str, object]:
    """Record a named side effect exactly once per idempotency key (optionally slowly)."""
    return await _record_effect("record_effect", args, ctx)


@TOOLS.tool(side_effect=SideEffect.WRITE, retry=FAST_RETRY, timeout_s=90, local=True)
async def record_local(args: EffectArgs, ctx: ToolContext) -> dict[str, object]:
    """Record a named side effect exactly once per idempotency key (a local activity)."""
    return await _record_effect("record_local", args, ctx)


class SlowArgs(BaseModel):
    """Arguments of the tool that does not heartbeat itself."""

    name: str = Field(min_length=1)
    seconds: float = Field(default=0.0, ge=0, le=600)


@TOOLS.tool(side_effect=SideEffect.WRITE, retry=FAST_RETRY, timeout_s=3600)
async def record_slowly(args: SlowArgs, ctx: ToolContext) -> dict[str, object]:
    """Record a named side effect after ``seconds`` of work that never heartbeats itself
    (its worker heartbeats for it, within the default heartbeat timeout)."""
    _record(ctx, "record_slowly", args.name, "started")
    await asyncio.sleep(args.seconds)
    return _apply(ctx, "record_slowly", args.name)


async def _record_effect(tool: str, args: EffectArgs, ctx: ToolContext) -> dict[str, object]:
    _record(ctx, tool, args.name, "started")
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        ctx.heartbeat()
        await asyncio.sleep(0.1)
    return _apply(ctx, tool, args.name)


def _apply(ctx: ToolContext, tool: str, name: str) -> dict[str, object]:
    """The effect, once per idempotency key, in one transaction with the check."""
    with _connect(ctx.data_dir) as conn:
        conn.execute("BEGIN IMMEDIATE")
        done = conn.execute(
            "SELECT 1 FROM effects WHERE key = ?", (ctx.idempotency_key,)
        ).fetchone()
        if not done:
            conn.execute("INSERT INTO effects VALUES (?, ?)", (ctx.idempotency_key, name))
        conn.execute("COMMIT")
    _record(ctx, tool, name, "completed")
    return {"name": name, "applied": not done}


@TOOLS.tool(side_effect=SideEffect.IRREVERSIBLE, retry=FAST_RETRY)
async def launch_rocket(args: EffectArgs, ctx: ToolContext) -> dict[str, object]:
    """An irreversible effect: needs a human's approval before each call."""
    _record(ctx, "launch_rocket", args.name, "completed")
    return {"launched": args.name}


class FlakyArgs(BaseModel):
    """Arguments of the flaky tool."""

    name: str
    failures: int = Field(default=1, ge=0, description="Attempts that fail before success.")


@TOOLS.tool(retry=FAST_RETRY, circuit_threshold=0)
async def flaky(args: FlakyArgs, ctx: ToolContext) -> dict[str, object]:
    """Fails with ToolUnavailable for the first `failures` attempts, then succeeds."""
    _record(ctx, "flaky", args.name, "started")
    if ctx.attempt <= args.failures:
        raise ToolUnavailable(f"{args.name}: service busy (attempt {ctx.attempt})")
    _record(ctx, "flaky", args.name, "completed")
    return {"name": args.name, "attempt": ctx.attempt}


class FragileArgs(BaseModel):
    """Arguments of the fragile tool."""

    name: str
    fail: bool = False


@TOOLS.tool(retry=RetrySpec(max_attempts=1), circuit_threshold=2, circuit_reset_s=1.5)
async def fragile(args: FragileArgs, ctx: ToolContext) -> dict[str, object]:
    """A tool behind a circuit breaker: 2 consecutive failures open it for 1.5 s."""
    _record(ctx, "fragile", args.name, "started")
    if args.fail:
        raise ToolUnavailable(f"{args.name}: backend down")
    return {"name": args.name}


class CheckArgs(BaseModel):
    """Arguments of the validating tool."""

    value: int


@TOOLS.tool(retry=FAST_RETRY)
async def check_value(args: CheckArgs, ctx: ToolContext) -> dict[str, object]:
    """Accepts only even values (odd ones are a ToolInputError, 13 a ToolFailedError)."""
    _record(ctx, "check_value", str(args.value), "started")
    if args.value == 13:
        raise ToolFailedError("13 is unlucky")
    if args.value % 2:
        raise ToolInputError(f"value must be even, got {args.value}")
    return {"value": args.value, "even": True}


def build_spec() -> AgentSpec:
    """The test agent: every tool allowed, small limits, fast retries."""
    return AgentSpec(
        name="test-agent",
        description="Tools with countable side effects, for the test suite.",
        system_prompt="You are a test agent. Follow the plan format exactly.",
        tools=TOOLS.specs(),
        models=ModelRouting.single("gpt-4o-mini", max_tokens=512),
        budget=Budget(max_cost_usd=1.0, max_iterations=6),
        permissions=PermissionMatrix(rules=[PermissionRule(effect=Effect.ALLOW)]),
        llm=LlmPolicy(
            timeout_s=5.0,
            retry=RetrySpec(
                initial_interval_s=0.2, backoff=2.0, max_interval_s=2.0, max_attempts=4
            ),
        ),
    )


PLUGIN = AgentPlugin(name="test-agent", build_spec=build_spec, tools=TOOLS)
