"""Streaming: how soon a client sees a model's tokens, what they cost in history and time.

- ``token_latency_ms``: from a chunk leaving the scripted model (its ``time.time()``, this
  process) to a client following the run (`AgentsClient.events`) receiving the event
  that carries it; p50 and p99 over every chunk of the answers.
- ``history_bytes_per_1000_tokens``: the history of a run streamed and followed, minus
  the same run with streaming off (no client), per 1,000 answer tokens; ``beyond_text``
  also takes off the text that token batches carried into the history (none since the
  text travels as heartbeats: the answer is in both runs' histories, once, as the model
  call's result), so it is what streaming adds beyond the answer itself.
- ``extra_step_ratio``: step time (run time / steps, short answers) with streaming on and
  a client following, over streaming off, minus 1; ``extra_step_ratio_unfollowed`` the same
  with streaming on and nobody following (what the worker side costs alone). The modes take
  turns, run by run, in an order that rotates each round; the ratio is the median of the
  rounds' own ratios (each round's runs close in time, so a shift in the machine's load
  weighs on both sides of one ratio), with its quartiles. ``cpu_ms_per_step``: CPU of this
  process (worker, client, model thread) and the Temporal server per step, median per
  mode: less swayed than wall time by other processes on the machine.

The model runs in this process (a thread) so its send times and the client's receive
times are on one clock; the answer streams in ``chunk_chars`` pieces every
``chunk_delay_ms``, like a model writing about one token per piece.
"""

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from temporalio.api.history.v1 import HistoryEvent

from bench.agent import Goal, bench_budget, install
from bench.harness import Harness, self_cpu_s
from bench.runs import percentile, uid
from durable_agents._activities.openai_provider import OpenAIProvider
from durable_agents._activities.token_stream import DEFAULT_INTERVAL
from durable_agents._client.events import POLL_INTERVAL
from durable_agents._domain import contract
from durable_agents._domain.events import EventKind, RunEvent
from durable_agents._domain.spec import AgentSpec, LlmPolicy
from durable_agents._workers.build import build_worker
from durable_agents.testing.scripted_model import RecordedRequest, Reply, ScriptedModelServer
from tests.support.agents import LocalAgents

CHUNK_CHARS = 4  # about one token
_COUNTS = ("history_bytes", "output_tokens", "token_events", "batch_updates", "batch_text_bytes")
NOTE = (
    "A client follows with the run's description (every poll_interval_ms while a model call "
    "is in flight, three times less often between; the pending model activity carries the "
    "call's text so far, heartbeated every batch_interval_ms) and the stream's poll query when "
    "the history has grown. Neither writes to the history. Token latency is bounded by the "
    "batch interval (text waits up to 200 ms) plus the poll interval (up to 75 ms) plus the "
    "round trips; history per 1,000 tokens is the difference of two runs' histories (ids, "
    "timestamps and sizes vary by some bytes); extra_step_ratio is the median of paired "
    "per-round ratios (quartiles given)."
)


