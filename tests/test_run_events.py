"""A run's event stream, read by a client following it: every step, and each model call's
text exactly once, through a retried stream, a continue-as-new and a resume from an offset.
The text streams as the model activity's heartbeats, read from the run's description.

Real dev server, real worker, the real ``openai`` client streaming from the scripted model.
"""

import asyncio
import dataclasses
import itertools
import threading

import pytest
from temporalio.client import Client

from durable_agents._activities.catalog import Catalog
from durable_agents._activities.payload_store import DEFAULT_INLINE_LIMIT
from durable_agents._client.events import InvalidOffsetError, RunNotFoundError
from durable_agents._client.live_calls import LIVE_KINDS
from durable_agents._domain import contract
from durable_agents._domain.events import EventKind, RunEvent, Transcript
from durable_agents._domain.run import RunReport, RunStatus
from durable_agents._domain.spec import LoopLimits
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

ANSWER = "The effect was recorded. " * 12  # long enough to arrive in many chunks


async def follow(
    agents: LocalAgents,
    workflow_id: str,
    from_offset: int | str = 0,
    open_on_tokens: threading.Event | None = None,
    open_on: tuple[EventKind, threading.Event] | None = None,
) -> list[RunEvent]:
    """Every event from ``from_offset`` until the run ends, as a client reads them; the
    first answer tokens seen open ``open_on_tokens`` (a scripted reply waits on it), the
    first answer event of ``open_on``'s kind its event."""
    events = []
    async for event in agents.events(workflow_id, from_offset):
        events.append(event)
        if open_on_tokens and event.kind is EventKind.TOKENS and event.label == "answer":
            open_on_tokens.set()
        if open_on and event.kind is open_on[0] and event.label == "answer":
            open_on[1].set()
    return events


def streamed(events: list[RunEvent], call_id: str, attempt: int = 0) -> str:
    """The text the tokens events of ``call_id`` (of ``attempt``, if given) carried."""
    return "".join(
        e.text
        for e in events
        if e.kind is EventKind.TOKENS and e.call_id == call_id and attempt in (0, e.attempt)
    )


def answer_call(events: list[RunEvent]) -> str:
    """The call id of the run's answer (its ``llm_complete`` call labelled ``answer``)."""
    (call,) = {
        e.call_id for e in events if e.kind is EventKind.CALL_STARTED and e.label == "answer"
    }
    return call


def shown(events: list[RunEvent], call_id: str) -> str:
    """What a person following the run sees of ``call_id``."""
    transcript = Transcript()
    for event in events:
        transcript.apply(event)
    return transcript.text_of(call_id)


def check_offsets(events: list[RunEvent], start: int = 0) -> None:
    """The run's own events' offsets count up by one from ``start``: nothing lost, nothing
    repeated (model text read live carries the offset of the event before it)."""
    own = [e for e in events if e.kind not in LIVE_KINDS]
    assert [e.offset for e in own] == list(range(start, start + len(own)))
    for before, event in itertools.pairwise(events):
        if event.kind in LIVE_KINDS:
            assert event.offset == before.offset


async def test_a_follower_sees_every_step_and_the_answer_once(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="a")), purpose="plan")
    # The reply waits after 3 chunks until the client has seen some of it: streamed for sure.
    seen_some = threading.Event()
    model.enqueue(
        Reply.text(ANSWER, chunk_chars=5, gate=seen_some, gate_after=3), purpose="summarize"
    )
    handle = await agents.start_run("test-agent", "record a")
    events, report = await asyncio.gather(
        follow(agents, handle.workflow_id, open_on_tokens=seen_some),
        agents.result(handle.workflow_id),
    )
    assert report.status is RunStatus.COMPLETED, report.errors
    kinds = [e.kind for e in events]
    for kind in (EventKind.PLAN_MADE, EventKind.TASK_STARTED, EventKind.TASK_FINISHED):
        assert kind in kinds
    assert kinds[-1] is EventKind.RUN_FINISHED and events[-1].status == "completed"
    finished = next(e for e in events if e.kind is EventKind.TASK_FINISHED)
    assert (finished.task_id, finished.outcome) == ("t1", "ok")
    call = answer_call(events)
    assert shown(events, call) == ANSWER == report.answer
    # What streamed is the answer's start, each token once (nothing was superseded); the
    # rest came with call_finished.
    live = streamed(events, call)
    assert live and ANSWER.startswith(live)
    transcript = Transcript()
    for event in events:
        transcript.apply(event)
    assert transcript.calls[call].verified is True  # the answer's digest: the text is it
    assert EventKind.SUPERSEDED not in kinds
    check_offsets(events)
    # The planner's reply streamed too, and usage settled from the stream's last chunk.
    assert report.usage.llm_calls == 2 and report.usage.output_tokens > 0


