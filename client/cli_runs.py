"""``agentctl`` commands that start, follow and steer runs: run, watch, status, result,
approve, reject, extend-budget, cancel (and agents, to see what can be started)."""

import asyncio
import sys
from collections.abc import Awaitable, Callable

import typer

from client.api import AgentsClient
from client.cli_app import (
    EXIT_CODES,
    app,
    err,
    finish,
    out,
    run_async,
    workflow_id_of,
)
from client.follow import follow
from client.render import print_request, print_view, to_json
from domain.approvals import ApprovalRequest, BudgetExtension, Decision
from domain.budget import BudgetOverride
from domain.run import RunStatus, RunView

PANEL = "Run and steer"


@app.command(rich_help_panel=PANEL)
@run_async
async def agents(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the agents this client can start."""
    client = await AgentsClient.connect()
    specs = [client.catalog.plugin(n).build_spec() for n in client.catalog.names()]
    if as_json:
        out.print_json(
            to_json(
                [
                    {
                        "name": s.name,
                        "description": s.description,
                        "tools": [t.name for t in s.tools],
                    }
                    for s in specs
                ]
            )
        )
        return
    for s in specs:
        out.print(
            f"[bold]{s.name}[/]: {s.description} (tools: {', '.join(t.name for t in s.tools)})"
        )


@app.command(rich_help_panel=PANEL)
@run_async
async def run(
    agent: str,
    goal: str,
    budget_usd: float | None = typer.Option(None, help="Hard cost limit in USD."),
    max_iterations: int | None = typer.Option(None, help="Plan-execute rounds at most."),
    user: str = typer.Option("anonymous", help="Who the run is for (per-user limits)."),
    request_id: str | None = typer.Option(None, help="Idempotency key; repeats return the run."),
    model: str | None = typer.Option(None, help="Route every purpose to this model."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the run until it ends."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Start a run of AGENT towards GOAL."""
    client = await AgentsClient.connect()
    budget = BudgetOverride(max_cost_usd=budget_usd, max_iterations=max_iterations)
    handle = await client.start_run(
        agent, goal, request_id=request_id, user=user, budget=budget, model=model
    )
    if not wait:
        if as_json:
            out.print_json(
                to_json(
                    {
                        "workflow_id": handle.workflow_id,
                        "request_id": handle.request_id,
                        "agent": handle.agent,
                    }
                )
            )
        else:
            out.print(f"started {handle.workflow_id}")
        raise typer.Exit(EXIT_CODES[RunStatus.RUNNING])
    if not as_json:
        err.print(f"started {handle.workflow_id}")
    report = await follow(
        client,
        handle.workflow_id,
        on_view=None if as_json else lambda v: print_view(err, v),
        on_approval=_interactive_approval(client, handle.workflow_id, as_json),
    )
    finish(report, as_json)


def _interactive_approval(
    client: AgentsClient, workflow_id: str, quiet: bool
) -> Callable[[RunView, ApprovalRequest], Awaitable[None]]:
    async def on_approval(view: RunView, request: ApprovalRequest) -> None:
        print_request(err, workflow_id, request)
        if not sys.stdin.isatty():
            err.print("no terminal: waiting for the command above to be run elsewhere")
            return
        answer = await asyncio.to_thread(typer.confirm, f"Approve {request.what}?")
        decision = Decision(
            request_id=request.id,
            approver="cli-user",
            args_digest=request.args_digest,
            reason="approved at the terminal" if answer else "declined at the terminal",
        )
        await (client.approve if answer else client.reject)(workflow_id, decision)

    return on_approval


@app.command(rich_help_panel=PANEL)
@run_async
async def watch(
    run: str,
    as_json: bool = typer.Option(False, "--json", help="One JSON status object per line."),
) -> None:
    """Follow RUN live until it ends."""
    client = await AgentsClient.connect()
    wid = workflow_id_of(run)
    report = await follow(
        client,
        wid,
        on_view=(lambda v: print(v.model_dump_json(), flush=True))  # noqa: T201 - JSON lines
        if as_json
        else (lambda v: print_view(out, v)),
        on_approval=None if as_json else (lambda v, r: _print_request_async(wid, r)),
    )
    if as_json:
        print(report.model_dump_json(), flush=True)  # noqa: T201 - the last JSON line
        raise typer.Exit(EXIT_CODES[report.status])
    finish(report, False)


async def _print_request_async(workflow_id: str, request: ApprovalRequest) -> None:
    print_request(out, workflow_id, request)


@app.command(rich_help_panel=PANEL)
@run_async
async def status(run: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show where RUN stands (phase, budget, pending approvals)."""
    client = await AgentsClient.connect()
    view = await client.status(workflow_id_of(run))
    if as_json:
        out.print_json(to_json(view))
    else:
        print_view(out, view)
        for r in view.pending_approvals:
            print_request(out, view.workflow_id, r)
    raise typer.Exit(EXIT_CODES[view.status])


@app.command(rich_help_panel=PANEL)
@run_async
async def result(run: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Wait for RUN to end and print its report."""
    client = await AgentsClient.connect()
    finish(await client.result(workflow_id_of(run)), as_json)


async def _decide(
    run: str, request: str | None, reason: str, approver: str, approve: bool, as_json: bool
) -> None:
    client = await AgentsClient.connect()
    wid = workflow_id_of(run)
    view = await client.status(wid)
    pending = {r.id: r for r in view.pending_approvals}
    if request is None:
        if len(pending) != 1:
            raise LookupError(
                f"{len(pending)} pending requests on {wid}; name one of: "
                f"{', '.join(pending) or 'none'}"
            )
        request = next(iter(pending))
    target = pending.get(request)
    decision = Decision(
        request_id=request,
        approver=approver,
        reason=reason,
        args_digest=target.args_digest if target else None,
    )
    await (client.approve if approve else client.reject)(wid, decision)
    verb = "approved" if approve else "rejected"
    if as_json:
        out.print_json(
            to_json(
                {
                    "workflow_id": wid,
                    "request_id": request,
                    "decision": verb,
                    "approver": approver,
                    "reason": reason,
                }
            )
        )
    else:
        out.print(f"{verb} {request} on {wid} as {approver}")


@app.command(rich_help_panel=PANEL)
@run_async
async def approve(
    run: str,
    request: str | None = typer.Argument(None),
    reason: str = typer.Option("", "--reason"),
    as_: str = typer.Option("cli-user", "--as", help="Approver name."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Approve a pending request of RUN (the only one if REQUEST is omitted)."""
    await _decide(run, request, reason, as_, approve=True, as_json=as_json)


@app.command(rich_help_panel=PANEL)
@run_async
async def reject(
    run: str,
    request: str | None = typer.Argument(None),
    reason: str = typer.Option("", "--reason"),
    as_: str = typer.Option("cli-user", "--as", help="Approver name."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Reject a pending request of RUN; the reason goes to the planner."""
    await _decide(run, request, reason, as_, approve=False, as_json=as_json)


@app.command("extend-budget", rich_help_panel=PANEL)
@run_async
async def extend_budget(
    run: str,
    usd: float = typer.Option(..., "--usd"),
    reason: str = typer.Option("", "--reason"),
    as_: str = typer.Option("cli-user", "--as"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Grant RUN more budget."""
    client = await AgentsClient.connect()
    extension = BudgetExtension(approver=as_, add_usd=usd, reason=reason)
    await client.extend_budget(workflow_id_of(run), extension)
    if as_json:
        out.print_json(to_json({"workflow_id": workflow_id_of(run), **extension.model_dump()}))
    else:
        out.print(f"extended {workflow_id_of(run)} by ${usd:.2f}")


@app.command(rich_help_panel=PANEL)
@run_async
async def cancel(run: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Ask RUN to stop; it ends with a partial report."""
    client = await AgentsClient.connect()
    await client.cancel(workflow_id_of(run))
    if as_json:
        out.print_json(to_json({"workflow_id": workflow_id_of(run), "cancel_requested": True}))
    else:
        out.print(f"cancel requested for {workflow_id_of(run)}")
