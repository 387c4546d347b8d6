"""A worker's MCP tools: listed into a run's spec when it starts, called as its tools.

`McpToolbox.with_tools` is called by the ``resolve_agent`` activity: each server the
agent names is asked for its tools, and the tools the run may use are added to the spec
the run records, so the run plans with that list and replay never asks a live server;
``refresh_mcp_tools`` lists them again mid-run with the same checks (`tools_of`), and
``describe_agents`` shows them (`describe`). `McpToolbox.tool` gives ``invoke_tool`` a
`RegisteredTool` for a run's MCP tool name: the call then goes through the same path as
a Python tool (its breaker, heartbeat, error mapping and payload store). At call time the
tool is looked up again on the server: a tool the server no longer offers (or the agent
now denies) fails with `McpToolGone`, which the planner reads (and which makes the run
list its tools again), never a call to something else. A tool named like a Python tool
of any plugin the worker loaded is refused, never shadowed.
"""

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from durable_agents._activities.mcp_connection import (
    McpConfigError,
    McpConnection,
    McpConnectionLost,
)
from durable_agents._activities.tool_api import (
    RegisteredTool,
    ToolContext,
    ToolFailedError,
    ToolInputError,
    ToolUnavailable,
)
from durable_agents._domain.mcp import McpListedTool, McpServerSpec, split_tool_name, tools_of
from durable_agents._domain.mcp_refresh import McpServerSummary, McpToolList, McpToolSummary
from durable_agents._domain.schema_check import check
from durable_agents._domain.spec import AgentSpec
from durable_agents._domain.tools import ToolSpec

ServerLookup = Callable[[str], McpServerSpec | None]
DEFAULT_CALL_TIMEOUT_S = 30.0
# A call's text beyond this is cut (the rest of a runaway answer is not an observation).
MAX_OUTPUT_CHARS = 1_000_000


class McpArgs(BaseModel):
    """A call's arguments as planned: checked against the server's schema by the tool."""

    model_config = ConfigDict(extra="allow")


class McpToolsRefused(ValueError):  # noqa: N818 - the run's answer
    """An agent's MCP tools cannot be added to its run; the message says why."""


class McpToolGone(ToolInputError):  # noqa: N818 - names what happened
    """The server no longer offers a tool the run planned with (or the agent denies it)."""


def _refuse_taken(
    agent: str, server: McpServerSpec, tools: list[ToolSpec], taken: set[str]
) -> None:
    clash = taken & {t.name for t in tools}
    if clash:
        raise McpToolsRefused(
            f"agent '{agent}': MCP server '{server.name}' offers tools named like tools it "
            f"already has: {', '.join(sorted(clash))}"
        )


