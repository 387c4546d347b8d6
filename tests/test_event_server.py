"""Runs' events as Server-Sent Events, read by a real HTTP client (httpx): a reader that
disconnects and comes back with ``Last-Event-ID`` loses and repeats nothing; bad requests
get a clear status and reason."""

import socket
import threading
from collections.abc import AsyncIterator

import httpx
import pytest

from durable_agents._client.event_server import EventServer
from durable_agents._client.live_calls import LIVE_KINDS
from durable_agents._domain.events import EventKind, RunEvent, Transcript
from durable_agents._domain.run import RunStatus
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agentctl import Cli
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

ANSWER = "Both effects were recorded. " * 8


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, str, str]]:
    """(id, event, data) of each SSE event in ``response``; comments skipped."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if fields:
                yield fields.get("id", ""), fields.get("event", "message"), fields.get("data", "")
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


@pytest.fixture
async def server(agents: LocalAgents) -> AsyncIterator[EventServer]:
    events = await EventServer(agents).start()
    yield events
    await events.close()


async def test_a_reader_resumes_with_last_event_id(
    agents: LocalAgents, model: ScriptedModelServer, worker: None, server: EventServer
) -> None:
    """The reader goes away while the answer streams and comes back with the id of the
    last event it read: the run's events go on after it, and the answer's text goes on
    where it stopped, none of it twice."""
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="a")), purpose="plan")
    away = threading.Event()  # the answer waits after 3 chunks until the reader went away
    model.enqueue(Reply.text(ANSWER, chunk_chars=6, gate=away, gate_after=3), purpose="summarize")
    handle = await agents.start_run("test-agent", "record a")
    url = f"{server.url}/runs/{handle.workflow_id}/events"
    got: list[RunEvent] = []
    async with httpx.AsyncClient(timeout=60) as http:
        async with http.stream("GET", url) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            async for sse_id, kind, data in sse_events(response):
                event = RunEvent.model_validate_json(data)
                assert (sse_id, kind) == (event.cursor(), event.kind.value)
                got.append(event)
                if event.kind is EventKind.TOKENS and event.label == "answer":
                    last_id = sse_id
                    break  # the reader goes away mid-answer
        away.set()
        async with http.stream("GET", url, headers={"Last-Event-ID": last_id}) as response:
            ended = False
            async for _, kind, data in sse_events(response):
                if kind == "end":
                    ended = True
                    break
                got.append(RunEvent.model_validate_json(data))
    assert ended
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    own = [e.offset for e in got if e.kind not in LIVE_KINDS]
    assert own == list(range(len(own)))  # nothing lost, nothing twice
    # Each piece of the answer's text starts where the one before ended, across the gap.
    tokens = [e for e in got if e.kind is EventKind.TOKENS and e.label == "answer"]
    ends = [0] + [e.end for e in tokens]
    assert [e.end - len(e.text) for e in tokens] == ends[:-1]
    transcript = Transcript()
    for event in got:
        transcript.apply(event)
    (answer,) = [c for c in transcript.calls.values() if c.label == "answer"]
    assert answer.text == ANSWER and answer.verified is True
    assert got[-1].kind is EventKind.RUN_FINISHED


async def test_a_quiet_run_gets_keep_alive_comments(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    """While a run waits for a person nothing happens; the stream says it is alive (a
    comment, which ``EventSource`` ignores) so proxies keep the connection open."""
    model.enqueue(plan_reply(tool_task("go", "launch_rocket", name="apollo")), purpose="plan")
    handle = await agents.start_run("test-agent", "launch")
    await pending_request(agents, handle.workflow_id)
    server = await EventServer(agents, keepalive_s=0.2).start()
    try:
        url = f"{server.url}/runs/{handle.workflow_id}/events"
        async with httpx.AsyncClient(timeout=60) as http, http.stream("GET", url) as response:
            lines = []
            async for line in response.aiter_lines():
                lines.append(line)
                if line == ": keep-alive" and "event: approval_asked" in lines:
                    break
    finally:
        await server.close()
        await agents.cancel(handle.workflow_id)
    assert "event: plan_made" in lines


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "reason"),
    [
        ("GET", "/runs/{run}/events", {"Last-Event-ID": "seven"}, 400, "Last-Event-ID must be"),
        ("GET", "/runs/{run}/events", {"Last-Event-ID": "-3"}, 400, "Last-Event-ID must be"),
        ("GET", "/runs/{run}/events?from=x", {}, 400, "whole number >= 0"),
        ("GET", "/runs/run-nobody/events", {}, 404, "no run 'run-nobody'"),
        ("GET", "/elsewhere", {}, 404, "/runs/<run>/events"),
        ("POST", "/runs/{run}/events", {}, 405, "only GET"),
    ],
)
async def test_a_bad_request_gets_a_status_and_the_reason(
    server: EventServer,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    reason: str,
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.request(
            method, server.url + path.format(run="run-x"), headers=headers
        )
    assert response.status_code == status and reason in response.text, response.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_agentctl_serve_events_serves_an_ended_run(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="a")), purpose="plan")
    model.enqueue(Reply.text(ANSWER), purpose="summarize")
    handle = await agents.start_run("test-agent", "record a")
    await agents.result(handle.workflow_id)
    port = _free_port()
    proc = await cli.stream("serve-events", "--port", str(port))
    try:
        await cli.read_until(proc, "Ctrl-C to stop")
        url = f"http://127.0.0.1:{port}/runs/{handle.workflow_id}/events?from=0"
        async with httpx.AsyncClient(timeout=30) as http, http.stream("GET", url) as response:
            read = [(kind, data) async for _, kind, data in sse_events(response)]
    finally:
        proc.terminate()
        await proc.wait()
    assert [kind for kind, _ in read[-2:]] == ["run_finished", "end"]
    transcript = Transcript()
    for _, data in read[:-1]:
        transcript.apply(RunEvent.model_validate_json(data))
    assert [c.text for c in transcript.calls.values() if c.label == "answer"] == [ANSWER]
