"""See every run: one trace from the client through workflows, activities and child runs;
activity log lines that name their run and span; metrics that count what a run did.

Every worker here runs with ``max_cached_workflows=0``: each workflow task replays the
whole history first, so anything that is not replay-safe (a span, a log line, a metric)
shows up as a duplicate.
"""

import dataclasses
import io
import json
import logging
import re
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from temporalio import activity, workflow
from temporalio.client import Client

from durable_agents._activities.catalog import Catalog
from durable_agents._activities.instrumentation import HISTOGRAM_BUCKETS
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain import contract
from durable_agents._domain.budget import Budget
from durable_agents._domain.run import RunReport, RunStatus
from durable_agents._domain.spec import ModelRoute, ModelRouting
from durable_agents._infra.connection import TemporalSettings, connect
from durable_agents._infra.logs import HANDLER_NAME, configure_logging
from durable_agents._infra.telemetry import (
    TelemetryConfigError,
    TelemetrySettings,
    build_runtime,
    configure_tracing,
)
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.plans import tool_task

SECRET = "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
Lines = Callable[[], list[dict[str, Any]]]


def _plan(*tasks: dict[str, Any], usage: tuple[int, int]) -> Reply:
    return Reply.json({"rationale": "test", "done": True, "tasks": list(tasks)}, usage=usage)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- fixtures: a traced client with its own metrics endpoint, a replaying worker ---------


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def tracer_provider(spans: InMemorySpanExporter) -> Iterator[TracerProvider]:
    # Not installed globally: the other tests' clients keep their no-op tracer.
    provider = configure_tracing(TelemetrySettings(), exporter=spans, install=False)
    assert provider is not None
    yield provider
    provider.shutdown()


@pytest.fixture(scope="module")
def metrics_url() -> str:
    return f"http://127.0.0.1:{_free_port()}/metrics"


@pytest.fixture(scope="module")
async def traced_client(
    dev_server: DevServer, tracer_provider: TracerProvider, metrics_url: str
) -> Client:
    port = int(metrics_url.rsplit(":", 1)[1].split("/")[0])
    runtime = build_runtime(TelemetrySettings(metrics_port=port), HISTOGRAM_BUCKETS)
    tracer = tracer_provider.get_tracer("tests")
    return await connect(
        TemporalSettings(address=dev_server.address, namespace=dev_server.namespace),
        tracer=tracer,
        runtime=runtime,
    )


@pytest.fixture
async def traced(
    traced_client: Client,
    catalog: Catalog,
    task_queue: str,
    worker_settings: WorkerSettings,
    spans: InMemorySpanExporter,
) -> AsyncIterator[LocalAgents]:
    """The API on the traced client, with a worker that replays every workflow task."""
    spans.clear()
    settings = dataclasses.replace(worker_settings, max_cached_workflows=0)
    async with build_worker(traced_client, settings, catalog=catalog):
        yield LocalAgents(traced_client, catalog, task_queue)


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """The process's logging configured as the worker's, writing JSON lines to a buffer."""
    root = logging.getLogger()
    wf_logger = logging.getLogger(workflow.logger.logger.name)
    saved = (root.handlers[:], root.level, wf_logger.level, structlog.get_config())
    flags = (workflow.logger.workflow_info_on_message, activity.logger.activity_info_on_message)
    buffer = io.StringIO()
    configure_logging(stream=buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line]
    root.handlers, _, _, config = saved
    root.setLevel(saved[1])
    wf_logger.setLevel(saved[2])
    structlog.configure(**config)
    workflow.logger.workflow_info_on_message, activity.logger.activity_info_on_message = flags


async def _run(agents: LocalAgents, spec: Any, goal: str) -> RunReport:
    handle = await agents.start_run(spec, goal)
    return await agents.result(handle.workflow_id)


# -- traces ------------------------------------------------------------------------------


def _trace_of(spans: InMemorySpanExporter, workflow_id: str) -> list[ReadableSpan]:
    """The spans of the trace the client started for ``workflow_id``."""
    finished = spans.get_finished_spans()
    root = next(
        s
        for s in finished
        if s.name == f"StartWorkflow:{contract.AGENT_RUN}"
        and (s.attributes or {}).get("temporalWorkflowID") == workflow_id
    )
    assert root.parent is None and root.context is not None
    return [s for s in finished if s.context and s.context.trace_id == root.context.trace_id]


def _path(span: ReadableSpan, trace: list[ReadableSpan]) -> list[str]:
    """Names from ``span`` up to the root of its trace."""
    by_id = {s.context.span_id: s for s in trace if s.context}
    names = [span.name]
    while span.parent is not None:
        span = by_id[span.parent.span_id]  # a missing parent would break the tree: KeyError
        names.append(span.name)
    return names


