"""MCP tool servers an agent names, and how their tools become tools of a run.

An `McpServerSpec` says how a worker reaches a server (a stdio command, or a streamable
HTTP URL with headers) and how far the run trusts what the server says about its tools.
Secret header values never appear here: the spec names the worker's environment variable
that holds each one, so the spec (recorded in every run's history) carries no secret.

When a run starts, its worker lists each server's tools (`McpListedTool`) and turns them
into `ToolSpec`s (`tools_of`): the input schema becomes the argument schema (checked first,
see `mcp_schema`), the annotations become the side effect (read-only -> ``read``,
destructive -> ``irreversible``, so approval by default; otherwise ``write``) and the
retry policy, and the spec's per-tool `McpToolOverride` wins over anything the server
claims. Annotations are hints from a server the agent does not control: a server that
says nothing about a tool that is not read-only is taken at the MCP default, destructive.
"""

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from durable_agents._domain.mcp_schema import schema_problems
from durable_agents._domain.tools import RetrySpec, SideEffect, ToolSpec

# The `_meta` key under which every call carries its idempotency key.
IDEMPOTENCY_META_KEY = "durable-agents/idempotency-key"
# Separates a server's name from its tool's in the run's tool names: ``notes__add_note``.
NAME_SEPARATOR = "__"
MAX_DESCRIPTION_CHARS = 2_000
# A single call that is not idempotent (and whose server ignores idempotency keys) is
# attempted once: a retry could repeat its effect.
ONCE = RetrySpec(max_attempts=1)


class McpToolOverride(BaseModel):
    """What the agent decides about one of a server's tools, whatever the server says."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    deny: bool = Field(default=False, description="Never offered to the planner, never called.")
    description: str | None = Field(
        default=None, description="Replaces the server's description (which the planner reads)."
    )
    side_effect: SideEffect | None = None
    requires_approval: bool | None = None
    critical: bool | None = None
    resource_arg: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    retry: RetrySpec | None = None
    cost_usd: float | None = Field(default=None, ge=0)
    task_queue: str | None = None


class McpServerSpec(BaseModel):
    """One MCP server: how the worker reaches it, and what the agent allows of it."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(
        pattern=r"^[a-z][a-z0-9]{0,15}$",
        description="Prefix of its tools in the run: a tool 'add' of server 'notes' is "
        "'notes__add'.",
    )
    command: list[str] = Field(
        default_factory=list, description="stdio: the command line that starts the server."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="stdio: environment of the server (not secret)."
    )
    env_from: dict[str, str] = Field(
        default_factory=dict,
        description="stdio: server variable -> the worker's environment variable holding "
        "its (secret) value.",
    )
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    headers: dict[str, str] = Field(
        default_factory=dict, description="HTTP headers sent as written (not secret)."
    )
    secret_headers: dict[str, str] = Field(
        default_factory=dict,
        description="Header -> the worker's environment variable holding its value.",
    )
    honours_idempotency_key: bool = Field(
        default=False,
        description="The server applies a call's effect once per idempotency key, so "
        "every tool may be retried (otherwise only idempotent and read-only ones are).",
    )
    tools: dict[str, McpToolOverride] = Field(
        default_factory=dict, description="Per tool (by its MCP name): the agent's overrides."
    )
    defaults: McpToolOverride = Field(
        default_factory=McpToolOverride, description="Applied to every tool, under `tools`."
    )
    max_tools: int = Field(default=64, ge=1, le=512)
    max_schema_bytes: int = Field(default=16_384, ge=64, le=1_000_000)
    connect_timeout_s: float = Field(
        default=30.0, gt=0, description="To connect, and to list the server's tools."
    )

    @model_validator(mode="after")
    def _one_transport(self) -> "McpServerSpec":
        if bool(self.command) == bool(self.url):
            raise ValueError(f"MCP server '{self.name}': set either command (stdio) or url")
        if self.url and (self.env or self.env_from):
            raise ValueError(f"MCP server '{self.name}': env applies to stdio servers only")
        if self.command and (self.headers or self.secret_headers):
            raise ValueError(f"MCP server '{self.name}': headers apply to HTTP servers only")
        both = sorted(set(map(str.lower, self.headers)) & set(map(str.lower, self.secret_headers)))
        if both:
            raise ValueError(f"MCP server '{self.name}': headers set twice: {', '.join(both)}")
        return self

    @property
    def transport(self) -> str:
        """``stdio`` or ``http``."""
        return "stdio" if self.command else "http"

    def tool_name(self, mcp_name: str) -> str:
        """The name of the server's tool ``mcp_name`` in a run (may be invalid: checked)."""
        return f"{self.name}{NAME_SEPARATOR}{_slug(mcp_name)}"

    def override(self, mcp_name: str) -> McpToolOverride:
        """The agent's settings for ``mcp_name``: its own over the server's defaults."""
        own = self.tools.get(mcp_name)
        if own is None:
            return self.defaults
        merged = {
            **self.defaults.model_dump(exclude_unset=True),
            **own.model_dump(exclude_unset=True),
        }
        return McpToolOverride.model_validate(merged)


