"""``agentctl`` commands that start, follow and steer runs: run, watch, status, result,
approve, reject, extend-budget, cancel (and agents, to see what can be started)."""

import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta

import typer
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._cli.app import (
    EXIT_CODES,
    app,
    at_least,
    connect_client,
    err,
    finish,
    json_flag,
    more_than_zero,
    out,
    run_argument,
    run_async,
    workflow_id_of,
)
from durable_agents._cli.follow import decided_elsewhere, detached, follow
from durable_agents._cli.prompt import Overtaken, ask_yes_no, detach_on_ctrl_c, until_detached
from durable_agents._cli.render import (
    IDENTITY_NOT_VERIFIED,
    mcp_server_line,
    print_request,
    print_view,
    to_json,
)
from durable_agents._cli.watch import (
    WatchPosition,
    WatchView,
    load_position,
    print_json_events,
    show_events,
)
from durable_agents._client.api import AgentsClient, DecisionRefusedError, RunEndedError
from durable_agents._client.events import parse_cursor
from durable_agents._domain.approvals import (
    ApprovalRequest,
    BudgetExtension,
    Decision,
    DecisionAnswer,
)
from durable_agents._domain.budget import BudgetOverride
from durable_agents._domain.run import RunStatus, RunView

PANEL = "Run and steer"


@app.command(rich_help_panel=PANEL)
@run_async
async def agents(
    as_json: bool = json_flag("the agents"),
    wait: float = typer.Option(
        15.0, "--wait", callback=more_than_zero, help="Seconds to wait for a worker to answer."
    ),
) -> None:
    """List the agents the workers on the task queue serve (a worker answers)."""
    client = await AgentsClient.connect()
    summaries = await client.agents(timedelta(seconds=wait))
    if as_json:
        out.print_json(to_json([s.model_dump(mode="json") for s in summaries]))
        return
    for s in summaries:
        out.print(f"[bold]{s.name}[/]: {s.description} (tools: {', '.join(s.tools)})")
        for server in s.mcp_servers:
            out.print(f"  {mcp_server_line(server)}", markup=False, soft_wrap=True)
    if not summaries:
        out.print(f"the workers on task queue '{client.task_queue}' serve no agents")