@pytest.mark.e2e
async def test_one_trace_from_client_start_through_child_runs(
    traced: LocalAgents, model: ScriptedModelServer, spans: InMemorySpanExporter
) -> None:
    sub = {"id": "s1", "kind": "subagent", "prompt": "record the child effect", "depends_on": []}
    child_plan = _plan(tool_task("k", "record_effect", name="c"), usage=(210, 41))
    plans = iter([_plan(sub, usage=(200, 40)), child_plan])
    model.set_responder("plan", lambda r: next(plans))
    model.enqueue(
        Reply.text("child done", usage=(100, 10)),
        Reply.text("parent done", usage=(120, 30)),
        purpose="summarize",
    )
    report = await _run(traced, "test-agent", "delegate to a child")
    assert report.status is RunStatus.COMPLETED, report.errors

    trace = _trace_of(spans, report.workflow_id)
    child_id = report.workflow_id + ".s1.g0-2-sub"
    wf = contract.AGENT_RUN
    start, child = f"StartWorkflow:{wf}", f"StartChildWorkflow:{wf}"
    chat, effect = "chat gpt-4o-mini", "execute_tool record_effect"
    # Workflow spans are instants under the span that started the run (or the child); an
    # activity's span hangs off the workflow's "start activity" span, ours off the activity's.
    expected = [[start], [f"RunWorkflow:{wf}", start], [f"CompleteWorkflow:{wf}", start]]
    expected += [[child, start], *([n, child, start] for n, *_ in expected[1:])]
    # The client waits on the run's admission (an update) before it goes on.
    expected += [[f"HandleUpdate:{contract.ADMISSION}", start]]
    # A worker resolves each run's agent (an activity) before anything else.
    for above in ([start], [child, start]):
        begin = f"StartActivity:{contract.RESOLVE_AGENT}"
        expected += [[begin, *above], [f"RunActivity:{contract.RESOLVE_AGENT}", begin, *above]]
    for name, own, above in [
        (contract.PLAN, chat, [start]),
        (contract.LLM_COMPLETE, chat, [start]),
        (contract.PLAN, chat, [child, start]),
        (contract.INVOKE_TOOL, effect, [child, start]),
        (contract.LLM_COMPLETE, chat, [child, start]),
    ]:
        run, begin = f"RunActivity:{name}", f"StartActivity:{name}"
        expected += [[begin, *above], [run, begin, *above], [own, run, begin, *above]]
    assert sorted(_path(s, trace) for s in trace) == sorted(expected), (
        "every workflow task replayed, yet no span is duplicated or orphaned"
    )

    # The GenAI attributes carry exactly the usage the scripted server reported.
    chats = [dict(s.attributes or {}) for s in trace if s.name.startswith("chat ")]
    assert sorted(
        (
            a["durable_agents.purpose"],
            a["gen_ai.usage.input_tokens"],
            a["gen_ai.usage.output_tokens"],
        )
        for a in chats
    ) == [("plan", 200, 40), ("plan", 210, 41), ("summarize", 100, 10), ("summarize", 120, 30)]
    for a in chats:
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.system"] == a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == "gpt-4o-mini"
        assert a["gen_ai.request.max_tokens"] == 512 and a["gen_ai.request.temperature"] == 0.0
        assert a["durable_agents.cached"] is False

    (tool,) = [s for s in trace if s.name.startswith("execute_tool")]
    assert dict(tool.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "record_effect",
        "durable_agents.tool": "record_effect",
        "durable_agents.tool.outcome": "ok",
        "durable_agents.attempt": 1,
        "durable_agents.idempotency_key": f"{child_id}/g0-2-tool",
    }
    run_spans = {
        (s.attributes or {}).get("temporalWorkflowID") for s in trace if s.name.startswith("Run")
    }
    assert run_spans == {report.workflow_id, child_id}


@pytest.mark.e2e
async def test_failed_tool_attempts_are_error_spans_with_the_secret_masked(
    traced: LocalAgents, model: ScriptedModelServer, spans: InMemorySpanExporter
) -> None:
    model.enqueue(
        _plan(tool_task("f", "flaky", name=SECRET, failures=1), usage=(50, 5)), purpose="plan"
    )
    model.enqueue(Reply.text("done", usage=(60, 6)), purpose="summarize")
    report = await _run(traced, "test-agent", "flaky once")
    assert report.status is RunStatus.COMPLETED, report.errors

    tools = [s for s in _trace_of(spans, report.workflow_id) if s.name == "execute_tool flaky"]
    by_attempt = {dict(s.attributes or {})["durable_agents.attempt"]: s for s in tools}
    assert set(by_attempt) == {1, 2}
    failed, ok = by_attempt[1], by_attempt[2]
    assert failed.status.status_code is StatusCode.ERROR
    assert dict(failed.attributes or {})["durable_agents.tool.outcome"] == "ToolUnavailable"
    (event,) = failed.events
    assert SECRET not in str(event.attributes) and "[redacted]" in str(event.attributes)
    assert dict(ok.attributes or {})["durable_agents.tool.outcome"] == "ok"
    assert ok.status.status_code is StatusCode.UNSET


