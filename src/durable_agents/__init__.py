"""durable-agents: AI agents as durable Temporal workflows, with human checkpoints and
budgets that cannot be overspent.

This module is the public API; ``durable_agents.testing`` is the other public module.
Everything under ``durable_agents._*`` is private and may change without notice.

Writing an agent (see docs/guide.md)::

    from durable_agents import AgentPlugin, AgentSpec, ToolContext, ToolRegistry, SideEffect

    tools = ToolRegistry()

    @tools.tool(side_effect=SideEffect.READ)
    async def lookup(args: LookupArgs, ctx: ToolContext) -> dict[str, str]:
        \"\"\"What the planner reads about this tool.\"\"\"

    PLUGIN = AgentPlugin(name="my-agent", build_spec=build_spec, tools=tools)

Starting runs and answering approvals::

    client = await AgentsClient.connect()
    run = await client.start_run("my-agent", "the goal")

Names are imported on first use, so ``import durable_agents`` stays cheap (and the
workflow sandbox, which imports this package, never loads the client or the tools).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the private module that defines it
_EXPORTS: dict[str, str] = {
    # an agent: its spec, its plugin, the policies it runs under
    "AgentSpec": "_domain.spec",
    "AgentPlugin": "_activities.plugins",
    "ModelRouting": "_domain.spec",
    "ModelRoute": "_domain.spec",
    "LoopLimits": "_domain.spec",
    "RequestBounds": "_domain.spec",
    "Budget": "_domain.budget",
    "BudgetOverride": "_domain.budget",
    "ApprovalPolicy": "_domain.approvals",
    "OnTimeout": "_domain.approvals",
    "PermissionMatrix": "_domain.permissions",
    "PermissionRule": "_domain.permissions",
    "Effect": "_domain.permissions",
    # tools: the registry and decorator, the context, the contract, the typed errors
    "ToolRegistry": "_activities.tool_api",
    "ToolOptions": "_activities.tool_api",
    "ToolContext": "_activities.tool_api",
    "ToolInputError": "_activities.tool_api",
    "ToolUnavailable": "_activities.tool_api",
    "ToolFailedError": "_activities.tool_api",
    "ToolSpec": "_domain.tools",
    "SideEffect": "_domain.tools",
    "RetrySpec": "_domain.tools",
    # tools from MCP servers: where a server is, and what the agent overrides per tool
    "McpServerSpec": "_domain.mcp",
    "McpToolOverride": "_domain.mcp",
    # the plan format the model answers in, and the offline model's inputs
    "Plan": "_domain.plan",
    "Task": "_domain.plan",
    "TaskKind": "_domain.plan",
    "PLAN_FORMAT": "_domain.prompts",
    "parse_observations": "_domain.prompts",
    "OfflinePolicy": "_activities.offline_model",
    "LlmCall": "_domain.llm",
    "Purpose": "_domain.spec",
    # running agents: the client, requests, decisions, what a run reports
    "AgentsClient": "_client.api",
    "RunHandle": "_client.api",
    "InvalidRunRequestError": "_client.api",
    "DecisionRefusedError": "_client.api",
    "RunEndedError": "_client.api",
    "NoWorkerError": "_client.api",
    "TemporalSettings": "_infra.connection",
    "Decision": "_domain.approvals",
    "DecisionAnswer": "_domain.approvals",
    "BudgetExtension": "_domain.approvals",
    "ApprovalRequest": "_domain.approvals",
    "RunStatus": "_domain.run",
    "RunView": "_domain.run",
    "RunReport": "_domain.run",
    # following a run as it happens: its event stream
    "RunEvent": "_domain.events",
    "EventKind": "_domain.events",
    "Transcript": "_domain.events",
    "InvalidOffsetError": "_client.events",
    "RunNotFoundError": "_client.events",
    # operating workers
    "WorkerSettings": "_workers.config",
    "build_worker": "_workers.build",
}

__all__ = [  # the keys of _EXPORTS (tests/test_public_api.py keeps them equal)
    "PLAN_FORMAT",
    "AgentPlugin",
    "AgentSpec",
    "AgentsClient",
    "ApprovalPolicy",
    "ApprovalRequest",
    "Budget",
    "BudgetExtension",
    "BudgetOverride",
    "Decision",
    "DecisionAnswer",
    "DecisionRefusedError",
    "Effect",
    "EventKind",
    "InvalidOffsetError",
    "InvalidRunRequestError",
    "LlmCall",
    "LoopLimits",
    "McpServerSpec",
    "McpToolOverride",
    "ModelRoute",
    "ModelRouting",
    "NoWorkerError",
    "OfflinePolicy",
    "OnTimeout",
    "PermissionMatrix",
    "PermissionRule",
    "Plan",
    "Purpose",
    "RequestBounds",
    "RetrySpec",
    "RunEndedError",
    "RunEvent",
    "RunHandle",
    "RunNotFoundError",
    "RunReport",
    "RunStatus",
    "RunView",
    "SideEffect",
    "Task",
    "TaskKind",
    "TemporalSettings",
    "ToolContext",
    "ToolFailedError",
    "ToolInputError",
    "ToolOptions",
    "ToolRegistry",
    "ToolSpec",
    "ToolUnavailable",
    "Transcript",
    "WorkerSettings",
    "build_worker",
    "parse_observations",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'durable_agents' has no attribute '{name}'")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return [*globals(), *__all__]


if TYPE_CHECKING:
    from durable_agents._activities.offline_model import OfflinePolicy
    from durable_agents._activities.plugins import AgentPlugin
    from durable_agents._activities.tool_api import (
        ToolContext,
        ToolFailedError,
        ToolInputError,
        ToolOptions,
        ToolRegistry,
        ToolUnavailable,
    )
    from durable_agents._client.api import (
        AgentsClient,
        DecisionRefusedError,
        InvalidRunRequestError,
        NoWorkerError,
        RunEndedError,
        RunHandle,
    )
    from durable_agents._domain.approvals import (
        ApprovalPolicy,
        ApprovalRequest,
        BudgetExtension,
        Decision,
        DecisionAnswer,
        OnTimeout,
    )
    from durable_agents._client.events import InvalidOffsetError, RunNotFoundError
    from durable_agents._domain.budget import Budget, BudgetOverride
    from durable_agents._domain.events import EventKind, RunEvent, Transcript
    from durable_agents._domain.llm import LlmCall
    from durable_agents._domain.mcp import McpServerSpec, McpToolOverride
    from durable_agents._domain.permissions import Effect, PermissionMatrix, PermissionRule
    from durable_agents._domain.plan import Plan, Task, TaskKind
    from durable_agents._domain.prompts import PLAN_FORMAT, parse_observations
    from durable_agents._domain.run import RunReport, RunStatus, RunView
    from durable_agents._domain.spec import (
        AgentSpec,
        LoopLimits,
        ModelRoute,
        ModelRouting,
        Purpose,
        RequestBounds,
    )
    from durable_agents._domain.tools import RetrySpec, SideEffect, ToolSpec
    from durable_agents._infra.connection import TemporalSettings
    from durable_agents._workers.build import build_worker
    from durable_agents._workers.config import WorkerSettings
