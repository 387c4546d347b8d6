"""Reading a run's MCP tool list again before its next plan.

A call that found its tool gone, or a plan with ``"refresh_tools": true``, makes the run
ask a worker (the ``refresh_mcp_tools`` activity) for its MCP servers' tools as offered
now. The answer is an event in the run's history, so replay never asks a server; the
run's own tools, its permission matrix, overrides and approval policy stay as they were
and apply to whatever tools appear. A refresh that fails (a server unreachable, a list
that cannot join the run's tools) leaves the list as it was and tells the planner why.
"""

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from durable_agents._domain import contract
from durable_agents._domain.errors import ErrorType
from durable_agents._domain.mcp_refresh import McpToolList, RefreshMcpTools, apply_refresh
from durable_agents._domain.plan import Plan
from durable_agents._workflows.model_calls import is_cancellation
from durable_agents._workflows.state import RunState

REFRESH_RETRY = RetryPolicy(
    maximum_attempts=3, non_retryable_error_types=[ErrorType.MCP_REFRESH_REFUSED]
)
Audit = Callable[..., None]


def can_refresh(state: RunState, enabled: bool) -> bool:
    """Whether this run may read its MCP tool list again (``enabled``: the patch)."""
    return enabled and state.mcp_tools is not None and bool(state.spec.mcp_servers)


def asks_for_refresh(state: RunState, enabled: bool, plan: Plan) -> bool:
    """Whether ``plan`` asks for the list again and may (then it is read before the next
    plan)."""
    if plan.refresh_tools and can_refresh(state, enabled):
        state.refresh_tools_why = "the planner asked"
        return True
    return False


async def refresh_if_wanted(state: RunState, enabled: bool, audit: Audit) -> None:
    """Read the MCP tool list again if a gone tool or the planner asked for it."""
    if state.refresh_tools_why is None:
        return
    if can_refresh(state, enabled):
        await refresh_tools(state, audit)
    state.refresh_tools_why = None


async def refresh_tools(state: RunState, audit: Audit) -> None:
    """List the run's MCP tools again and plan with them from now on."""
    why, state.refresh_tools_why = state.refresh_tools_why or "", None
    assert state.mcp_tools is not None
    spec = state.spec
    before = set(state.mcp_tools)
    ask = RefreshMcpTools(
        agent=spec.name,
        servers=spec.mcp_servers,
        own_tools=[t.name for t in spec.tools if t.name not in before],
        why=why,
    )
    # Each server may take its connect timeout to answer (twice: to connect, to list).
    timeout = timedelta(seconds=10 + 2 * sum(s.connect_timeout_s for s in spec.mcp_servers))
    try:
        listed: McpToolList = await workflow.execute_activity(
            contract.REFRESH_MCP_TOOLS,
            ask,
            result_type=McpToolList,
            start_to_close_timeout=timeout,
            retry_policy=REFRESH_RETRY,
            summary=f"list MCP tools again: {why}"[:200],
        )
    except ActivityError as err:
        if is_cancellation(err):
            raise asyncio.CancelledError("run cancelled") from err
        reason = f"{err.cause or err}"
        audit("mcp_tools_refresh_failed", actor="worker", accepted=False, detail=reason)
        state.problems.append(
            f"the MCP tool list could not be read again ({reason}); the tools listed are "
            "those read before"
        )
        return
    refreshed = apply_refresh(spec, state.mcp_tools, listed)
    state.spec, state.mcp_tools = refreshed.spec, refreshed.mcp_tools
    audit("mcp_tools_refreshed", actor="worker", detail=f"{why}: {refreshed.summary()}")
    state.problems.append(f"the MCP tool list was read again ({why}): {refreshed.summary()}")
