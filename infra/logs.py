"""structlog set-up for processes: readable on a terminal, JSON lines otherwise.

Lines from the standard library's ``logging`` (Temporal's ``workflow.logger``, which is
silent while a workflow replays, and library loggers) go through the same processors,
so every line is rendered alike, carries the trace context, and is redacted.
"""

import logging
import sys
from typing import Any, TextIO

import structlog
from opentelemetry import trace
from temporalio import activity, workflow

from durable_agents._domain.redaction import redact

HANDLER_NAME = "durable_agents"


def redact_secrets(_: Any, __: str, event_dict: structlog.typing.EventDict) -> Any:
    """Mask secrets in every field: keys naming one (api_key, token, ...) and ``sk-...``
    strings anywhere, including rendered tracebacks (so it runs after format_exc_info)."""
    return redact(event_dict)


def add_trace_context(_: Any, __: str, event_dict: structlog.typing.EventDict) -> Any:
    """The ids of the current span, to go from a log line to its trace and back."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


# workflow.logger and activity.logger pass the run as one dict under these keys; name
# the fields as the lines of activities do (see workers.telemetry.bound_activity_context).
_TEMPORAL_FIELDS = {
    "temporal_workflow": {"workflow_id": "workflow_id", "run_id": "run_id"},
    "temporal_activity": {
        "workflow_id": "workflow_id",
        "workflow_run_id": "run_id",
        "activity_type": "activity",
        "activity_id": "activity_id",
        "attempt": "attempt",
    },
}


def _flatten_temporal_info(_: Any, __: str, event_dict: structlog.typing.EventDict) -> Any:
    for extra, names in _TEMPORAL_FIELDS.items():
        info = event_dict.pop(extra, None)
        if isinstance(info, dict):
            event_dict.setdefault("workflow_type", info.get("workflow_type"))
            for source, name in names.items():
                event_dict.setdefault(name, info.get(source))
    return event_dict


class _SharedStreamHandler(logging.Handler):
    """Writes stdlib records through a structlog `PrintLogger`, which takes a lock per
    file: lines from workflow threads and from the event loop never interleave."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._printer = structlog.PrintLogger(out)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._printer.msg(self.format(record))
        except Exception:
            self.handleError(record)


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send structured logs to ``stream`` (stderr); stdout stays free for program output."""
    out = stream or sys.stderr
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer()
        if out.isatty()
        else structlog.processors.JSONRenderer(sort_keys=True)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
    ]
    final: list[structlog.typing.Processor] = [
        structlog.processors.format_exc_info,
        redact_secrets,
        renderer,
    ]
    structlog.configure(
        processors=[*shared, *final],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    handler = _SharedStreamHandler(out)
    handler.name = HANDLER_NAME
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
                _flatten_temporal_info,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.name != HANDLER_NAME] + [handler]
    root.setLevel(logging.WARNING)
    # The project's own workflow code logs at info; library chatter stays at warning.
    logging.getLogger(workflow.logger.logger.name).setLevel(level)
    # The run's identity travels as fields (_flatten_temporal_info), not in every message.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