@pytest.mark.parametrize("how", ["error", "abort"])
async def test_a_stream_cut_mid_way_is_superseded_by_the_retry(
    agents: LocalAgents, model: ScriptedModelServer, worker: None, how: str
) -> None:
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="a")), purpose="plan")
    partial = "This answer will be cut off before it ends. " * 3
    # Cut once the client has seen some of it, so there is something to supersede; the
    # retry waits after its first chunk until the client has seen it supersede the first.
    seen_some, superseded_seen = threading.Event(), threading.Event()
    model.enqueue(
        Reply.cut(partial, after_chunks=6, how=how, gate=seen_some),  # type: ignore[arg-type]
        Reply.text(ANSWER, chunk_chars=7, gate=superseded_seen, gate_after=1),
        purpose="summarize",
    )
    handle = await agents.start_run("test-agent", "record a")
    events, report = await asyncio.gather(
        follow(
            agents,
            handle.workflow_id,
            open_on_tokens=seen_some,
            open_on=(EventKind.SUPERSEDED, superseded_seen),
        ),
        agents.result(handle.workflow_id),
    )
    assert report.status is RunStatus.COMPLETED, report.errors
    call = answer_call(events)
    first = streamed(events, call, attempt=1)
    assert first and partial.startswith(first)  # the cut attempt's text was shown...
    superseded = [e for e in events if e.kind is EventKind.SUPERSEDED]
    assert [(e.call_id, e.attempt) for e in superseded] == [(call, 2)]
    assert ANSWER.startswith(streamed(events, call, attempt=2))
    assert shown(events, call) == ANSWER == report.answer  # ...and shown no more
    finished = [e for e in events if e.kind is EventKind.CALL_FINISHED and e.call_id == call]
    assert [e.attempt for e in finished] == [2]
    assert model.count(purpose="summarize") == 2


async def test_a_follower_follows_the_run_across_continue_as_new(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    plans = iter(
        [
            plan_reply(tool_task("t1", "record_effect", name="a"), done=False),
            plan_reply(tool_task("t2", "record_effect", name="b"), done=True),
        ]
    )
    model.set_responder("plan", lambda r: next(plans))
    model.enqueue(Reply.text(ANSWER, chunk_chars=6), purpose="summarize")
    spec = agents.resolve("test-agent").model_copy(
        update={"name": "continuing-agent", "limits": LoopLimits(continue_as_new_every=1)}
    )
    handle = await agents.start_run(spec, "record a, continue, record b")
    events, report = await asyncio.gather(
        follow(agents, handle.workflow_id), agents.result(handle.workflow_id)
    )
    assert report.status is RunStatus.COMPLETED, report.errors
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.CONTINUED_AS_NEW) >= 1
    started = [e.task_id for e in events if e.kind is EventKind.TASK_STARTED]
    assert started == ["t1", "t2"]
    check_offsets(events)
    assert shown(events, answer_call(events)) == ANSWER == report.answer
    # A reader starting after the run ended reads the last execution's events: its offsets
    # continue the stream's, and it ends with the same answer.
    late = await follow(agents, handle.workflow_id)
    own = [e for e in events if e.kind not in LIVE_KINDS]
    assert late == own[-len(late) :]
    assert shown(late, answer_call(late)) == ANSWER


async def test_reading_resumes_from_an_offset(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="a")), purpose="plan")
    model.enqueue(Reply.text(ANSWER, chunk_chars=9), purpose="summarize")
    handle = await agents.start_run("test-agent", "record a")
    report: RunReport = await agents.result(handle.workflow_id)
    everything = await follow(agents, handle.workflow_id)
    middle = len(everything) // 2
    rest = await follow(agents, handle.workflow_id, from_offset=middle)
    assert rest == everything[middle:]
    assert shown(everything[:middle] + rest, answer_call(everything)) == report.answer
    assert await follow(agents, handle.workflow_id, from_offset=len(everything)) == []