# -- logs --------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_activity_lines_carry_their_context_and_workflow_lines_never_repeat(
    traced: LocalAgents,
    model: ScriptedModelServer,
    spans: InMemorySpanExporter,
    log_lines: Lines,
) -> None:
    model.enqueue(
        _plan(tool_task("f", "flaky", name=SECRET, failures=1), usage=(50, 5)), purpose="plan"
    )
    model.enqueue(Reply.text("done", usage=(60, 6)), purpose="summarize")
    spec = traced.catalog.plugin("test-agent").build_spec()
    # Crossing half of the calls logs a warning from the workflow, once.
    spec = spec.model_copy(update={"budget": Budget(max_llm_calls=4, soft_fraction=0.5)})
    report = await _run(traced, spec, "flaky once, then answer")
    assert report.status is RunStatus.COMPLETED, report.errors
    trace_id = format(_trace_of(spans, report.workflow_id)[0].context.trace_id, "032x")
    lines = log_lines()
    mine = [line for line in lines if line.get("workflow_id") == report.workflow_id]

    warnings = [line for line in mine if line["event"] == "budget soft limit reached"]
    assert len(warnings) == 1, "a workflow line must not repeat when the workflow replays"
    assert warnings[0]["logger"] == "temporalio.workflow" and warnings[0]["fraction"] == 0.5
    assert warnings[0]["run_id"] and warnings[0]["level"] == "warning"

    calls = [line for line in mine if line["event"] in ("llm call", "tool call", "notification")]
    assert Counter((c["event"], c["activity"]) for c in calls) == {
        ("llm call", contract.PLAN): 1,
        ("tool call", contract.INVOKE_TOOL): 2,
        ("llm call", contract.LLM_COMPLETE): 1,
        ("notification", contract.NOTIFY): 1,
    }
    for c in calls:
        assert c["run_id"] and c["activity_id"] and c["workflow_type"] == contract.AGENT_RUN
        assert c["trace_id"] == trace_id and re.fullmatch(r"[0-9a-f]{16}", c["span_id"])
    tool_calls = sorted((c["attempt"], c["outcome"]) for c in calls if c["event"] == "tool call")
    assert tool_calls == [(1, "ToolUnavailable"), (2, "ok")]
    plan = next(c for c in calls if c["activity"] == contract.PLAN)
    assert (plan["input_tokens"], plan["output_tokens"]) == (50, 5)

    # Temporal's own warning about the failed attempt quotes the error and its traceback.
    failed = [line for line in mine if line["event"] == "Completing activity as failed"]
    assert len(failed) == 1 and failed[0]["activity"] == contract.INVOKE_TOOL
    assert "[redacted]: service busy" in failed[0]["exception"]
    assert SECRET not in json.dumps(lines)


@pytest.mark.unit
def test_every_line_is_redacted_whichever_logger_wrote_it(log_lines: Lines) -> None:
    structlog.get_logger("t").info("connect", api_key="abcdef123", detail=f"with {SECRET}")
    logging.getLogger("some.library").warning("retrying with %s", SECRET)
    logging.getLogger("some.library").info("below the library level: dropped")
    lines = log_lines()
    assert [line["event"] for line in lines] == ["connect", "retrying with [redacted]"]
    assert lines[0]["api_key"] == "[redacted]" and lines[0]["detail"] == "with [redacted]"
    assert lines[1]["logger"] == "some.library" and "trace_id" not in lines[1]
    assert [h.name for h in logging.getLogger().handlers].count(HANDLER_NAME) == 1


# -- metrics -----------------------------------------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


async def _scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    async with httpx.AsyncClient() as http:
        text = (await http.get(url, timeout=5)).text
    samples = []
    for line in text.splitlines():
        if match := _SAMPLE.match(line):
            labels = dict(_LABEL.findall(match["labels"] or ""))
            samples.append((match["name"], labels, float(match["value"])))
    return samples


def _total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, have, v in samples if n == name and labels.items() <= have.items())


