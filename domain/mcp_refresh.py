"""Reading a run's MCP tool list again mid-run, and what a worker reports of its servers.

A run plans with the MCP tools listed when it started. When a call finds its tool gone,
or the planner asks (``"refresh_tools": true`` in a plan), the run asks a worker to list
its servers' tools again (`RefreshMcpTools`, answered with `McpToolList`: the same
`tools_of` checks and overrides as at start) and records the answer in its history.
`apply_refresh` then replaces only the run's MCP tools: its own (Python) tools stay as
they were, a listed tool that is not of one of the run's servers is ignored, and a name
one of its own tools has is never taken, so a server can neither add a Python tool nor
change one.
"""

from pydantic import BaseModel, ConfigDict, Field

from durable_agents._domain.mcp import McpServerSpec, split_tool_name
from durable_agents._domain.spec import AgentSpec
from durable_agents._domain.tools import SideEffect, ToolSpec


class RefreshMcpTools(BaseModel):
    """A run asks its worker for its MCP servers' tools as offered now."""

    model_config = ConfigDict(extra="forbid")

    agent: str
    servers: list[McpServerSpec]
    own_tools: list[str] = Field(
        default_factory=list, description="The run's tools that are not MCP tools."
    )
    why: str = ""


class McpToolList(BaseModel):
    """The run's MCP tools as the worker lists them now, and the ones left out (why)."""

    model_config = ConfigDict(extra="forbid")

    tools: list[ToolSpec] = []
    left_out: list[str] = []


class RefreshedTools(BaseModel):
    """The run's spec after a refresh, and what changed."""

    spec: AgentSpec
    mcp_tools: list[str]
    added: list[str]
    removed: list[str]

    def summary(self) -> str:
        """One line for the audit trail and the planner."""
        added = ", ".join(self.added) or "none"
        removed = ", ".join(self.removed) or "none"
        return f"added: {added}; removed: {removed}"


def apply_refresh(spec: AgentSpec, mcp_before: list[str], listed: McpToolList) -> RefreshedTools:
    """``spec`` with its MCP tools (``mcp_before``) replaced by ``listed``'s."""
    before = set(mcp_before)
    own = [t for t in spec.tools if t.name not in before]
    taken = {t.name for t in own}
    servers = {s.name: s.max_tools for s in spec.mcp_servers}
    per_server: dict[str, int] = {}
    fresh: list[ToolSpec] = []
    for tool in listed.tools:
        parts = split_tool_name(tool.name)
        if parts is None or parts[0] not in servers or tool.name in taken:
            continue
        if per_server.get(parts[0], 0) >= servers[parts[0]]:
            continue
        per_server[parts[0]] = per_server.get(parts[0], 0) + 1
        taken.add(tool.name)
        fresh.append(tool)
    names = [t.name for t in fresh]
    return RefreshedTools(
        spec=spec.model_copy(update={"tools": [*own, *fresh]}),
        mcp_tools=names,
        added=sorted(set(names) - before),
        removed=sorted(before - set(names)),
    )


class McpToolSummary(BaseModel):
    """One tool of a server, as ``agentctl agents`` shows it."""

    name: str
    side_effect: SideEffect
    needs_approval: bool


class McpServerSummary(BaseModel):
    """One MCP server of an agent: where it is and, when it answered, its tools."""

    name: str
    transport: str
    reachable: bool
    problem: str | None = None
    tools: list[McpToolSummary] = []
    left_out: list[str] = []
