"""``agentctl`` commands that operate a deployment: spend reports, retry and reset,
listing and exporting runs, replay checks before a deploy, the codec, a dev environment."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from durable_agents._cli.app import (
    app,
    at_least,
    connect_client,
    err,
    json_flag,
    out,
    run_argument,
    run_async,
    workflow_id_of,
)
from durable_agents._cli.render import print_runs, print_spend, to_json
from durable_agents._client.web_ui import status_clause
from durable_agents._domain import contract
from durable_agents._domain.run import RunStatus

PANEL = "Operate"


@app.command(rich_help_panel=PANEL)
@run_async
async def report(
    since: str = typer.Option("24h", help="Window: 30m, 24h, 7d, or an ISO date."),
    agent: str | None = typer.Option(None, "--agent", help="Only runs of this agent."),
    as_json: bool = json_flag("the report"),
) -> None:
    """Cost and tokens per agent, per user and per model over a time window."""
    from durable_agents._client.reports import spend_report

    start = _since(since)
    client = await connect_client()
    result = await spend_report(client, start, agent)
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
        raise typer.BadParameter(
            f"'{text}' is not like 30m, 24h, 7d or 2026-11-01", param_hint="'--since'"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command(rich_help_panel=PANEL)
@run_async
async def retry(run: str = run_argument(), as_json: bool = json_flag("the new run's id")) -> None:
    """Start a new run from RUN's request (for runs that failed or escalated)."""
    client = await connect_client()
    handle = await client.retry(workflow_id_of(run))
    if as_json:
        out.print_json(
            to_json({"workflow_id": handle.workflow_id, "retry_of": workflow_id_of(run)})
        )
    else:
        out.print(f"started {handle.workflow_id} (retry of {workflow_id_of(run)})")


@app.command(rich_help_panel=PANEL)
@run_async
async def reset(
    run: str = run_argument(),
    to_last_good: bool = typer.Option(
        True, "--to-last-good", help="Reset to just before the first failing step."
    ),
    reason: str = typer.Option("", "--reason", help="Why; recorded with the reset."),
    as_json: bool = json_flag("the new execution's id"),
) -> None:
    """Reset RUN to before its failing step; completed steps are not repeated."""
    client = await connect_client()
    run_id = await client.reset_to_last_good(workflow_id_of(run), reason)
    if as_json:
        out.print_json(to_json({"workflow_id": workflow_id_of(run), "run_id": run_id}))
    else:
        out.print(f"reset {workflow_id_of(run)}; new execution {run_id}")


@app.command("list", rich_help_panel=PANEL)
@run_async
async def list_runs(
    status_: RunStatus | None = typer.Option(
        None, "--status", case_sensitive=False, help="Only runs with this status."
    ),
    agent: str | None = typer.Option(None, "--agent", help="Only runs of this agent."),
    pending_approval: bool = typer.Option(
        False, "--pending-approval", help="Only running runs that wait for a decision."
    ),
    user: str | None = typer.Option(None, "--user", help="Only runs for this user."),
    min_cost: float | None = typer.Option(
        None,
        "--min-cost",
        callback=at_least(0),
        help="Only runs that cost at least this many USD (0 or more).",
    ),
    budget_alert: bool = typer.Option(False, "--budget-alert", help="Crossed the soft limit."),
    query: str | None = typer.Option(None, "--query", help="Extra visibility query."),
    limit: int = typer.Option(
        50, callback=at_least(1), help="At most this many runs, newest first (1 or more)."
    ),
    as_json: bool = json_flag("the runs"),
) -> None:
    """List runs, filtered by the search attributes."""
    client = await connect_client()
    clauses = [f"({query})"] if query else []
    if user:
        clauses.append(f"{contract.AGENT_USER} = '{_quoted(user)}'")
    if min_cost is not None:
        clauses.append(f"{contract.COST_USD} >= {float(min_cost)}")
    if budget_alert:
        clauses.append(f"{contract.BUDGET_ALERT} = true")
    if agent:
        clauses.append(f"{contract.AGENT_NAME} = '{_quoted(agent)}'")
    if pending_approval:  # a run that ended (terminated too) can take no decision
        clauses.append(f"{contract.PENDING_APPROVAL} = true AND ExecutionStatus = 'Running'")
    if status_ is not None:
        clauses.append(status_clause(status_))
    rows = await client.list_run_rows(" AND ".join(clauses), limit=limit)
    if as_json:
        out.print_json(to_json([r.workflow_id for r in rows]))
        return
    print_runs(out, rows)
    if (url := client.web_ui_list_url(*clauses)) is None:
        return
    out.print(f"In the Web UI: {url}", markup=False, soft_wrap=True)
    if status_ is None and rows:  # the UI's list says "Completed" for every ended run
        out.print("By status (the Web UI lists each apart):", markup=False)
        shown = {r.status for r in rows}
        for s in (s for s in RunStatus if s.value in shown):
            link = client.web_ui_list_url(*clauses, status_clause(s))
            out.print(f"  {s.value}: {link}", markup=False, soft_wrap=True)