async def measure_streaming(
    h: Harness, tokens: int, runs: int, steps: int, chunk_delay_ms: float, step_runs: int
) -> dict[str, Any]:
    """The streaming numbers (see the module docstring); ``runs`` long answers per mode,
    ``step_runs`` runs of ``steps`` steps per mode for the step times."""
    answer = ("stream " * (tokens * CHUNK_CHARS // 7 + 1))[: tokens * CHUNK_CHARS]
    with ScriptedModelServer() as model:
        install(model)

        def summary(_: RecordedRequest) -> Reply:
            return Reply.text(answer, chunk_chars=CHUNK_CHARS, chunk_delay_s=chunk_delay_ms / 1000)

        async with _workers(h, model) as (streamer, plain):
            model.set_responder("summarize", summary)
            on, off = await _interleaved(h, model, runs, 1, [(streamer, True), (plain, False)])
            model.set_responder("summarize", lambda _: Reply.text("done"))
            steps_on, steps_off, steps_alone = await _interleaved(
                h, model, step_runs, steps, [(streamer, True), (plain, False), (streamer, False)]
            )
    extra = (on["history_bytes"] - off["history_bytes"]) / on["output_tokens"] * 1000
    text_bytes = on["batch_text_bytes"] / on["output_tokens"] * 1000
    return {
        "token_latency_ms": {
            "p50": round(percentile(on["latencies_ms"], 50), 1),
            "p99": round(percentile(on["latencies_ms"], 99), 1),
            "samples": len(on["latencies_ms"]),
        },
        "history_bytes_per_1000_tokens": {
            "total": round(extra),
            "beyond_text": round(extra - text_bytes),
            "token_events_per_1000_tokens": round(on["token_events"] / on["output_tokens"] * 1000),
            "token_batch_updates": on["batch_updates"],
        },
        "extra_step_ratio": _paired_ratio(steps_on, steps_off)["p50"],
        "extra_step_ratio_unfollowed": _paired_ratio(steps_alone, steps_off)["p50"],
        "extra_step_ratio_quartiles": {
            "followed": _paired_ratio(steps_on, steps_off),
            "unfollowed": _paired_ratio(steps_alone, steps_off),
        },
        "step_s": {
            "streaming_followed": round(steps_on["step_s"], 4),
            "streaming_unfollowed": round(steps_alone["step_s"], 4),
            "off": round(steps_off["step_s"], 4),
        },
        "cpu_ms_per_step": {
            "streaming_followed": round(steps_on["cpu_ms_per_step"], 2),
            "streaming_unfollowed": round(steps_alone["cpu_ms_per_step"], 2),
            "off": round(steps_off["cpu_ms_per_step"], 2),
        },
        "note": NOTE,
        "config": {
            "batch_interval_ms": DEFAULT_INTERVAL.total_seconds() * 1000,
            "poll_interval_ms": POLL_INTERVAL.total_seconds() * 1000,
            "answer_tokens": tokens,
            "runs": runs,
            "step_runs": step_runs,
            "steps": steps,
            "chunk_chars": CHUNK_CHARS,
            "chunk_delay_ms": chunk_delay_ms,
        },
    }


@asynccontextmanager
async def _workers(
    h: Harness, model: ScriptedModelServer
) -> AsyncIterator[tuple[LocalAgents, LocalAgents]]:
    """Two workers, streaming and not, both up for the whole measurement."""
    pairs = []
    async with AsyncExitStack() as stack:
        for streaming in (True, False):
            queue = h.queue("stream-on" if streaming else "stream-off")
            provider = OpenAIProvider.from_settings("bench-key", model.base_url, stream=streaming)
            settings = h.settings(queue, openai_base_url=model.base_url)
            worker = build_worker(h.client, settings, provider=provider, catalog=h.catalog)
            await stack.enter_async_context(worker)
            pairs.append(h.agents(queue))
        yield pairs[0], pairs[1]


async def _interleaved(
    h: Harness,
    model: ScriptedModelServer,
    runs: int,
    steps: int,
    modes: list[tuple[LocalAgents, bool]],
) -> list[dict[str, Any]]:
    """Each mode (a worker, and whether a client follows) ``runs`` times, taking turns in an
    order that rotates each round, so the machine's load weighs on each alike; per mode:
    totals, each round's step time, and the median step time and CPU per step."""
    totals: list[dict[str, Any]] = [
        {"latencies_ms": [], **dict.fromkeys(_COUNTS, 0)} for _ in modes
    ]
    step_times: list[list[float]] = [[] for _ in modes]
    cpu_times: list[list[float]] = [[] for _ in modes]
    for turn in range(runs):
        order = [*range(len(modes))][turn % len(modes) :] + [*range(len(modes))][
            : turn % len(modes)
        ]
        for n in order:
            agents, follow = modes[n]
            cpu_before = self_cpu_s() + h.server_cpu_s()
            run = await _one_run(agents, model, steps, follow=follow)
            cpu_times[n].append((self_cpu_s() + h.server_cpu_s() - cpu_before) / steps)
            for key in _COUNTS:
                totals[n][key] += run[key]
            totals[n]["latencies_ms"] += run["latencies_ms"]
            step_times[n].append(run["seconds"] / steps)
    for total, times, cpu in zip(totals, step_times, cpu_times, strict=True):
        total["step_times"] = times
        total["step_s"] = statistics.median(times)
        total["cpu_ms_per_step"] = statistics.median(cpu) * 1000
    return totals


def _paired_ratio(mode: dict[str, Any], off: dict[str, Any]) -> dict[str, float]:
    """``mode``'s step time over ``off``'s, minus 1, round by round: median and quartiles."""
    ratios = [a / b - 1 for a, b in zip(mode["step_times"], off["step_times"], strict=True)]
    return {
        "p25": round(percentile(ratios, 25), 3),
        "p50": round(statistics.median(ratios), 3),
        "p75": round(percentile(ratios, 75), 3),
        "rounds": len(ratios),
    }


async def _one_run(
    agents: LocalAgents, model: ScriptedModelServer, steps: int, *, follow: bool
) -> dict[str, Any]:
    goal = Goal(uid("stream"), steps, kind="tool")
    seen: list[tuple[float, RunEvent]] = []

    async def follower(workflow_id: str) -> None:
        async for event in agents.events(workflow_id):
            seen.append((time.time(), event))

    started = time.monotonic()
    handle = await agents.start_run(
        _streaming_agent(agents), goal.text(), budget=bench_budget(agents.catalog, steps + 2)
    )
    task = asyncio.create_task(follower(handle.workflow_id)) if follow else None
    report = await agents.result(handle.workflow_id)
    seconds = time.monotonic() - started
    if task is not None:
        await task
    history = await agents.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
    answers = [r for r in model.requests if r.purpose == "summarize" and goal.tag in str(r.body)]
    sent = answers[-1].chunks_sent if answers else []
    batches = _token_batches(history.events)
    return {
        "seconds": seconds,
        "history_bytes": sum(e.ByteSize() for e in history.events),
        "batch_updates": len(batches),
        "batch_text_bytes": sum(len(text.encode()) for text in batches),
        "output_tokens": _answer_tokens(report.usage.output_tokens, answers),
        "token_events": sum(1 for _, e in seen if e.kind is EventKind.TOKENS),
        "latencies_ms": _latencies(sent, [(t, e) for t, e in seen if e.label == "answer"]),
    }


def _token_batches(events: Sequence[HistoryEvent]) -> list[str]:
    """The text of each token batch the history holds (``stream_tokens`` updates taken)."""
    texts = []
    for event in events:
        if not event.HasField("workflow_execution_update_accepted_event_attributes"):
            continue
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        if request.input.name == contract.STREAM_TOKENS:
            for payload in request.input.args.payloads:
                texts.append(str(json.loads(payload.data).get("text", "")))
    return texts


def _streaming_agent(agents: LocalAgents) -> AgentSpec:
    """The test agent with room for a long answer (its model calls time out after 5 s)."""
    spec = agents.catalog.plugin("test-agent").build_spec()
    return spec.model_copy(update={"name": "stream-agent", "llm": LlmPolicy(timeout_s=120)})


def _answer_tokens(total: int, answers: Sequence[RecordedRequest]) -> int:
    """Completion tokens of the answer (its text, as the model counted it: ~chars / 4)."""
    sent = "".join(piece for _, piece in answers[-1].chunks_sent) if answers else ""
    return max(1, -(-len(sent) // CHUNK_CHARS)) if sent else max(total, 1)


def _latencies(
    sent: Sequence[tuple[float, str]], seen: Sequence[tuple[float, RunEvent]]
) -> list[float]:
    """For each chunk sent, the ms until the client held an event with its last char."""
    arrivals: list[tuple[int, float]] = []  # (chars received so far, when)
    received = 0
    for when, event in seen:
        if event.kind is EventKind.TOKENS:
            received += len(event.text)
            arrivals.append((received, when))
    out: list[float] = []
    position = 0
    for sent_at, piece in sent:
        position += len(piece)
        seen_at = next((t for n, t in arrivals if n >= position), None)
        if seen_at is not None:
            out.append((seen_at - sent_at) * 1000)
    return out
