"""``agentctl rollout``: a canary rollout of a new worker version, on numbers, with a way back."""

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from durable_agents._cli.app import app, connect_client, json_flag, out, run_async
from durable_agents._cli.render import to_json
from durable_agents._client.rollout import Rollout
from durable_agents._domain.rollout import RolloutStatus

PANEL = "Change an agent safely"
rollout_app = typer.Typer(
    help="Send a share of new runs to a new worker version, promote it, or roll back.",
    no_args_is_help=True,
)
app.add_typer(rollout_app, name="rollout", rich_help_panel=PANEL)


def _deployment() -> Any:
    return typer.Option(
        "agents",
        "--deployment",
        envvar="AGENT_DEPLOYMENT",
        help="The Worker Deployment (the workers' AGENT_DEPLOYMENT).",
    )


async def _rollout(deployment: str) -> Rollout:
    client = await connect_client()
    return Rollout(client.temporal, deployment)


def print_status(status: RolloutStatus) -> None:
    """Where new runs go, and a row per version."""
    ramp = f", {status.ramp_percent:g}% to {status.ramping}" if status.ramping else ", no ramp"
    current = status.current or "unversioned"
    out.print(f"deployment {escape(status.deployment)}: new runs to {escape(current)}{ramp}")
    table = Table()
    for column in ("version", "role", "in flight", "finished", "completed", "cost", "failures"):
        table.add_column(column)
    for v in status.versions:
        failures = ", ".join(f"{k} {n}" for k, n in v.failures.items()) or "none"
        rate = f" ({v.success_rate:.0%})" if v.success_rate is not None else ""
        table.add_row(
            escape(v.build_id),
            v.role + (f" {v.ramp_percent:g}%" if v.ramp_percent else ""),
            str(v.running),
            str(v.finished),
            f"{v.completed}{rate}",
            f"${v.cost_usd:.4f}",
            escape(failures),
        )
    out.print(table)


@rollout_app.command("status")
@run_async
async def status(deployment: str = _deployment(), as_json: bool = json_flag("the figures")) -> None:
    """Per version: its role, runs in flight, and how its finished runs ended and cost."""
    figures = await (await _rollout(deployment)).status()
    if as_json:
        out.print_json(to_json(figures))
    else:
        print_status(figures)


@rollout_app.command("ramp")
@run_async
async def ramp(
    percent: float = typer.Argument(..., help="The share of new runs, more than 0, up to 100."),
    build_id: str | None = typer.Option(
        None, help="The version to ramp (default: the newest that is not current)."
    ),
    deployment: str = _deployment(),
) -> None:
    """Send PERCENT of new runs to a new version; runs in flight stay where they are."""
    target = await (await _rollout(deployment)).ramp(percent, build_id)
    out.print(f"{percent:g}% of new runs of {escape(deployment)} now go to {escape(target)}")


@rollout_app.command("promote")
@run_async
async def promote(
    build_id: str | None = typer.Option(
        None, help="The version to make current (default: the ramping one)."
    ),
    deployment: str = _deployment(),
) -> None:
    """Make a version current: every new run goes to it."""
    target = await (await _rollout(deployment)).promote(build_id)
    out.print(f"every new run of {escape(deployment)} now goes to {escape(target)}")


@rollout_app.command("rollback")
@run_async
async def rollback(
    to: str | None = typer.Option(
        None, help="The version to make current (default: end the ramp, else the previous one)."
    ),
    deployment: str = _deployment(),
) -> None:
    """Send new runs back at once; runs in flight finish on the version they started on."""
    target = await (await _rollout(deployment)).rollback(to)
    out.print(f"every new run of {escape(deployment)} now goes to {escape(target)}")
