"""Ending a command-line process without tripping over Temporal's runtime.

Temporal's Rust core can abort while the interpreter finalizes (seen in about 5% of
``agentctl`` exits as SIGABRT/SIGSEGV after all work was done). Once a command has
finished and flushed its output, nothing useful remains for finalization to do, so we
flush the tracer and the streams and leave with ``os._exit``.
"""

import os
import sys

from opentelemetry import trace


def exit_now(code: int) -> None:
    """Flush spans and output, then end the process with ``code``."""
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
