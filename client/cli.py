"""``agentctl``: start, follow, approve and inspect agent runs from a terminal.

Exit codes: 0 completed · 1 error · 2 usage · 3 failed · 4 escalated ·
5 budget_exhausted · 6 cancelled · 7 still running (``--no-wait``, ``status``).
"""

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from temporalio.service import RPCError, RPCStatusCode

from client.api import AgentsClient, InvalidRunRequestError
from client.follow import follow
from client.render import print_report, print_request, print_spend, print_view, to_json
from domain.approvals import ApprovalRequest, BudgetExtension, Decision
from domain.budget import BudgetOverride
from domain.run import RunReport, RunStatus, RunView

EXIT_CODES = {
    RunStatus.COMPLETED: 0,
    RunStatus.FAILED: 3,
    RunStatus.ESCALATED: 4,
    RunStatus.BUDGET_EXHAUSTED: 5,
    RunStatus.CANCELLED: 6,
    RunStatus.RUNNING: 7,
    RunStatus.AWAITING_APPROVAL: 7,
}

app = typer.Typer(
    help="Run and steer durable AI agents on Temporal.", no_args_is_help=True, add_completion=False
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
P = ParamSpec("P")
T = TypeVar("T")


def run_async(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Run an async command; turn expected errors into one clear line and exit code 1."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return asyncio.run(fn(*args, **kwargs))
        except (InvalidRunRequestError, ConnectionError, LookupError) as e:
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


def _workflow_id(run: str) -> str:
    return run if run.startswith("run-") else f"run-{run}"


def _finish(report: RunReport, as_json: bool) -> None:
    if as_json:
        out.print_json(to_json(report))
    else:
        print_report(out, report)
    raise typer.Exit(EXIT_CODES[report.status])


@app.command()
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


@app.command()
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
    _finish(report, as_json)


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


@app.command()
@run_async
async def watch(
    run: str,
    as_json: bool = typer.Option(False, "--json", help="One JSON status object per line."),
) -> None:
    """Follow RUN live until it ends."""
    client = await AgentsClient.connect()
    wid = _workflow_id(run)
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
    _finish(report, False)


async def _print_request_async(workflow_id: str, request: ApprovalRequest) -> None:
    print_request(out, workflow_id, request)


@app.command()
@run_async
async def status(run: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show where RUN stands (phase, budget, pending approvals)."""
    client = await AgentsClient.connect()
    view = await client.status(_workflow_id(run))
    if as_json:
        out.print_json(to_json(view))
    else:
        print_view(out, view)
        for r in view.pending_approvals:
            print_request(out, view.workflow_id, r)
    raise typer.Exit(EXIT_CODES[view.status])


@app.command()
@run_async
async def result(run: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Wait for RUN to end and print its report."""
    client = await AgentsClient.connect()
    _finish(await client.result(_workflow_id(run)), as_json)


async def _decide(
    run: str, request: str | None, reason: str, approver: str, approve: bool, as_json: bool
) -> None:
    client = await AgentsClient.connect()
    wid = _workflow_id(run)
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


@app.command()
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


@app.command()
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


@app.command("extend-budget")
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
    await client.extend_budget(_workflow_id(run), extension)
    if as_json:
        out.print_json(to_json({"workflow_id": _workflow_id(run), **extension.model_dump()}))
    else:
        out.print(f"extended {_workflow_id(run)} by ${usd:.2f}")


@app.command()
@run_async
async def cancel(run: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Ask RUN to stop; it ends with a partial report."""
    client = await AgentsClient.connect()
    await client.cancel(_workflow_id(run))
    if as_json:
        out.print_json(to_json({"workflow_id": _workflow_id(run), "cancel_requested": True}))
    else:
        out.print(f"cancel requested for {_workflow_id(run)}")


@app.command()
@run_async
async def report(
    since: str = typer.Option("24h", help="Window: 30m, 24h, 7d, or an ISO date."),
    agent: str | None = typer.Option(None, "--agent"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Cost and tokens per agent, per user and per model over a time window."""
    from client.reports import spend_report

    client = await AgentsClient.connect()
    result = await spend_report(client, _since(since), agent)
    if as_json:
        out.print_json(result.model_dump_json())
    else:
        print_spend(out, result)


def _quoted(value: str) -> str:
    """A value safe inside a single-quoted visibility query literal."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _since(text: str) -> datetime:
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not like 30m, 24h, 7d or 2026-11-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
@run_async
async def retry(run: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Start a new run from RUN's request (for runs that failed or escalated)."""
    client = await AgentsClient.connect()
    handle = await client.retry(_workflow_id(run))
    if as_json:
        out.print_json(to_json({"workflow_id": handle.workflow_id, "retry_of": _workflow_id(run)}))
    else:
        out.print(f"started {handle.workflow_id} (retry of {_workflow_id(run)})")


@app.command()
@run_async
async def reset(
    run: str,
    to_last_good: bool = typer.Option(
        True, "--to-last-good", help="Reset to just before the first failing step."
    ),
    reason: str = typer.Option("", "--reason"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Reset RUN to before its failing step; completed steps are not repeated."""
    client = await AgentsClient.connect()
    run_id = await client.reset_to_last_good(_workflow_id(run), reason)
    if as_json:
        out.print_json(to_json({"workflow_id": _workflow_id(run), "run_id": run_id}))
    else:
        out.print(f"reset {_workflow_id(run)}; new execution {run_id}")


@app.command("list")
@run_async
async def list_runs(
    status_: str | None = typer.Option(None, "--status"),
    agent: str | None = typer.Option(None, "--agent"),
    pending_approval: bool = typer.Option(False, "--pending-approval"),
    user: str | None = typer.Option(None, "--user"),
    min_cost: float | None = typer.Option(None, "--min-cost", help="CostUsd >= this."),
    budget_alert: bool = typer.Option(False, "--budget-alert", help="Crossed the soft limit."),
    query: str | None = typer.Option(None, "--query", help="Extra visibility query."),
    limit: int = typer.Option(50),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List runs, filtered by the search attributes."""
    client = await AgentsClient.connect()
    clauses = [f"({query})"] if query else []
    if user:
        clauses.append(f"AgentUser = '{_quoted(user)}'")
    if min_cost is not None:
        clauses.append(f"CostUsd >= {float(min_cost)}")
    if budget_alert:
        clauses.append("BudgetAlert = true")
    if status_:
        clauses.append(f"AgentStatus = '{RunStatus(status_).value}'")
    if agent:
        clauses.append(f"AgentName = '{_quoted(agent)}'")
    if pending_approval:
        clauses.append("PendingApproval = true")
    ids = await client.list_runs(" AND ".join(clauses), limit=limit)
    if as_json:
        out.print_json(to_json(list(ids)))
    else:
        for wid in ids:
            out.print(wid)


@app.command()
@run_async
async def history(
    run: str,
    out_file: Path = typer.Option(..., "--out", help="JSON file to write."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Export RUN's history (for replay tests or the Web UI's import)."""
    from workers.replay import export_history

    client = await AgentsClient.connect()
    events = await export_history(client.temporal, _workflow_id(run), out_file)
    if as_json:
        out.print_json(
            to_json({"workflow_id": _workflow_id(run), "events": events, "path": str(out_file)})
        )
    else:
        err.print(f"wrote {events} events of {_workflow_id(run)} to {out_file}")


@app.command("replay-check")
@run_async
async def replay_check(
    run: list[str] = typer.Argument(None, help="Runs to check (default: --open)."),
    open_: bool = typer.Option(False, "--open", help="Every AgentRun still running."),
    history_file: list[Path] = typer.Option([], "--history", help="Exported history files."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Replay runs against the current code: would deploying it break them?"""
    from workers.replay import load_history, open_runs, replay_history, replay_runs

    client = await AgentsClient.connect()
    ids = [_workflow_id(r) for r in run or []]
    if open_ or not (ids or history_file):
        ids += await open_runs(client.temporal)
    outcomes = await replay_runs(client.temporal, ids)
    outcomes += [await replay_history(load_history(p)) for p in history_file]
    broken = [o for o in outcomes if not o.ok]
    if as_json:
        out.print_json(to_json([o.__dict__ for o in outcomes]))
    else:
        for o in outcomes:
            out.print(
                f"{'ok   ' if o.ok else '[red]BREAK[/]'} {o.workflow_id}"
                + (f": {o.error}" if o.error else "")
            )
        out.print(f"{len(outcomes)} checked, {len(broken)} would break")
    raise typer.Exit(1 if broken else 0)


@app.command("codec-key")
def codec_key() -> None:
    """Print a new random AES-256 key for AGENT_CODEC_KEYS (as key_id:base64key)."""
    from client.codec import new_key

    out.print(f"k{datetime.now(UTC):%Y%m%d}:{new_key()}")


@app.command("codec-server")
def codec_server(
    port: int = typer.Option(8081, help="Port on 127.0.0.1."),
    host: str = typer.Option("127.0.0.1", help="Bind address (keep it local without TLS)."),
    origin: list[str] = typer.Option(
        ["http://127.0.0.1:8233", "http://localhost:8233"], help="Web UI origins (CORS)."
    ),
    token: str | None = typer.Option(
        None, envvar="AGENT_CODEC_TOKEN", help="Require 'Authorization: Bearer TOKEN'."
    ),
) -> None:
    """Serve /encode and /decode so the Web UI shows decrypted payloads."""
    from client.codec import CodecKeyError, EncryptionCodec
    from client.codec_server import CodecServer

    try:
        codec = EncryptionCodec.from_env()
    except CodecKeyError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    if codec is None:
        err.print("[red]error:[/] set AGENT_CODEC_KEYS (make a key with: agentctl codec-key)")
        raise typer.Exit(1)
    server = CodecServer(codec, host=host, port=port, origins=origin, token=token)
    out.print(
        f"codec server on {server.url} · start the UI with "
        f"--ui-codec-endpoint {server.url} · Ctrl-C to stop"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()


@app.command()
def dev(keep_worker: bool = typer.Option(True, "--worker/--no-worker")) -> None:
    """Start the dev server (Web UI on :8233) and a worker; Ctrl-C stops both."""
    from client.devenv import run_dev

    asyncio.run(run_dev(with_worker=keep_worker))


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