class McpToolbox:
    """The MCP connections of one worker, shared by every run it serves."""

    def __init__(
        self,
        servers: ServerLookup,
        environ: Mapping[str, str] | None = None,
        python_tools: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self._servers = servers
        self._environ = environ
        # Python tool name -> the plugin that registers it (every plugin of the worker).
        self._python_tools = python_tools or dict
        self._connections: dict[str, McpConnection] = {}

    def connection(self, server: McpServerSpec) -> McpConnection:
        """The live connection to ``server`` (one per server definition)."""
        key = server.model_dump_json()
        conn = self._connections.get(key)
        if conn is None:
            conn = self._connections[key] = McpConnection(server, self._environ)
        return conn

    async def with_tools(self, spec: AgentSpec) -> tuple[AgentSpec, list[str]]:
        """``spec`` with the tools of its MCP servers added (as they are offered now), and
        the names of those tools.

        Raises `McpConnectionLost` when a server cannot be reached (worth retrying) and
        `McpToolsRefused` when its tools cannot join the agent's (a name taken twice).
        """
        if not spec.mcp_servers:
            return spec, []
        found = await self.tools_of(spec.name, spec.mcp_servers, {t.name for t in spec.tools})
        names = [t.name for t in found.tools]
        return spec.model_copy(update={"tools": [*spec.tools, *found.tools]}), names

    async def tools_of(
        self, agent: str, servers: list[McpServerSpec], own_tools: set[str]
    ) -> McpToolList:
        """The tools ``servers`` offer now, checked as for a run of ``agent`` whose own
        tools are ``own_tools``: a name taken by one of them, or by a Python tool of any
        plugin this worker loaded, refuses the list (`McpToolsRefused`)."""
        tools: list[ToolSpec] = []
        left_out: list[str] = []
        for server in servers:
            try:
                listed = await self.connection(server).list_tools()
            except McpConfigError as err:
                raise McpToolsRefused(str(err)) from None
            found = tools_of(server, listed)
            for why in found.left_out:
                _log_warning(f"MCP tool left out of agent '{agent}': {why}")
            _refuse_taken(agent, server, found.tools, own_tools | {t.name for t in tools})
            self._refuse_python_names(agent, server, found.tools)
            tools += found.tools
            left_out += found.left_out
        return McpToolList(tools=tools, left_out=left_out)

    def _refuse_python_names(
        self, agent: str, server: McpServerSpec, tools: list[ToolSpec]
    ) -> None:
        python = self._python_tools()
        clash = sorted(t.name for t in tools if t.name in python)
        if clash:
            owners = ", ".join(f"{n} (plugin '{python[n]}')" for n in clash)
            raise McpToolsRefused(
                f"agent '{agent}': MCP server '{server.name}' offers tools named like Python "
                f"tools this worker runs: {owners}; rename the server (McpServerSpec.name) "
                "or deny those tools (tools={...: McpToolOverride(deny=True)})"
            )

    async def describe(self, server: McpServerSpec, timeout_s: float) -> McpServerSummary:
        """What ``server`` offers now, for ``agentctl agents`` (never raises)."""
        summary = McpServerSummary(name=server.name, transport=server.transport, reachable=False)
        try:  # the connection's own timeouts apply too (to connect, to list)
            async with asyncio.timeout(timeout_s):
                listed = await self.connection(server).list_tools()
        except McpConfigError as err:
            return summary.model_copy(update={"reachable": True, "problem": str(err)})
        except McpConnectionLost as err:
            return summary.model_copy(update={"problem": f"unreachable: {err}"})
        except TimeoutError:
            problem = f"unreachable: no answer within {timeout_s:.0f}s"
            return summary.model_copy(update={"problem": problem})
        found = tools_of(server, listed)
        tools = [
            McpToolSummary(name=t.name, side_effect=t.side_effect, needs_approval=t.needs_approval)
            for t in found.tools
        ]
        return summary.model_copy(
            update={"reachable": True, "tools": tools, "left_out": found.left_out}
        )

    def tool(self, name: str) -> RegisteredTool | None:
        """The MCP tool a run calls ``name``, or None when no loaded server has it."""
        parts = split_tool_name(name)
        server = self._servers(parts[0]) if parts else None
        if server is None:
            return None

        async def call(args: McpArgs, ctx: ToolContext) -> Any:
            return await self._call(server, name, args.model_dump(), ctx)

        placeholder = ToolSpec(name=name, description=f"MCP tool of server {server.name}")
        return RegisteredTool(spec=placeholder, args_model=McpArgs, fn=call)

    async def _call(
        self, server: McpServerSpec, name: str, args: dict[str, Any], ctx: ToolContext
    ) -> Any:
        conn = self.connection(server)
        tool = await self._offered(conn, name)
        problems = check(args, _schema(tool))
        if problems:
            raise ToolInputError(f"invalid arguments for {name}: " + "; ".join(problems[:5]))
        try:
            result = await conn.call(tool.name, args, ctx.idempotency_key, _call_timeout())
        except McpConnectionLost as err:
            raise ToolUnavailable(str(err)) from err
        except McpConfigError as err:
            raise ToolFailedError(str(err)) from err
        text = observation_of(result)
        if result.is_error:
            raise ToolFailedError(f"{name} reported an error: {text[:2000]}")
        if result.structured_content is not None:
            return result.structured_content
        return {"content": text}

    async def _offered(self, conn: McpConnection, name: str) -> McpListedTool:
        """The server's tool behind ``name`` as offered now."""
        try:
            # Asked before every call: a tool removed (or now denied) since the run listed
            # it must fail here with a reason, not reach whatever now has its name.
            match = _usable(conn.server, await conn.list_tools()).get(name)
            if match is not None:
                return match
        except McpConfigError as err:
            raise ToolFailedError(str(err)) from err
        except McpConnectionLost as err:
            raise ToolUnavailable(str(err)) from err
        offered = ", ".join(sorted(_usable(conn.server, conn.listed or []))) or "none"
        raise McpToolGone(
            f"{name} is no longer offered by MCP server '{conn.server.name}' (it offers: "
            f"{offered}); plan without it"
        )

    async def aclose(self) -> None:
        """Close every connection (stdio servers' processes end)."""
        for conn in list(self._connections.values()):
            await conn.drop()


def _usable(server: McpServerSpec, listed: list[McpListedTool]) -> dict[str, McpListedTool]:
    """Run tool name -> the listed tool, for the tools a run may call."""
    usable = {t.name for t in tools_of(server, listed).tools}
    return {server.tool_name(t.name): t for t in listed if server.tool_name(t.name) in usable}


def _schema(tool: McpListedTool) -> dict[str, Any]:
    schema = tool.input_schema
    return schema if isinstance(schema, dict) else {"type": "object"}


def _call_timeout() -> float:
    if activity.in_activity():
        timeout = activity.info().start_to_close_timeout
        if timeout:
            return timeout.total_seconds()
    return DEFAULT_CALL_TIMEOUT_S


def observation_of(result: Any) -> str:
    """A call's content as text for the planner (never instructions: an observation)."""
    pieces: list[str] = []
    for block in result.content:
        text = getattr(block, "text", None)
        if isinstance(text, str):
            pieces.append(text)
        else:
            pieces.append(f"[{getattr(block, 'type', 'content')} omitted]")
    if not pieces and result.structured_content is not None:
        return json.dumps(result.structured_content, sort_keys=True, default=str)
    text = "\n".join(pieces)
    if len(text) > MAX_OUTPUT_CHARS:
        return text[:MAX_OUTPUT_CHARS] + f" [cut at {MAX_OUTPUT_CHARS:,} characters]"
    return text


def _log_warning(message: str) -> None:
    if activity.in_activity():
        activity.logger.warning(message)
