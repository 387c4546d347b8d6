"""What every ``agentctl`` command shares: the Typer app, consoles, exit codes, errors.

Exit codes: 0 completed · 1 error · 2 usage · 3 failed · 4 escalated ·
5 budget_exhausted · 6 cancelled · 7 still running (``--no-wait``, ``status``, Ctrl-C at
``run``) ·
8 refused (the run or ledger refused what was sent, and said why) · 9 the run has ended
(a decision or cancel came too late) · 10 an eval gate found a regression.
"""

import asyncio
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._cli.render import print_report, to_json
from durable_agents._client.api import (
    AgentsClient,
    DecisionRefusedError,
    InvalidRunRequestError,
    RunEndedError,
)
from durable_agents._client.events import InvalidOffsetError
from durable_agents._domain import contract
from durable_agents._domain.run import RunReport, RunStatus, workflow_id_for
from durable_agents._infra.connection import TemporalSettings

EXIT_CODES = {
    RunStatus.COMPLETED: 0,
    RunStatus.FAILED: 3,
    RunStatus.ESCALATED: 4,
    RunStatus.BUDGET_EXHAUSTED: 5,
    RunStatus.CANCELLED: 6,
    RunStatus.TERMINATED: 3,
    RunStatus.RUNNING: 7,
    RunStatus.AWAITING_APPROVAL: 7,
}
EXIT_REFUSED = 8
EXIT_ENDED = 9

app = typer.Typer(
    help="Run and steer durable AI agents on Temporal.", no_args_is_help=True, add_completion=False
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class TemporalChoice:
    """Which profile of which configuration file the command line chose (None: the
    environment's, else the SDK's defaults)."""

    profile: str | None = None
    config_file: Path | None = None


# Set by the app's callback before any command runs; asyncio.run copies it into the loop.
_choice: ContextVar[TemporalChoice | None] = ContextVar("temporal_choice", default=None)


@app.callback()
def connection_options(
    profile: str | None = typer.Option(
        None,
        "--profile",
        envvar="TEMPORAL_PROFILE",
        help="The profile of Temporal's configuration file to connect with (address, "
        "namespace, TLS, API key), as the temporal CLI does; TEMPORAL_* variables override "
        "its values (default: default).",
        show_default=False,
    ),
    config_file: Path | None = typer.Option(
        None,
        "--config-file",
        envvar="TEMPORAL_CONFIG_FILE",
        help="Temporal's TOML configuration file (default: ~/.config/temporalio/temporal.toml).",
        show_default=False,
    ),
) -> None:
    """Options every command that talks to Temporal shares (before the command)."""
    _choice.set(TemporalChoice(profile, config_file))


async def connect_client() -> AgentsClient:
    """The API for this command line: the chosen profile, the ``TEMPORAL_*`` variables,
    ``AGENTS_TASK_QUEUE``. Errors are `ConnectionError`s that `run_async` prints."""
    return await AgentsClient.connect(temporal_settings())


def temporal_settings() -> TemporalSettings:
    """The connection settings this command line chose (profile, file, environment)."""
    choice = _choice.get() or TemporalChoice()
    return TemporalSettings.from_env(profile=choice.profile, config_file=choice.config_file)


def run_async(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Run an async command; turn expected errors into one clear line and exit code 1."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return asyncio.run(fn(*args, **kwargs))
        except DecisionRefusedError as e:
            err.print(f"[red]refused:[/] {e}", markup=True)
            raise typer.Exit(EXIT_REFUSED) from None
        except RunEndedError as e:
            err.print(f"[yellow]{e}[/]")
            raise typer.Exit(EXIT_ENDED) from None
        except (InvalidRunRequestError, InvalidOffsetError, ConnectionError, LookupError) as e:
            err.print(f"[red]error:[/] {e}")
            raise typer.Exit(1) from None
        except RPCError as e:
            err.print(f"[red]error:[/] {_explain(e)}")
            raise typer.Exit(1) from None

    return wrapper


def _explain(e: RPCError) -> str:
    """One line for a refused or unanswered server call."""
    if e.status is RPCStatusCode.NOT_FOUND:
        return f"no such run ({e.message})"
    if e.status is RPCStatusCode.DEADLINE_EXCEEDED:
        return (
            f"no answer in time ({e.message}); if the run is live, is an agent-worker "
            "polling its task queue? (`make worker`)"
        )
    return f"the server refused the call: {e.status.name}: {e.message}"


def json_flag(what: str = "the result") -> Any:
    """The ``--json`` option of a command, saying what it prints."""
    return typer.Option(
        False, "--json", help=f"Print {what} as JSON (stable keys) instead of text."
    )


def run_argument() -> Any:
    """The RUN argument every run command takes."""
    return typer.Argument(
        ..., help="The run: run-<request id> or the request id.", show_default=False
    )


def at_least(least: int) -> Callable[[float | None], float | None]:
    """Option callback: a number no smaller than ``least`` (NaN and infinity refused)."""

    def check(value: float | None) -> float | None:
        if value is not None and not least <= value < float("inf"):
            raise typer.BadParameter(f"{value} is not allowed: give {least} or more")
        return value

    return check


def more_than_zero(value: float | None) -> float | None:
    """Option callback: an amount that must be more than 0 (NaN and infinity refused)."""
    if value is not None and not 0 < value < float("inf"):
        raise typer.BadParameter(f"{value} is not allowed: give an amount more than 0")
    return value


def non_zero(value: float | None) -> float | None:
    """Option callback: a finite amount other than 0."""
    if value is not None and (value == 0 or value != value or abs(value) == float("inf")):
        raise typer.BadParameter(f"{value} is not allowed: give a finite amount other than 0")
    return value


def workflow_id_of(run: str) -> str:
    """A run's workflow id from what people type (``run-<request_id>`` or the request id)."""
    return run if run.startswith(contract.RUN_ID_PREFIX) else workflow_id_for(run)


def finish(report: RunReport, as_json: bool) -> None:
    """Print ``report`` and exit with its status's code."""
    if as_json:
        out.print_json(to_json(report))
    else:
        print_report(out, report)
    raise typer.Exit(EXIT_CODES[report.status])
