"""Streaming costs the history nothing beyond the answer: a model call's text while it is
written travels as its activity's heartbeats, which the server keeps with the pending
activity and never writes to the history. A streamed and followed run's history has the
same events as the same run on a worker that does not stream; it takes none of the
server's room for updates, so approvals keep all of theirs.

Real dev server, real worker, the real ``openai`` client streaming from the scripted model.
"""

import asyncio
import dataclasses
import json
import threading
from collections import Counter

from temporalio.client import Client

from durable_agents._activities.catalog import Catalog
from durable_agents._domain.approvals import Decision
from durable_agents._domain.events import EventKind, RunEvent, Transcript
from durable_agents._domain.run import RunStatus
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

ANSWER = "The rocket was launched. " * 12  # long enough to arrive in many chunks
PLAN = {
    "rationale": "The rocket goes once a person says so. " * 8,  # many chunks
    "done": False,
    "tasks": [tool_task("go", "launch_rocket", name="apollo")],
}


async def follow(agents: LocalAgents, workflow_id: str, seen: threading.Event) -> list[RunEvent]:
    """Every event until the run ends; the first tokens seen open ``seen``."""
    events = []
    async for event in agents.events(workflow_id):
        events.append(event)
        if event.kind is EventKind.TOKENS:
            seen.set()
    return events


async def launch(agents: LocalAgents, model: ScriptedModelServer) -> tuple[str, list[RunEvent]]:
    """A run whose plan streams (a streaming worker's plan waits until the client has seen
    some of it) and which waits for a person; its id and what its follower saw."""
    plan_seen = threading.Event()
    plan = Reply.text(json.dumps(PLAN), chunk_chars=5, gate=plan_seen, gate_after=3)
    model.enqueue(plan, plan_reply(done=True), purpose="plan")
    model.enqueue(Reply.text(ANSWER, chunk_chars=5), purpose="summarize")
    handle = await agents.start_run("test-agent", "launch")
    following = asyncio.create_task(follow(agents, handle.workflow_id, plan_seen))
    request = await pending_request(agents, handle.workflow_id)
    await agents.approve(
        handle.workflow_id,
        Decision(request_id=request.id, args_digest=request.args_digest, approver="ana"),
    )
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED, report.errors
    assert report.approvals[0].decided_by == "ana" and report.answer == ANSWER
    return handle.workflow_id, await following


async def event_types(client: Client, workflow_id: str) -> Counter[int]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return Counter(e.event_type for e in history.events)


async def test_a_streamed_run_has_the_history_of_one_that_does_not_stream(
    agents: LocalAgents,
    model: ScriptedModelServer,
    client: Client,
    worker_settings: WorkerSettings,
    catalog: Catalog,
) -> None:
    async with build_worker(client, worker_settings, catalog=catalog):
        streamed_id, events = await launch(agents, model)
    plain = dataclasses.replace(worker_settings, stream_tokens=False)
    async with build_worker(client, plain, catalog=catalog):
        plain_id, _ = await launch(agents, model)
    # The plan's text was seen while it was written (the model waited for that).
    first = next(e for e in events if e.kind is EventKind.TOKENS)
    assert first.purpose == "plan" and json.dumps(PLAN).startswith(first.text)
    transcript = Transcript()
    for event in events:
        transcript.apply(event)
    (answer,) = [c for c in transcript.calls.values() if c.label == "answer"]
    assert answer.text == ANSWER and answer.finished
    # Same events, kind by kind: no update, no signal, no extra workflow task for tokens.
    assert await event_types(client, streamed_id) == await event_types(client, plain_id)
