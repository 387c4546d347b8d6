"""Who can break a run's event stream without our client: a raw SDK client publishing
forged events through the stream's own signal, a malformed poll, a token batch sent with
a key read from the history, a forged heartbeat for a model call in flight, and, with
codec keys set, anyone reading what the server keeps."""

import asyncio
import json
import threading
import uuid
from dataclasses import dataclass

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from durable_agents._activities.catalog import Catalog
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain import contract
from durable_agents._domain.approvals import Decision
from durable_agents._domain.events import (
    PROGRESS_FORMAT,
    EventKind,
    RunEvent,
    TokenBatch,
    TokenProgress,
    Transcript,
)
from durable_agents._domain.run import RunStatus
from durable_agents._infra.codec import EncryptionCodec, new_key, parse_keys
from durable_agents._infra.connection import data_converter
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.attacks import (
    TemporalCli,
    accepted_updates,
    history_of,
    task_failures,
    waiting_run,
)
from tests.support.plans import plan_reply, tool_task

FORGED = "FORGED-TEXT"


@dataclass
class Held:
    """A payload as the server holds it."""

    encoding: bytes
    data: bytes


async def test_forged_publishes_never_reach_the_runs_readers(
    dev_server: DevServer, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(tool_task("go", "launch_rocket", name="apollo")), purpose="plan")
    model.enqueue(plan_reply(done=True), purpose="plan")
    model.enqueue(Reply.text("launched", chunk_chars=3), purpose="summarize")
    handle = await agents.start_run("test-agent", "launch")
    request = await pending_request(agents, handle.workflow_id)
    # The run waits for a person. An outsider publishes with the SDK's own stream client:
    raw = await Client.connect(
        dev_server.address, namespace=dev_server.namespace, data_converter=pydantic_data_converter
    )
    outsider = WorkflowStreamClient.create(raw, handle.workflow_id)
    # an event the run never published, on the topic clients read,
    outsider.topic(contract.EVENTS_TOPIC).publish(
        RunEvent(kind=EventKind.RUN_FINISHED, status="completed", text=FORGED)
    )
    await outsider.flush()
    # and whatever else fits the signal: junk, wrong shapes, several payloads.
    rogue = raw.get_workflow_handle(handle.workflow_id)
    for args in (["junk"], [{"items": [{"topic": "x", "data": "!!"}]}], [1, 2]):
        await rogue.signal(contract.STREAM_PUBLISH, args=args)
    # Tokens through the update model calls use: refused (no call in flight, no key, junk).
    for batch in (
        TokenBatch(call_id="g0-1-llm", attempt=9, seq=1, key="guessed", text=FORGED),
        TokenBatch(call_id="llm-9", attempt=1, seq=1, key="guessed", text=FORGED),
        {"text": FORGED},
        "junk",
    ):
        with pytest.raises(WorkflowUpdateFailedError):
            await rogue.execute_update(contract.STREAM_TOKENS, batch)
    # A poll update, malformed or not, is refused (readers use the query); the run goes on.
    for poll in ({"from_offset": "x"}, {"topics": [contract.EVENTS_TOPIC], "from_offset": 0}):
        with pytest.raises(WorkflowUpdateFailedError):
            await rogue.execute_update(contract.STREAM_POLL, poll)
    await agents.approve(
        handle.workflow_id,
        Decision(request_id=request.id, args_digest=request.args_digest, approver="ana"),
    )
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED, report.errors
    events = [e async for e in agents.events(handle.workflow_id)]
    assert all(FORGED not in e.model_dump_json() for e in events)
    # The refused updates wrote nothing (the signals, refused too, are in the history).
    history = await rogue.fetch_history()
    accepted = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert accepted and not [
        a for a in accepted if a.name in (contract.STREAM_TOKENS, contract.STREAM_POLL)
    ]
    assert [e.kind for e in events].count(EventKind.RUN_FINISHED) == 1
    transcript = Transcript()
    for event in events:
        transcript.apply(event)
    answers = [c.text for c in transcript.calls.values() if c.label == "answer"]
    assert answers == ["launched"] == [report.answer]
    asked = [e for e in events if e.kind is EventKind.APPROVAL_ASKED]
    decided = [e for e in events if e.kind is EventKind.APPROVAL_DECIDED]
    assert [e.approval_id for e in asked] == [request.id] == [e.approval_id for e in decided]
    assert decided[0].status == "approved"


@pytest.mark.e2e
async def test_stream_payloads_are_encrypted_with_the_codec_on(
    dev_server: DevServer,
    catalog: Catalog,
    model: ScriptedModelServer,
    worker_settings: WorkerSettings,
    task_queue: str,
) -> None:
    codec = EncryptionCodec(parse_keys(f"a:{new_key()}"))
    client = await Client.connect(
        dev_server.address, namespace=dev_server.namespace, data_converter=data_converter(codec)
    )
    marker = uuid.uuid4().hex
    answer = f"ANSWER-{marker} " * 4
    model.enqueue(plan_reply(tool_task("t", "record_effect", name="a")), purpose="plan")
    seen_some = threading.Event()  # the reply waits until the client has seen some of it
    model.enqueue(
        Reply.text(answer, chunk_chars=4, gate=seen_some, gate_after=2), purpose="summarize"
    )
    agents = LocalAgents(client, catalog, task_queue)
    plain = await Client.connect(
        dev_server.address, namespace=dev_server.namespace, data_converter=pydantic_data_converter
    )
    held_details = []
    async with build_worker(client, worker_settings, catalog=catalog):
        handle = await agents.start_run("test-agent", "record a")
        events = []
        async for event in agents.events(handle.workflow_id):
            events.append(event)
            if event.kind is EventKind.TOKENS and not seen_some.is_set():
                # What the server holds for the call in flight, read without the key.
                described = await plain.get_workflow_handle(handle.workflow_id).describe()
                for pending in described.raw_description.pending_activities:
                    held_details += [
                        Held(p.metadata.get("encoding", b""), p.data)
                        for p in pending.heartbeat_details.payloads
                    ]
                assert all(marker.encode() not in d.data for d in held_details)
                seen_some.set()
    tokens = "".join(e.text for e in events if e.kind is EventKind.TOKENS)
    assert tokens and answer.startswith(tokens)  # read back, decrypted, with the key
    assert [d.encoding for d in held_details] == [b"binary/encrypted"]
    plain = await Client.connect(
        dev_server.address, namespace=dev_server.namespace, data_converter=pydantic_data_converter
    )
    history = await plain.get_workflow_handle(handle.workflow_id).fetch_history()
    assert marker.encode() not in history.to_json().encode()


