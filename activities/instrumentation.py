"""Spans, metrics and a log line for the two calls an activity makes to the outside world:
model calls and tool calls.

Spans follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``) plus our own
``durable_agents.*`` attributes. They never carry prompts, replies or tool arguments:
those may hold secrets and personal data, and the payload store already keeps them. Cost
is not on the span: an `LlmCall` carries no price, and the workflow prices every call
at the requested model's price when it settles the budget.

Metrics go through the activity's Temporal metric meter, so they come out of the
worker's one Prometheus endpoint labelled with namespace, task queue and activity type:

- ``durable_agents_llm_calls_total{model,purpose,outcome}``: requests sent to the model
  endpoint (cache hits are not requests; see the next line);
- ``durable_agents_llm_cache_hits_total{model,purpose}``;
- ``durable_agents_llm_tokens_total{model,kind}``, kind ``input`` or ``output``, as the
  provider reported them (cache hits consume none);
- ``durable_agents_llm_latency{model,outcome}``: milliseconds per request;
- ``durable_agents_tool_calls_total{tool,outcome}`` and ``durable_agents_tool_latency``,
  per attempt.

``outcome`` is ``ok``, the ``ApplicationError`` type the workflow sees (e.g.
``ModelRateLimited``, ``ToolUnavailable``), ``cancelled``, ``timed_out``, or the
exception class of an unexpected error. Labels hold requested model names only (not the
dated names providers answer with) so the number of series stays bounded.
"""

import asyncio
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.exceptions import ApplicationError

from durable_agents._activities.openai_provider import ProviderReply
from durable_agents._domain.llm import LlmCall
from durable_agents._domain.redaction import mask_keys
from durable_agents._domain.tools import ToolCall
from durable_agents._infra.telemetry import TRACER_NAME

LOGGER_NAME = "durable_agents.activities"

LLM_CALLS = "durable_agents_llm_calls_total"
LLM_CACHE_HITS = "durable_agents_llm_cache_hits_total"
LLM_TOKENS = "durable_agents_llm_tokens_total"
LLM_LATENCY = "durable_agents_llm_latency"
TOOL_CALLS = "durable_agents_tool_calls_total"
TOOL_LATENCY = "durable_agents_tool_latency"

# Milliseconds. Temporal's default buckets stop at 10 s, where a long completion starts.
HISTOGRAM_BUCKETS: Mapping[str, list[float]] = {
    LLM_LATENCY: [100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000],
    TOOL_LATENCY: [5, 25, 100, 250, 1000, 2500, 10000, 30000, 120000],
}

OFFLINE_PROVIDER = "offline"


def _meter() -> MetricMeter:
    # Outside an activity (unit tests, scripts) there is nothing to label the metric with.
    return activity.metric_meter() if activity.in_activity() else MetricMeter.noop


def outcome_of(err: BaseException) -> str:
    """The ``outcome`` label of a call that raised ``err``."""
    if isinstance(err, ApplicationError) and err.type:
        return err.type
    if isinstance(err, asyncio.CancelledError):
        details = activity.cancellation_details() if activity.in_activity() else None
        return "timed_out" if details is not None and details.timed_out else "cancelled"
    return type(err).__name__


def _failed(span: trace.Span, err: BaseException) -> str:
    """Mark ``span`` failed and return the outcome label. The exception is recorded by
    hand, with OpenAI-looking keys masked: error messages quote what they got."""
    outcome = outcome_of(err)
    span.set_attribute("error.type", outcome)
    span.set_status(Status(StatusCode.ERROR, outcome))
    span.add_event(
        "exception",
        {"exception.type": type(err).__name__, "exception.message": mask_keys(str(err))},
    )
    return outcome


def _start_span(
    tracer: trace.Tracer | None, name: str, kind: SpanKind, attributes: dict[str, Any]
) -> AbstractContextManager[trace.Span]:
    return (tracer or trace.get_tracer(TRACER_NAME)).start_as_current_span(
        name,
        kind=kind,
        attributes=attributes,
        record_exception=False,  # see _failed
        set_status_on_exception=False,
    )


def _llm_attributes(call: LlmCall, provider_id: str) -> dict[str, Any]:
    system = "durable_agents.offline" if provider_id == OFFLINE_PROVIDER else "openai"
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": system,  # the older name; many backends still key on it
        "gen_ai.provider.name": system,
        "gen_ai.request.model": call.model,
        "gen_ai.request.max_tokens": call.max_tokens,
        "gen_ai.request.temperature": call.temperature,
        "gen_ai.output.type": "json" if call.json_mode else "text",
        "durable_agents.purpose": call.purpose,
        "durable_agents.agent": call.agent,
        "durable_agents.label": call.label,
    }


