"""``agentctl``: start, follow, approve and inspect agent runs from a terminal.

The commands live in `client.cli_runs` (run and steer) and `client.cli_operate` (operate a
deployment); importing them registers them on the app in `client.cli_app`, in the order
``agentctl --help`` lists them.

Exit codes: 0 completed · 1 error · 2 usage · 3 failed · 4 escalated ·
5 budget_exhausted · 6 cancelled · 7 still running (``--no-wait``, ``status``, Ctrl-C at
``run``) ·
8 refused · 9 the run has ended · 10 an eval found a regression (or a difference).
"""

import sys

import typer
from rich.markup import escape

from durable_agents._cli import runs as cli_runs  # registered first: --help lists these first

# isort: split
from durable_agents._cli import evals as cli_evals
from durable_agents._cli import keys as cli_keys
from durable_agents._cli import operate as cli_operate
from durable_agents._cli import rollout as cli_rollout
from durable_agents._cli.app import app, err

COMMAND_MODULES = (cli_runs, cli_operate, cli_evals, cli_rollout, cli_keys)


def main() -> None:
    """Console entry point: traces go where OTEL_* says; the exit code is the command's."""
    import logging

    from durable_agents._cli.process_exit import exit_now
    from durable_agents._infra.logs import configure_logging
    from durable_agents._infra.telemetry import (
        TelemetryConfigError,
        TelemetrySettings,
        configure_tracing,
    )

    configure_logging(logging.WARNING)
    try:
        configure_tracing(TelemetrySettings.from_env(service_name="agentctl"))
    except TelemetryConfigError as e:
        err.print(f"[red]error:[/] {e}")
        exit_now(1)
    exit_now(run_cli(sys.argv[1:]))


def run_cli(argv: list[str]) -> int:
    """Run one command line; return its exit code.

    Click runs in non-standalone mode so that anything a user can type wrong (a bad value,
    an unknown option or command) ends in one line naming the value and what is allowed,
    with exit 2, instead of a framed box or a traceback; Ctrl-C outside a prompt is 130.
    """
    command = typer.main.get_command(app)
    try:
        result = command.main(argv, prog_name="agentctl", standalone_mode=False)
    except typer.TyperException as e:  # Click's usage errors (exit 2) and the like
        if not e.format_message():  # no arguments: the help was printed
            return e.exit_code
        message = e.format_message()
        typed = _typed(argv, getattr(e, "param", None))
        if typed is not None and typed not in message:
            message += f" (got '{typed}')"
        ctx = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        err.print(f"[red]error:[/] {escape(message)}{hint}", highlight=False)
        return e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        return 130
    except SystemExit as e:
        if isinstance(e.code, str):
            err.print(e.code)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return result if isinstance(result, int) else 0


def _typed(argv: list[str], param: object) -> str | None:
    """What the user typed for ``param`` (an option), so the error can name it."""
    opts = getattr(param, "opts", None) or []
    for i, arg in enumerate(argv):
        for opt in opts:
            if arg == opt and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(f"{opt}="):
                return arg[len(opt) + 1 :]
    return None


if __name__ == "__main__":
    main()