async def test_a_reader_resuming_after_a_call_began_reads_its_text(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    """Resumed from the event after the answer's ``call_started`` (its cursor), a reader
    never sees the call begin: it finds it in the run's description once it heartbeats."""
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="a")), purpose="plan")
    seen_some = threading.Event()  # the answer waits after 3 chunks until the reader saw it
    model.enqueue(
        Reply.text(ANSWER, chunk_chars=5, gate=seen_some, gate_after=3), purpose="summarize"
    )
    handle = await agents.start_run("test-agent", "record a")
    cursor = ""
    async for event in agents.events(handle.workflow_id):
        if event.kind is EventKind.CALL_STARTED and event.label == "answer":
            cursor = event.cursor()
            break
    later = await follow(agents, handle.workflow_id, from_offset=cursor, open_on_tokens=seen_some)
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED, report.errors
    (call,) = {e.call_id for e in later if e.kind is EventKind.TOKENS}
    assert EventKind.CALL_STARTED not in [e.kind for e in later if e.call_id == call]
    live = streamed(later, call)
    assert live and ANSWER.startswith(live)
    assert shown(later, call) == ANSWER == report.answer


@pytest.mark.parametrize("offset", [-1, "abc", "1.5", True, None])
async def test_a_malformed_offset_is_refused_with_the_reason(
    agents: LocalAgents, offset: object
) -> None:
    with pytest.raises(InvalidOffsetError, match="whole number >= 0"):
        await anext(aiter(agents.events("run-anything", offset)))  # type: ignore[arg-type]


async def test_an_unknown_run_is_named(agents: LocalAgents) -> None:
    with pytest.raises(RunNotFoundError, match="run-nobody"):
        await anext(aiter(agents.events("run-nobody")))


def test_the_contract_names_are_the_sdk_stream_names() -> None:
    from temporalio.contrib.workflow_streams import _stream

    assert contract.STREAM_PUBLISH == _stream._PUBLISH_SIGNAL
    assert contract.STREAM_POLL == _stream._POLL
    assert contract.STREAM_OFFSET == _stream._OFFSET_QUERY


async def test_a_reply_longer_than_the_inline_limit_streams_past_it(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    """Streamed text is not in the history, so it is not held to the payload store's
    inline limit: a 6,300-character answer is seen up to its last chunk but one."""
    long = "A long answer, kept in the payload store. " * 150  # 6,300 characters
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="a")), purpose="plan")
    seen_most = threading.Event()
    reply = Reply.text(long, chunk_chars=50, gate=seen_most, gate_after=125)

    async def follow_until_most_seen() -> list[RunEvent]:
        events = []
        async for event in agents.events(handle.workflow_id):
            events.append(event)
            if event.kind is EventKind.TOKENS and event.end >= len(long) - 50:
                seen_most.set()
        return events

    model.enqueue(reply, purpose="summarize")
    handle = await agents.start_run("test-agent", "record a")
    events, report = await asyncio.gather(
        follow_until_most_seen(), agents.result(handle.workflow_id)
    )
    assert report.status is RunStatus.COMPLETED, report.errors
    call = answer_call(events)
    transcript = Transcript()
    for event in events:
        transcript.apply(event)
    text = transcript.text_of(call)
    assert long.startswith(text) and len(text) >= len(long) - 50 > DEFAULT_INLINE_LIMIT
    # Seen whole, it is checked against the answer's digest; seen but for its last chunk,
    # the client knows the rest is in the result.
    whole = text == long
    assert transcript.calls[call].verified is (True if whole else None)
    assert transcript.calls[call].capped is not whole and transcript.calls[call].finished


async def test_a_worker_with_streaming_off_sends_whole_replies(
    agents: LocalAgents,
    model: ScriptedModelServer,
    client: Client,
    worker_settings: WorkerSettings,
    catalog: Catalog,
) -> None:
    """``AGENT_STREAM_TOKENS=0``: no call asks to stream, no token batch reaches the
    history, and a follower still sees every step and the answer (with ``call_finished``)."""
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="a")), purpose="plan")
    model.enqueue(Reply.text(ANSWER, chunk_chars=5), purpose="summarize")
    settings = dataclasses.replace(worker_settings, stream_tokens=False)
    async with build_worker(client, settings, catalog=catalog):
        handle = await agents.start_run("test-agent", "record a")
        events, report = await asyncio.gather(
            follow(agents, handle.workflow_id), agents.result(handle.workflow_id)
        )
    assert report.status is RunStatus.COMPLETED, report.errors
    assert shown(events, answer_call(events)) == ANSWER == report.answer
    assert EventKind.TOKENS not in [e.kind for e in events]
    assert [r.body.get("stream") for r in model.requests] == [None, None]
    history = await client.get_workflow_handle(handle.workflow_id).fetch_history()
    updates = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert contract.STREAM_TOKENS not in updates
