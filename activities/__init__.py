"""All I/O of durable-agents: model calls, planning, the tool registry and built-in tools."""

from durable_agents._activities.agent_activities import AgentActivities
from durable_agents._activities.tool_api import (
    RegisteredTool,
    ToolContext,
    ToolFailedError,
    ToolInputError,
    ToolRegistry,
    ToolUnavailable,
)

__all__ = [
    "AgentActivities",
    "RegisteredTool",
    "ToolContext",
    "ToolFailedError",
    "ToolInputError",
    "ToolRegistry",
    "ToolUnavailable",
]