async def test_text_forged_into_a_call_in_flight_is_shown_corrected(
    dev_server: DevServer, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    """Without codec keys, whoever may heartbeat for the run can write a model call's
    streamed text (the server takes heartbeats by workflow and activity id), and a token
    batch with the call's key, read from the history, is refused as every batch is. A
    reader shows forged text only while the call runs: ``call_finished`` replaces it with
    the answer, and flags that what streamed was not it."""
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="a")), purpose="plan")
    answer = "The real answer, streamed while an outsider writes into it. " * 4
    forger_done = threading.Event()
    model.enqueue(
        Reply.text(answer, chunk_chars=6, gate=forger_done, gate_after=3), purpose="summarize"
    )
    handle = await agents.start_run("test-agent", "record a")
    raw = await Client.connect(
        dev_server.address, namespace=dev_server.namespace, data_converter=pydantic_data_converter
    )
    rogue = raw.get_workflow_handle(handle.workflow_id)
    first_tokens, forged_seen = asyncio.Event(), asyncio.Event()

    async def forge() -> None:
        await first_tokens.wait()
        scheduled = [
            e.activity_task_scheduled_event_attributes
            for e in (await rogue.fetch_history()).events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        call = json.loads(scheduled[-1].input.payloads[0].data)
        batch = TokenBatch(
            call_id=scheduled[-1].activity_id, attempt=1, seq=1, key=call["stream_key"], text="x"
        )
        with pytest.raises(WorkflowUpdateFailedError):
            await rogue.execute_update(contract.STREAM_TOKENS, batch)
        beating = raw.get_async_activity_handle(
            workflow_id=handle.workflow_id, run_id=None, activity_id=scheduled[-1].activity_id
        )
        shown = "".join(e.text for e in events if e.kind is EventKind.TOKENS)
        forged = TokenProgress(format=PROGRESS_FORMAT, attempt=1, text=shown + FORGED)
        while not forged_seen.is_set():  # junk first (skipped), then text that fits
            await beating.heartbeat("junk", {"format": "other"})
            await beating.heartbeat(forged)
            await asyncio.sleep(0.1)
        forger_done.set()

    events: list[RunEvent] = []
    forger = asyncio.create_task(forge())
    async for event in agents.events(handle.workflow_id):
        events.append(event)
        if event.kind is EventKind.TOKENS:
            first_tokens.set()
            if FORGED in event.text:
                forged_seen.set()
    await forger
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED and report.answer == answer
    transcript = Transcript()
    for event in events:
        transcript.apply(event)
    (shown,) = [c for c in transcript.calls.values() if c.label == "answer"]
    assert shown.text == answer and shown.verified is False


async def test_the_official_cli_cannot_write_on_a_runs_stream(
    tcli: TemporalCli, agents: LocalAgents, client: Client, model: ScriptedModelServer, worker: None
) -> None:
    """With ``temporal workflow update/signal``: token batches (junk, or shaped like the
    model activity's with the planner call's key read from the history), the stream's poll
    update and its publish signal. Updates are refused with the reason and write nothing;
    the signal is recorded and ignored; no reader sees any of it and the run goes on."""
    wid, request = await waiting_run(agents, model)
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in (await history_of(client, wid)).events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == contract.PLAN
    ]
    key = json.loads(scheduled[0].input.payloads[0].data)["stream_key"]
    batch = {"call_id": scheduled[0].activity_id, "attempt": 1, "seq": 1, "key": key}
    for update, payload in (
        (contract.STREAM_TOKENS, {**batch, "text": FORGED}),
        (contract.STREAM_TOKENS, "junk"),
        (contract.STREAM_POLL, {"topics": [contract.EVENTS_TOPIC], "from_offset": 0}),
    ):
        said = await tcli.update(wid, update, [payload])
        assert said.code != 0, said.output
    forged = RunEvent(kind=EventKind.TOKENS, call_id=batch["call_id"], text=FORGED)
    said = await tcli.signal(wid, contract.STREAM_PUBLISH, [{"items": [forged.model_dump()]}])
    assert said.code == 0, said.output
    await agents.approve(
        wid, Decision(request_id=request.id, args_digest=request.args_digest, approver="ana")
    )
    report = await agents.result(wid)
    assert report.status is RunStatus.COMPLETED, report.errors
    events = [e async for e in agents.events(wid)]
    assert all(FORGED not in e.model_dump_json() for e in events)
    history = await history_of(client, wid)
    assert accepted_updates(history) == [contract.ADMISSION, contract.APPROVE]
    assert task_failures(history) == []
