"""Traces, metrics and per-activity log context, for the worker and for ``agentctl``.

**Traces.** `client.connection.connect` registers Temporal's ``TracingInterceptor`` on
every client, so the trace context travels in Temporal headers from the process that
starts a run, through the workflow, to every activity and child run; the activities add
a span per model call and per tool call (`activities.instrumentation`). We use the
interceptor rather than the experimental ``OpenTelemetryPlugin`` because it takes an
explicit tracer: the plugin needs a process-wide replay-safe tracer provider, which a
test (or a process with two clients) cannot swap. Its workflow spans are instants, not
durations; the time is spent in activities, and those spans have real durations.

Spans leave the process over OTLP (HTTP/protobuf, or gRPC when
``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``) when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, on
stderr when ``AGENT_TRACE_CONSOLE=1``, and nowhere otherwise. The other standard
``OTEL_*`` variables (headers, sampler, resource attributes) work as documented.

**Metrics.** One Prometheus endpoint per worker, served by Temporal's runtime: its own
``temporal_*`` metrics and ours (``durable_agents_*``), recorded through Temporal's
metric meters. ``AGENT_METRICS_PORT`` turns it on (unset: off, so replicas on one host
do not fight over a port); it binds ``AGENT_METRICS_HOST``, 127.0.0.1 by default: a
metrics endpoint is not for the world, so exposing it (``0.0.0.0`` in a container) is a
deliberate act.

**Logs.** `ActivityLogContext` binds the activity's identity to structlog's context
variables, so every line an activity writes names its run, activity and attempt;
`workers.logs` adds the trace and span ids of the current span.
"""

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

DEFAULT_SERVICE_NAME = "durable-agents"
TRACER_NAME = "durable_agents"  # the tracer of the client, the worker and its activities
DEFAULT_METRICS_HOST = "127.0.0.1"


class TelemetryConfigError(ValueError):
    """Telemetry cannot start as configured; the message names the variable to fix."""


@dataclass(frozen=True)
class TelemetrySettings:
    """Where traces and metrics go; `from_env` reads the variables named in the module
    docstring, plus ``OTEL_SERVICE_NAME``."""

    otlp_endpoint: str | None = None
    otlp_protocol: str = "http/protobuf"
    trace_console: bool = False
    metrics_port: int | None = None
    metrics_host: str = DEFAULT_METRICS_HOST
    service_name: str = DEFAULT_SERVICE_NAME

    @classmethod
    def from_env(cls, service_name: str = DEFAULT_SERVICE_NAME) -> "TelemetrySettings":
        """Read the environment (entry points only, never at import time)."""
        env = os.environ
        port = env.get("AGENT_METRICS_PORT", "").strip()
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise TelemetryConfigError(f"AGENT_METRICS_PORT must be a TCP port, not {port!r}")
        return cls(
            otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or None,
            otlp_protocol=env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf",
            trace_console=env.get("AGENT_TRACE_CONSOLE", "") in ("1", "true", "yes"),
            metrics_port=int(port) if port else None,
            metrics_host=env.get("AGENT_METRICS_HOST") or DEFAULT_METRICS_HOST,
            service_name=env.get("OTEL_SERVICE_NAME") or service_name,
        )

    @property
    def metrics_address(self) -> str | None:
        """``host:port`` of the Prometheus endpoint (IPv6 hosts bracketed), or None."""
        if self.metrics_port is None:
            return None
        host = self.metrics_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.metrics_port}"


def _otlp_exporter(protocol: str) -> SpanExporter:
    # Imported here: only processes that export need the exporter packages. Both read
    # the endpoint, headers and timeout from the standard OTEL_* variables themselves.
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError as err:
            raise TelemetryConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc"
                " installed; or use http/protobuf, the default"
            ) from err
        exporter: SpanExporter = GrpcExporter()
        return exporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def configure_tracing(
    settings: TelemetrySettings, *, exporter: SpanExporter | None = None, install: bool = True
) -> TracerProvider | None:
    """A tracer provider exporting as ``settings`` say, or None when tracing is off.

    ``exporter`` replaces the configured exporters (tests pass an in-memory one). With
    ``install`` the provider becomes the process-wide one, which is what every client's
    ``TracingInterceptor`` and the activities use unless given a tracer. It shuts down
    (flushing what is buffered) at exit; call ``shutdown()`` to flush earlier.
    """
    processors: list[Any] = []
    if exporter is not None:
        processors.append(SimpleSpanProcessor(exporter))
    else:
        if settings.otlp_endpoint:
            # Batched: exporting must never sit in the path of a model or tool call.
            processors.append(BatchSpanProcessor(_otlp_exporter(settings.otlp_protocol)))
        if settings.trace_console:
            # stderr: stdout carries agentctl's output (--json), which spans must not mix into.
            processors.append(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    if not processors:
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.service_name}))
    for processor in processors:
        provider.add_span_processor(processor)
    if install:
        trace.set_tracer_provider(provider)
    return provider


def client_tracer(client: Client) -> trace.Tracer:
    """The tracer of ``client``'s tracing interceptor, so a worker's activity spans go
    wherever the spans of the client it was built on go (the global tracer otherwise)."""
    for interceptor in client.config()["interceptors"]:
        if isinstance(interceptor, TracingInterceptor):
            return interceptor.tracer
    return trace.get_tracer(TRACER_NAME)


def build_runtime(
    settings: TelemetrySettings, histogram_buckets: Mapping[str, list[float]] | None = None
) -> Runtime | None:
    """A Temporal runtime serving Prometheus metrics, or None (the default runtime) when
    no port is set. Pass it to `connect`. ``histogram_buckets``: bucket bounds per
    histogram (the worker passes its activities' latency buckets)."""
    address = settings.metrics_address
    if address is None:
        return None
    prometheus = PrometheusConfig(
        bind_address=address, histogram_bucket_overrides=dict(histogram_buckets or {})
    )
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=prometheus))
    except ValueError as err:  # most often: the port is taken by another worker
        raise TelemetryConfigError(
            f"cannot serve metrics on {address}: {err}; set AGENT_METRICS_PORT (and "
            "AGENT_METRICS_HOST) to a free address"
        ) from err


class ActivityLogContext(Interceptor):
    """Worker interceptor: activity log lines carry the identity of their activity."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Wrap every activity execution."""
        return _BindActivityContext(next)


class _BindActivityContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        with bound_activity_context():
            return await self.next.execute_activity(input)


@contextmanager
def bound_activity_context() -> Iterator[None]:
    """Bind the current activity's identity for as long as it runs.

    Each activity runs in its own asyncio task (a copy of the context), so concurrent
    activities never see each other's fields, and nothing outlives the activity.
    """
    info = activity.info()
    with structlog.contextvars.bound_contextvars(
        workflow_id=info.workflow_id,
        run_id=info.workflow_run_id,
        workflow_type=info.workflow_type,
        activity=info.activity_type,
        activity_id=info.activity_id,
        attempt=info.attempt,
    ):
        yield
