"""One live connection to an MCP server, kept per worker and restarted after a crash.

A stdio server is a child process of the worker, started on first use and kept for the
calls of every run; an HTTP server gets one session the same way. The SDK's client is a
context manager whose tasks must stay in the task that entered it, so a holder task owns
each connection and calls from activities use it concurrently. When the server dies
(its process exits, its socket closes), the calls in flight fail with
`McpConnectionLost`, the connection is dropped, and the next call starts a new one: the
activity's retry reaches a fresh server process.

Secret values (``secret_headers``, ``env_from``) are read from the worker's environment
here, when connecting, and go nowhere else.
"""

import asyncio
import contextlib
import os
from collections.abc import Mapping
from typing import Any, cast

from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import CallToolResult, RequestParamsMeta
from pydantic import ValidationError

from durable_agents._domain.mcp import IDEMPOTENCY_META_KEY, McpListedTool, McpServerSpec


class McpConfigError(ValueError):
    """The worker cannot use a server: as configured (a missing secret) or as it answers
    (a tool list that is not valid MCP). Retrying does not help; the message says why."""


class McpConnectionLost(ConnectionError):  # noqa: N818 - names what happened
    """The server went away (or could not be reached); a new connection may work."""


class McpConnection:
    """A lazily started, self-healing connection to one server."""

    def __init__(self, server: McpServerSpec, environ: Mapping[str, str] | None = None) -> None:
        self.server = server
        self._environ = os.environ if environ is None else environ
        self._lock = asyncio.Lock()
        self._client: Client | None = None
        self._holder: asyncio.Task[None] | None = None
        self._closing: asyncio.Event | None = None
        self.listed: list[McpListedTool] | None = None  # the last tools/list answer
        self.starts = 0  # connections made (a restart counts)

    async def list_tools(self) -> list[McpListedTool]:
        """The server's tools now (every page), remembered for the calls that follow."""
        client = await self._connected()
        listed: list[McpListedTool] = []
        cursor: str | None = None
        try:
            # A server that does not answer is given up on like one that cannot be reached.
            async with asyncio.timeout(self.server.connect_timeout_s):
                for _ in range(32):  # pages; a server that never stops paging is cut off
                    page = await client.list_tools(cursor=cursor)
                    listed += [_listed(t) for t in page.tools]
                    cursor = page.next_cursor
                    if not cursor:
                        break
        except ValidationError as err:
            raise McpConfigError(
                f"MCP server '{self.server.name}' sent a tool list that is not valid MCP "
                f"({err.error_count()} problem(s), first: {_first(err)})"
            ) from None
        except Exception as err:
            await self.drop()
            raise McpConnectionLost(f"MCP server '{self.server.name}': {_reason(err)}") from err
        self.listed = listed
        return listed

    async def call(
        self, mcp_name: str, args: dict[str, Any], idempotency_key: str, timeout_s: float
    ) -> CallToolResult:
        """One ``tools/call``, carrying the idempotency key in ``_meta``."""
        client = await self._connected()
        try:
            return await client.call_tool(
                mcp_name,
                args,
                read_timeout_seconds=timeout_s,
                meta=cast(RequestParamsMeta, {IDEMPOTENCY_META_KEY: idempotency_key}),
            )
        except Exception as err:
            # The SDK reports a dead transport as an MCPError too; whatever it was, the
            # next attempt starts from a fresh connection.
            await self.drop()
            raise McpConnectionLost(f"MCP server '{self.server.name}': {_reason(err)}") from err

    async def _connected(self) -> Client:
        async with self._lock:
            if self._client is not None and self._holder is not None and not self._holder.done():
                return self._client
            await self._drop_locked()
            target = self._target()  # a missing secret is a `McpConfigError` right here
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            self._closing = asyncio.Event()
            self._holder = asyncio.create_task(self._hold(target, ready, self._closing))
            try:
                self._client = await asyncio.wait_for(
                    asyncio.shield(ready), self.server.connect_timeout_s
                )
            except BaseException as err:
                # Given up (or the caller was cancelled): the half-made connection goes.
                await asyncio.shield(self._drop_locked(graceful=False))
                ready.add_done_callback(_retrieved)  # its failure is reported here, not lost
                if not isinstance(err, Exception):
                    raise
                raise McpConnectionLost(
                    f"cannot connect to MCP server '{self.server.name}': {_reason(err)}"
                ) from err
            self.starts += 1
            return self._client

    async def _hold(
        self, target: Any, ready: "asyncio.Future[Client]", closing: asyncio.Event
    ) -> None:
        try:
            async with Client(target, mode="legacy", cache=None) as client:
                ready.set_result(client)
                await closing.wait()
        except BaseException as err:
            if not ready.done():
                ready.set_exception(
                    err if isinstance(err, Exception) else McpConnectionLost(str(err))
                )
            if isinstance(err, asyncio.CancelledError):
                raise

    def _target(self) -> Any:
        server = self.server
        if server.command:
            env = {**server.env, **{k: self._secret(v, k) for k, v in server.env_from.items()}}
            return StdioServerParameters(
                command=server.command[0], args=server.command[1:], env=env
            )
        headers = {**server.headers}
        headers.update({h: self._secret(v, h) for h, v in server.secret_headers.items()})
        assert server.url is not None
        return streamable_http_client(server.url, http_client=create_mcp_http_client(headers))

    def _secret(self, variable: str, what: str) -> str:
        value = self._environ.get(variable)
        if not value:
            raise McpConfigError(
                f"MCP server '{self.server.name}' needs {what} from the environment variable "
                f"{variable}, which is not set on this worker"
            )
        return value

    async def drop(self) -> None:
        """Close the connection (a stdio server's process ends); the next use reconnects."""
        async with self._lock:
            await self._drop_locked()

    async def _drop_locked(self, graceful: bool = True) -> None:
        """Close the connection: a live session is asked to end (5 s), a half-made one
        (``graceful=False``) is cancelled at once."""
        holder, closing = self._holder, self._closing
        self._client = self._holder = self._closing = None
        if holder is None:
            return
        if closing is not None:
            closing.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(holder, 5.0 if graceful else 0)
        if not holder.done():
            holder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await holder


def _retrieved(future: "asyncio.Future[Client]") -> None:
    if not future.cancelled():
        future.exception()


def _reason(err: BaseException) -> str:
    """The first real error inside the exception groups transports raise."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _first(err: ValidationError) -> str:
    first = err.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])[:120]}: {first['msg']}"


def _listed(tool: Any) -> McpListedTool:
    hints = tool.annotations
    return McpListedTool(
        name=tool.name,
        description=tool.description or "",
        input_schema=tool.input_schema,
        read_only=hints.read_only_hint if hints else None,
        destructive=hints.destructive_hint if hints else None,
        idempotent=hints.idempotent_hint if hints else None,
    )
