"""Runs' event streams as Server-Sent Events, for web clients (``agentctl serve-events``).

``GET /runs/<workflow id>/events`` answers ``text/event-stream``: one SSE event per run
event (``id`` its `RunEvent.cursor`, where to resume after it; ``event`` its kind;
``data`` its JSON, with its offset), a comment every `KEEPALIVE` while the run is quiet,
and ``event: end`` once the run has ended. A browser's ``EventSource`` reconnects by
itself with ``Last-Event-ID`` (the last id it read): the stream goes on after it, losing
and repeating nothing, model text included; ``?from=N`` starts at offset N.

Plain asyncio (``asyncio.start_server``): one small route needs no web framework. It
reads through the caller's `AgentsClient`, so with codec keys set it decrypts as every
other client does; bind it to 127.0.0.1 (the default) or put it behind your own proxy
with authentication, as it serves every run its client can read.
"""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, unquote, urlsplit

from durable_agents._client.api import AgentsClient
from durable_agents._client.events import (
    InvalidOffsetError,
    RunNotFoundError,
    parse_cursor,
    parse_offset,
)
from durable_agents._domain.events import RunEvent

KEEPALIVE_S = 15.0
_ROUTE = re.compile(r"^/runs/([^/]{1,400})/events$")
_MAX_HEADER_LINES = 100
_END = object()


class HttpProblemError(Exception):
    """A request answered with an error status; the message is the body."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class EventServer:
    """Serves runs' events over SSE on ``host:port`` (``port=0``: any free port)."""

    def __init__(
        self,
        agents: AgentsClient,
        host: str = "127.0.0.1",
        port: int = 0,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        self._agents = agents
        self._host, self._port = host, port
        self._keepalive_s = keepalive_s
        self._server: asyncio.Server | None = None

    async def start(self) -> "EventServer":
        """Bind and accept connections."""
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        return self

    @property
    def url(self) -> str:
        """``http://host:port`` actually bound."""
        assert self._server is not None, "start() first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop accepting; open streams end."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            workflow_id, offset = await _read_request(reader)
            events = self._agents.events(workflow_id, offset)
            first = await _first(events)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
            )
            await _relay(first, events, writer, self._keepalive_s)
        except HttpProblemError as problem:
            body = (str(problem) + "\n").encode()
            writer.write(
                f"HTTP/1.1 {problem.status} {problem.reason}\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        finally:
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, int | str]:
    """The run and the offset a request asks for, or `HttpProblemError`."""
    request_line = (await reader.readline()).decode("latin-1").strip()
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADER_LINES):
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise HttpProblemError(431, "Request Header Fields Too Large", "too many header lines")
    method, _, rest = request_line.partition(" ")
    target = rest.rpartition(" ")[0] or rest
    if method != "GET":
        raise HttpProblemError(405, "Method Not Allowed", "only GET /runs/<run>/events")
    url = urlsplit(target)
    match = _ROUTE.match(url.path)
    if match is None:
        raise HttpProblemError(404, "Not Found", "the events of a run are at /runs/<run>/events")
    try:
        return unquote(match.group(1)), _offset(headers, parse_qs(url.query))
    except InvalidOffsetError as err:
        raise HttpProblemError(400, "Bad Request", str(err)) from None


def _offset(headers: dict[str, str], query: dict[str, list[str]]) -> int | str:
    """Where to start: after ``Last-Event-ID``, else at ``?from=``, else at 0."""
    if "last-event-id" in headers:
        cursor = headers["last-event-id"]
        try:
            parse_cursor(cursor)
        except InvalidOffsetError:
            raise InvalidOffsetError(
                f"Last-Event-ID must be the id of an event of this stream, got {cursor!r}"
            ) from None
        return cursor
    if "from" in query:
        return parse_offset(query["from"][-1])
    return 0


async def _first(events: AsyncIterator[RunEvent]) -> RunEvent | object:
    """The first event, or `_END`; refusals (unknown run) become `HttpProblemError` here,
    before the response has started."""
    try:
        return await anext(events)
    except StopAsyncIteration:
        return _END
    except RunNotFoundError as err:
        raise HttpProblemError(404, "Not Found", str(err)) from None


async def _relay(
    first: RunEvent | object,
    events: AsyncIterator[RunEvent],
    writer: asyncio.StreamWriter,
    keepalive_s: float,
) -> None:
    """Write ``first`` and the rest as SSE, with keep-alive comments, then ``end``."""
    queue: asyncio.Queue[RunEvent | object] = asyncio.Queue()
    await queue.put(first)

    async def pump() -> None:
        if first is not _END:
            async for event in events:
                await queue.put(event)
        await queue.put(_END)

    reader = asyncio.create_task(pump())
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), keepalive_s)
            except TimeoutError:
                writer.write(b": keep-alive\n\n")
                await writer.drain()
                continue
            if item is _END:
                writer.write(b"event: end\ndata: {}\n\n")
                return
            assert isinstance(item, RunEvent)
            writer.write(sse(item))
            await writer.drain()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


def sse(event: RunEvent) -> bytes:
    """One run event as an SSE event."""
    data = event.model_dump_json()
    return f"id: {event.cursor()}\nevent: {event.kind.value}\ndata: {data}\n\n".encode()