class LlmCallSpan:
    """Handed to the body of `observe_llm_call`, which reports the reply through it."""

    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self.reply: ProviderReply | None = None

    def replied(self, reply: ProviderReply) -> None:
        """Record what the provider answered and what it consumed."""
        self.reply = reply
        self.span.set_attributes(
            {
                "gen_ai.response.model": reply.model,
                "gen_ai.response.finish_reasons": [reply.finish_reason],
                "gen_ai.usage.input_tokens": reply.input_tokens,
                "gen_ai.usage.output_tokens": reply.output_tokens,
            }
        )


@contextmanager
def observe_llm_call(
    call: LlmCall, provider_id: str, tracer: trace.Tracer | None = None
) -> Iterator[LlmCallSpan]:
    """A span, metrics and a log line around one request to the model endpoint."""
    attributes = {**_llm_attributes(call, provider_id), "durable_agents.cached": False}
    started = time.monotonic()
    with _start_span(tracer, f"chat {call.model}", SpanKind.CLIENT, attributes) as span:
        seen = LlmCallSpan(span)
        outcome = "ok"
        try:
            yield seen
        except BaseException as err:
            outcome = _failed(span, err)
            raise
        finally:
            _record_llm_call(call, seen.reply, outcome, time.monotonic() - started)


def _record_llm_call(
    call: LlmCall, reply: ProviderReply | None, outcome: str, elapsed_s: float
) -> None:
    meter = _meter()
    model = {"model": call.model}
    meter.create_counter(LLM_CALLS, "Requests sent to the model endpoint").add(
        1, {**model, "purpose": call.purpose, "outcome": outcome}
    )
    meter.create_histogram_timedelta(LLM_LATENCY, "Model request latency", "ms").record(
        timedelta(seconds=elapsed_s), {**model, "outcome": outcome}
    )
    fields: dict[str, Any] = {}
    if reply is not None:
        tokens = meter.create_counter(LLM_TOKENS, "Tokens the model endpoint reported")
        tokens.add(reply.input_tokens, {**model, "kind": "input"})
        tokens.add(reply.output_tokens, {**model, "kind": "output"})
        fields = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
    structlog.get_logger(LOGGER_NAME).info(
        "llm call",
        model=call.model,
        purpose=call.purpose,
        outcome=outcome,
        cached=False,
        latency_ms=round(elapsed_s * 1000, 1),
        **fields,
    )


def record_cache_hit(
    call: LlmCall, reply: ProviderReply, provider_id: str, tracer: trace.Tracer | None = None
) -> None:
    """A reply served from the response cache: no request, no tokens, one hit."""
    attributes = {**_llm_attributes(call, provider_id), "durable_agents.cached": True}
    with _start_span(tracer, f"chat {call.model}", SpanKind.CLIENT, attributes) as span:
        # Explicit zeros, so a backend summing usage over spans counts this call right.
        span.set_attributes(
            {
                "gen_ai.response.model": reply.model,
                "gen_ai.usage.input_tokens": 0,
                "gen_ai.usage.output_tokens": 0,
            }
        )
    _meter().create_counter(LLM_CACHE_HITS, "Model calls answered from the cache").add(
        1, {"model": call.model, "purpose": call.purpose}
    )
    structlog.get_logger(LOGGER_NAME).info(
        "llm call", model=call.model, purpose=call.purpose, outcome="ok", cached=True
    )


@contextmanager
def observe_tool_call(
    call: ToolCall, idempotency_key: str, attempt: int, tracer: trace.Tracer | None = None
) -> Iterator[None]:
    """A span, metrics and a log line around one attempt of one tool call."""
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.tool,
        "durable_agents.tool": call.tool,
        "durable_agents.attempt": attempt,
        "durable_agents.idempotency_key": idempotency_key,
    }
    started = time.monotonic()
    with _start_span(tracer, f"execute_tool {call.tool}", SpanKind.INTERNAL, attributes) as span:
        outcome = "ok"
        try:
            yield
        except BaseException as err:
            outcome = _failed(span, err)
            raise
        finally:
            span.set_attribute("durable_agents.tool.outcome", outcome)
            _record_tool_call(call, outcome, time.monotonic() - started)


def _record_tool_call(call: ToolCall, outcome: str, elapsed_s: float) -> None:
    meter = _meter()
    labels = {"tool": call.tool, "outcome": outcome}
    meter.create_counter(TOOL_CALLS, "Tool call attempts").add(1, labels)
    meter.create_histogram_timedelta(TOOL_LATENCY, "Tool call latency", "ms").record(
        timedelta(seconds=elapsed_s), labels
    )
    structlog.get_logger(LOGGER_NAME).info(
        "tool call",
        tool=call.tool,
        outcome=outcome,
        latency_ms=round(elapsed_s * 1000, 1),
    )
