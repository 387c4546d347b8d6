"""``agentctl``: start, follow, approve and inspect agent runs from a terminal.

The commands live in `client.cli_runs` (run and steer) and `client.cli_operate` (operate a
deployment); importing them registers them on the app in `client.cli_app`, in the order
``agentctl --help`` lists them.

Exit codes: 0 completed · 1 error · 2 usage · 3 failed · 4 escalated ·
5 budget_exhausted · 6 cancelled · 7 still running (``--no-wait``, ``status``) ·
8 refused · 9 the run has ended.
"""

from client import cli_runs  # registered first: --help lists these first

# isort: split
from client import cli_keys, cli_operate
from client.cli_app import app, err

COMMAND_MODULES = (cli_runs, cli_operate, cli_keys)


def main() -> None:
    """Console entry point: traces go where OTEL_* says; the exit code is the command's."""
    import logging

    from client.process_exit import exit_now
    from workers.logs import configure_logging
    from workers.telemetry import TelemetryConfigError, TelemetrySettings, configure_tracing

    configure_logging(logging.WARNING)
    try:
        configure_tracing(TelemetrySettings.from_env(service_name="agentctl"))
    except TelemetryConfigError as e:
        err.print(f"[red]error:[/] {e}")
        exit_now(1)
    try:
        app()
        code = 0
    except SystemExit as e:  # how typer reports every command's exit code
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            err.print(e.code)
    exit_now(code)


if __name__ == "__main__":
    main()