class McpListedTool(BaseModel):
    """A tool as a server lists it (``tools/list``), reduced to what a run uses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    input_schema: Any = None
    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None


class McpTools(BaseModel):
    """A server's tools as a run sees them, and the ones left out (with why)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tools: list[ToolSpec] = []
    left_out: list[str] = []


def tools_of(server: McpServerSpec, listed: list[McpListedTool]) -> McpTools:
    """The run's tools for ``listed``; unusable ones are left out with the reason."""
    tools: list[ToolSpec] = []
    left_out: list[str] = []
    seen: set[str] = set()
    for tool in listed:
        why = _unusable(server, tool, seen, len(tools))
        if why is not None:
            if why:  # an empty reason: denied by the agent, nothing to report
                left_out.append(f"{server.name}/{tool.name[:80]}: {why}")
            continue
        seen.add(server.tool_name(tool.name))
        tools.append(tool_spec(server, tool))
    return McpTools(tools=tools, left_out=left_out)


def _unusable(server: McpServerSpec, tool: McpListedTool, seen: set[str], count: int) -> str | None:
    """Why ``tool`` cannot be offered ('' when the agent denies it), else None."""
    if server.override(tool.name).deny:
        return ""
    name = server.tool_name(tool.name)
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
        return f"its name cannot be a tool name here ({name[:80]!r})"
    if name in seen:
        return f"another tool of the server is also called {name}"
    if count >= server.max_tools:
        return f"the server offers more than max_tools={server.max_tools} tools"
    problems = schema_problems(tool.input_schema, server.max_schema_bytes)
    if problems:
        return "its input schema is refused: " + "; ".join(problems[:3])
    return None


def tool_spec(server: McpServerSpec, tool: McpListedTool) -> ToolSpec:
    """The `ToolSpec` of a usable listed tool, the agent's overrides applied last."""
    over = server.override(tool.name)
    side_effect = over.side_effect or _side_effect(tool)
    retry = over.retry
    if retry is None:
        safe = side_effect is SideEffect.READ or tool.idempotent or server.honours_idempotency_key
        retry = RetrySpec() if safe else ONCE
    # One line: a server's text cannot start sections of its own in the planner's prompt.
    description = " ".join((over.description or tool.description).split())
    description = description or f"{tool.name} (from MCP server {server.name})"
    fields: dict[str, Any] = {
        "name": server.tool_name(tool.name),
        "description": description[:MAX_DESCRIPTION_CHARS],
        "args_schema": tool.input_schema,
        "side_effect": side_effect,
        "retry": retry,
    }
    for field in ("requires_approval", "critical", "resource_arg", "timeout_s", "cost_usd"):
        value = getattr(over, field)
        if value is not None:
            fields[field] = value
    if over.task_queue is not None:
        fields["task_queue"] = over.task_queue
    return ToolSpec(**fields)


def _side_effect(tool: McpListedTool) -> SideEffect:
    if tool.read_only:
        return SideEffect.READ
    if tool.destructive is False:
        return SideEffect.WRITE
    return SideEffect.IRREVERSIBLE  # MCP's default for a tool that is not read-only


def _slug(mcp_name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", mcp_name.lower())


def split_tool_name(name: str) -> tuple[str, str] | None:
    """``(server, slug)`` of a run's MCP tool name, or None for any other tool."""
    server, sep, slug = name.partition(NAME_SEPARATOR)
    if not sep or not server or not slug:
        return None
    return server, slug