@app.command(rich_help_panel=PANEL)
@run_async
async def run(
    agent: str = typer.Argument(..., help="The agent to run (see `agentctl agents`)."),
    goal: str = typer.Argument(..., help="What the agent should achieve, in words."),
    budget_usd: float | None = typer.Option(
        None,
        callback=at_least(0),
        help="Hard cost limit in USD (0 or more; within the agent's bounds).",
    ),
    max_iterations: int | None = typer.Option(
        None, callback=at_least(1), help="Plan-execute rounds at most (1 or more)."
    ),
    user: str = typer.Option("anonymous", help="Who the run is for (per-user limits)."),
    request_id: str | None = typer.Option(None, help="Idempotency key; repeats return the run."),
    model: str | None = typer.Option(None, help="Route every purpose to this model."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the run until it ends."),
    as_: str = typer.Option(
        None, "--as", help="Who answers approvals at the prompt (default: your login name)."
    ),
    as_json: bool = json_flag("the final report (or, with --no-wait, the run's ids)"),
) -> None:
    """Start a run of AGENT towards GOAL."""
    client = await connect_client()
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
        if url := await client.web_ui_url(handle.workflow_id):
            err.print(f"its story in the Web UI: {url}", markup=False, soft_wrap=True)
        if handle.admitted is None:
            err.print(
                f"[yellow]no worker has picked it up yet[/]: is an agent-worker polling task "
                f"queue '{client.task_queue}'? (`make worker`); waiting"
            )
    async with detach_on_ctrl_c() as pressed:
        report = await until_detached(
            follow(
                client,
                handle.workflow_id,
                on_view=None if as_json else lambda v: print_view(err, v),
                on_approval=_interactive_approval(client, handle.workflow_id, as_ or _login()),
            ),
            pressed,
        )
    if report is None:
        err.print(await detached(client, handle.workflow_id))
        raise typer.Exit(EXIT_CODES[RunStatus.RUNNING])
    finish(report, as_json)


def _login() -> str:
    """The default approver name: who is at the keyboard."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli-user"


def _interactive_approval(
    client: AgentsClient, workflow_id: str, approver: str
) -> Callable[[RunView, ApprovalRequest], Awaitable[None]]:
    async def on_approval(view: RunView, request: ApprovalRequest) -> None:
        print_request(err, workflow_id, request, view)
        if not sys.stdin.isatty():
            err.print("no terminal: waiting for the command above to be run elsewhere")
            return
        answer = await ask_yes_no(
            err,
            f"Approve {request.what} as {approver}?",
            elsewhere=decided_elsewhere(client, workflow_id, request.id),
        )
        if isinstance(answer, Overtaken):
            return
        decision = Decision(
            request_id=request.id,
            approver=approver,
            args_digest=request.args_digest,
            reason="approved at the terminal" if answer.yes else "declined at the terminal",
        )
        try:
            said = await (client.approve if answer.yes else client.reject)(workflow_id, decision)
        except DecisionRefusedError as e:
            err.print(f"[red]refused:[/] {e}")
            who = ", ".join(view.approvers) or "anyone"
            err.print(
                f"{workflow_id} keeps waiting for a decision on {request.id} by {who}: "
                f"agentctl approve {workflow_id} {request.id} --as NAME"
            )
            return
        except RunEndedError as e:
            err.print(f"[yellow]{e}[/]")
            return
        err.print(_said(said, workflow_id))

    return on_approval


@app.command(rich_help_panel=PANEL)
@run_async
async def watch(
    run: str = run_argument(),
    as_json: bool = typer.Option(False, "--json", help="One JSON event per line, then the report."),
    from_offset: str | None = typer.Option(
        None,
        "--from-offset",
        help="Start at this offset, or (--json) at a JSON line's cursor (by default: where "
        "the last watch of RUN stopped).",
    ),
) -> None:
    """Follow RUN live until it ends: its steps, and its models' text as it is written.

    Ctrl-C detaches; ``agentctl watch RUN`` again goes on where it stopped.
    """
    client = await connect_client()
    wid = workflow_id_of(run)
    cursor = parse_cursor(from_offset) if from_offset is not None else None
    start = cursor[0] if cursor is not None else None
    if as_json:
        async with detach_on_ctrl_c() as pressed:
            ended = await until_detached(print_json_events(client, wid, from_offset or 0), pressed)
        if ended is None:
            err.print(await detached(client, wid))
            raise typer.Exit(EXIT_CODES[RunStatus.RUNNING])
        report = await client.result(wid)
        print(report.model_dump_json(), flush=True)  # noqa: T201 - the last JSON line
        raise typer.Exit(EXIT_CODES[report.status])
    position = (
        load_position(wid)
        if start is None
        else WatchPosition(printed_upto=start, replay_from=start)
    )
    view = WatchView(out, wid, position)
    with view.live:
        async with detach_on_ctrl_c() as pressed:
            ended = await until_detached(show_events(client, wid, view), pressed)
    if ended is None:
        err.print(await detached(client, wid))
        err.print(
            f"(at event {view.position.printed_upto}; `agentctl watch {wid}` goes on from there)"
        )
        raise typer.Exit(EXIT_CODES[RunStatus.RUNNING])
    finish(await client.result(wid), False)


async def _print_request_async(workflow_id: str, request: ApprovalRequest, view: RunView) -> None:
    print_request(out, workflow_id, request, view)


@app.command(rich_help_panel=PANEL)
@run_async
async def status(run: str = run_argument(), as_json: bool = json_flag("the status")) -> None:
    """Show where RUN stands (phase, budget, pending approvals)."""
    client = await connect_client()
    view = await client.status(workflow_id_of(run))
    if as_json:
        out.print_json(to_json(view))
    else:
        print_view(out, view)
        if view.spec_hash:
            models = ", ".join(view.models) or "none"
            out.print(f"[dim]agent {view.agent} · models {models} · spec {view.spec_hash[:12]}[/]")
        if not view.identity_verified:
            out.print(f"[yellow]{IDENTITY_NOT_VERIFIED}[/]")
        for r in view.pending_approvals:
            print_request(out, view.workflow_id, r, view)
        for r in view.closed:
            out.print(f"request {r.id} ({r.what}) closed: {r.reason}; nobody can answer it now")
        if url := await client.web_ui_url(view.workflow_id):
            out.print(f"Web UI: {url}", markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_CODES[view.status])


@app.command(rich_help_panel=PANEL)
@run_async
async def result(run: str = run_argument(), as_json: bool = json_flag("the report")) -> None:
    """Wait for RUN to end and print its report."""
    client = await connect_client()
    finish(await client.result(workflow_id_of(run)), as_json)


async def _decide(
    run: str, request: str | None, reason: str, approver: str, approve: bool, as_json: bool
) -> None:
    client = await connect_client()
    wid = workflow_id_of(run)
    # The decision carries the digest of the arguments asked about, so it is read from
    # the run whether or not the request is named (--json included).
    view = await _live_view(client, wid)
    pending = {r.id: r for r in view.pending_approvals}
    if request is None:
        if len(pending) != 1:
            raise LookupError(
                f"{len(pending)} pending requests on {wid}; name one of: "
                f"{', '.join(pending) or 'none'}"
            )
        request = next(iter(pending))
    digest = pending[request].args_digest if request in pending else None
    decision = Decision(request_id=request, approver=approver, reason=reason, args_digest=digest)
    said = await (client.approve if approve else client.reject)(wid, decision)
    if as_json:
        out.print_json(to_json({"workflow_id": wid, **said.model_dump(mode="json")}))
    else:
        out.print(_said(said, wid))


async def _live_view(client: AgentsClient, wid: str) -> RunView:
    """The run's status; a run that has ended says so (exit 9) instead of 'no such run'."""
    try:
        return await client.status(wid)
    except RPCError as e:
        if e.status is RPCStatusCode.NOT_FOUND:
            raise await client.ended(wid) from None
        raise


def _said(said: DecisionAnswer, wid: str) -> str:
    """What the run did with a decision, in words."""
    who = said.decided_by + ("" if said.identity_verified else " (identity not verified)")
    if said.request_id is None:
        return f"{wid}: {said.detail}, granted by {who}"
    return f"{wid}: request {said.request_id} {said.state} by {who}: {said.detail}"


@app.command(rich_help_panel=PANEL)
@run_async
async def approve(
    run: str = run_argument(),
    request: str | None = typer.Argument(None, help="The request id (e.g. a1)."),
    reason: str = typer.Option("", "--reason", help="Why; recorded in the audit trail."),
    as_: str = typer.Option(None, "--as", help="Approver name (default: your login name)."),
    as_json: bool = typer.Option(False, "--json", help="Print what the run did as JSON."),
) -> None:
    """Approve a pending request of RUN (the only one if REQUEST is omitted)."""
    await _decide(run, request, reason, as_ or _login(), approve=True, as_json=as_json)


@app.command(rich_help_panel=PANEL)
@run_async
async def reject(
    run: str = run_argument(),
    request: str | None = typer.Argument(None, help="The request id (e.g. a1)."),
    reason: str = typer.Option("", "--reason", help="Why; the planner reads it."),
    as_: str = typer.Option(None, "--as", help="Approver name (default: your login name)."),
    as_json: bool = typer.Option(False, "--json", help="Print what the run did as JSON."),
) -> None:
    """Reject a pending request of RUN; the reason goes to the planner."""
    await _decide(run, request, reason, as_ or _login(), approve=False, as_json=as_json)


@app.command("extend-budget", rich_help_panel=PANEL)
@run_async
async def extend_budget(
    run: str = run_argument(),
    usd: float = typer.Option(
        ..., "--usd", callback=more_than_zero, help="USD to add (more than 0).", show_default=False
    ),
    reason: str = typer.Option("", "--reason", help="Why; recorded in the audit trail."),
    as_: str = typer.Option(None, "--as", help="Approver name (default: your login name)."),
    as_json: bool = typer.Option(False, "--json", help="Print what the run did as JSON."),
) -> None:
    """Grant RUN more budget (within the agent's policy)."""
    client = await connect_client()
    wid = workflow_id_of(run)
    await _live_view(client, wid)
    said = await client.extend_budget(
        wid, BudgetExtension(approver=as_ or _login(), add_usd=usd, reason=reason)
    )
    if as_json:
        out.print_json(to_json({"workflow_id": wid, **said.model_dump(mode="json")}))
    else:
        out.print(_said(said, wid))


@app.command(rich_help_panel=PANEL)
@run_async
async def cancel(run: str = run_argument(), as_json: bool = json_flag("what was done")) -> None:
    """Ask RUN to stop; it ends with a partial report."""
    client = await connect_client()
    await client.cancel(workflow_id_of(run))
    if as_json:
        out.print_json(to_json({"workflow_id": workflow_id_of(run), "cancel_requested": True}))
    else:
        out.print(f"cancel requested for {workflow_id_of(run)}")