@app.command(rich_help_panel=PANEL)
@run_async
async def history(
    run: str = run_argument(),
    out_file: Path = typer.Option(..., "--out", help="JSON file to write.", show_default=False),
    as_json: bool = json_flag("what was written"),
) -> None:
    """Export RUN's history (for replay tests or the Web UI's import)."""
    from durable_agents._workers.replay import export_history

    client = await connect_client()
    events = await export_history(client.temporal, workflow_id_of(run), out_file)
    if as_json:
        out.print_json(
            to_json({"workflow_id": workflow_id_of(run), "events": events, "path": str(out_file)})
        )
    else:
        err.print(f"wrote {events} events of {workflow_id_of(run)} to {out_file}")


@app.command("replay-check", rich_help_panel=PANEL)
@run_async
async def replay_check(
    run: list[str] = typer.Argument(None, help="Runs to check (default: --open)."),
    open_: bool = typer.Option(False, "--open", help=f"Every {contract.AGENT_RUN} still running."),
    history_file: list[Path] = typer.Option([], "--history", help="Exported history files."),
    as_json: bool = json_flag("each run's outcome"),
) -> None:
    """Replay runs against the current code: would deploying it break them?"""
    from durable_agents._workers.replay import load_history, open_runs, replay_history, replay_runs

    client = await connect_client()
    ids = [workflow_id_of(r) for r in run or []]
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


@app.command("codec-key", rich_help_panel=PANEL)
def codec_key() -> None:
    """Print a new random AES-256 key for AGENT_CODEC_KEYS (as key_id:base64key)."""
    from durable_agents._infra.codec import new_key

    out.print(f"k{datetime.now(UTC):%Y%m%d}:{new_key()}")


@app.command("serve-events", rich_help_panel=PANEL)
@run_async
async def serve_events(
    port: int = typer.Option(8787, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Bind address (keep it local without a proxy)."),
) -> None:
    """Serve runs' events as Server-Sent Events: GET /runs/RUN/events (Last-Event-ID resumes)."""
    from durable_agents._cli.prompt import detach_on_ctrl_c
    from durable_agents._client.event_server import EventServer

    client = await connect_client()
    server = await EventServer(client, host=host, port=port).start()
    out.print(f"events of RUN at {server.url}/runs/RUN/events · Ctrl-C to stop", highlight=False)
    try:
        async with detach_on_ctrl_c() as pressed:
            await pressed.wait()
    finally:
        await server.close()


@app.command("codec-server", rich_help_panel=PANEL)
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
    from durable_agents._infra.codec import CodecKeyError, EncryptionCodec
    from durable_agents._infra.codec_server import CodecServer

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


@app.command(rich_help_panel=PANEL)
def dev(
    keep_worker: bool = typer.Option(
        True, "--worker/--no-worker", help="Also run a worker in this process."
    ),
    port: int | None = typer.Option(
        None,
        "--port",
        callback=at_least(1),
        help="Temporal's port on 127.0.0.1 (default: TEMPORAL_ADDRESS to reuse a server, "
        "else 7233). A Temporal server already there is reused.",
    ),
    ui_port: int | None = typer.Option(
        None, "--ui-port", callback=at_least(1), help="The Web UI's port (default: 8233)."
    ),
) -> None:
    """Start the dev server (Web UI on :8233) and a worker; Ctrl-C stops both."""
    from durable_agents._devtools.dev_server import DevServerError
    from durable_agents._devtools.devenv import BusyPortError, run_dev
    from durable_agents._devtools.temporal_cli import TemporalCliNotFoundError

    try:
        asyncio.run(run_dev(with_worker=keep_worker, port=port, ui_port=ui_port))
    except BusyPortError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    except (DevServerError, TemporalCliNotFoundError, ConnectionError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