@pytest.mark.e2e
async def test_metrics_endpoint_counts_what_the_runs_did(
    traced: LocalAgents, model: ScriptedModelServer, metrics_url: str
) -> None:
    spec = traced.catalog.plugin("test-agent").build_spec()
    route = ModelRoute(model="gpt-4o-mini", max_tokens=256, cache=True)
    spec = spec.model_copy(
        update={"models": ModelRouting(plan=route, execute=route, evaluate=route, summarize=route)}
    )
    plan = _plan(
        tool_task("a", "record_effect", name="a"),
        tool_task("b", "flaky", name="b", failures=1),
        usage=(200, 40),
    )
    model.set_responder("plan", lambda r: plan)
    model.set_responder("summarize", lambda r: Reply.text("done", usage=(120, 30)))
    # The same goal twice: the second run's identical calls are answered by the cache.
    first = await _run(traced, spec, "same goal")
    second = await _run(traced, spec, "same goal")
    assert first.status is second.status is RunStatus.COMPLETED
    assert second.usage.cache_hits >= 1

    served = model.count()
    plans, answers = model.count(purpose="plan"), model.count(purpose="summarize")
    queue = {"task_queue": traced.task_queue}
    samples = await _scrape(metrics_url)
    assert _total(samples, "durable_agents_llm_calls_total", **queue) == served
    assert _total(samples, "durable_agents_llm_calls_total", outcome="ok", **queue) == served
    assert _total(samples, "durable_agents_llm_latency_count", **queue) == served
    assert _total(samples, "durable_agents_llm_cache_hits_total", **queue) == (
        first.usage.cache_hits + second.usage.cache_hits
    )
    assert (
        first.usage.llm_calls + second.usage.llm_calls
        == served + first.usage.cache_hits + second.usage.cache_hits
    )
    tokens = "durable_agents_llm_tokens_total"
    assert _total(samples, tokens, kind="input", model="gpt-4o-mini", **queue) == (
        200 * plans + 120 * answers
    )
    assert _total(samples, tokens, kind="output", **queue) == 40 * plans + 30 * answers
    tool_calls = "durable_agents_tool_calls_total"
    assert _total(samples, tool_calls, tool="record_effect", outcome="ok", **queue) == 2
    assert _total(samples, tool_calls, tool="flaky", outcome="ok", **queue) == 2
    assert _total(samples, tool_calls, tool="flaky", outcome="ToolUnavailable", **queue) == 2
    assert _total(samples, tool_calls, **queue) == 6
    # Temporal's own metrics come out of the same endpoint.
    assert _total(samples, "temporal_activity_execution_latency_count", **queue) >= 10


# -- settings ----------------------------------------------------------------------------


@pytest.mark.unit
def test_tracing_is_off_unless_asked_for() -> None:
    assert configure_tracing(TelemetrySettings(), install=False) is None


@pytest.mark.unit
def test_console_tracing_writes_spans_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    provider = configure_tracing(TelemetrySettings(trace_console=True), install=False)
    assert provider is not None
    provider.get_tracer("t").start_span("hello").end()
    provider.shutdown()
    captured = capsys.readouterr()
    assert '"name": "hello"' in captured.err and captured.out == ""


@pytest.mark.unit
def test_otlp_endpoint_receives_the_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[tuple[str, str]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Collector) as collector:
        threading.Thread(target=collector.serve_forever, daemon=True).start()
        endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        settings = TelemetrySettings.from_env()
        assert settings.otlp_endpoint == endpoint and settings.metrics_port is None
        provider = configure_tracing(settings, install=False)
        assert provider is not None
        provider.get_tracer("t").start_span("exported").end()
        provider.shutdown()  # flushes the batch
        collector.shutdown()
    assert received == [("/v1/traces", "application/x-protobuf")]


@pytest.mark.unit
def test_metrics_bind_to_localhost_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_METRICS_PORT", "9464")
    assert TelemetrySettings.from_env().metrics_address == "127.0.0.1:9464"
    monkeypatch.setenv("AGENT_METRICS_HOST", "0.0.0.0")
    assert TelemetrySettings.from_env().metrics_address == "0.0.0.0:9464"
    assert TelemetrySettings(metrics_port=9464, metrics_host="::").metrics_address == "[::]:9464"
    assert (
        TelemetrySettings().metrics_address is None and build_runtime(TelemetrySettings()) is None
    )
    monkeypatch.setenv("AGENT_METRICS_PORT", "metrics")
    with pytest.raises(TelemetryConfigError, match="AGENT_METRICS_PORT"):
        TelemetrySettings.from_env()


@pytest.mark.unit
def test_a_taken_metrics_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(TelemetryConfigError, match=f"127.0.0.1:{port}"):
            build_runtime(TelemetrySettings(metrics_port=port))
