"""``make demo``: run the db-tuner agent end to end on the embedded dev server.

Generates a fresh shop database (every time, so the agent finds the same slow queries and
unused index and asks again), starts (or reuses) the dev server and a worker, runs
``db-tuner``, and at the ``drop_index`` checkpoint asks a terminal user y/N. The prompt
gives way if the request is decided elsewhere (``agentctl approve``, its deadline); one
Ctrl-C leaves the run waiting and prints the command that answers it. Without a terminal
it prints the request and approves as user ``demo``, so it never hangs. Without
``OPENAI_API_KEY`` the deterministic offline model plays the agent.
"""

import argparse
import asyncio
import getpass
import logging
import os
import sys
import uuid
from pathlib import Path

from rich.console import Console

from durable_agents._activities.plugins import EXAMPLE_PLUGINS
from durable_agents._cli.follow import decided_elsewhere, detached, follow
from durable_agents._cli.prompt import Overtaken, ask_yes_no, detach_on_ctrl_c, until_detached
from durable_agents._cli.render import print_report, print_request, print_view
from durable_agents._client.api import AgentsClient
from durable_agents._devtools.dev_server import DevServerError
from durable_agents._devtools.devenv import BusyPortError, dev_environment
from durable_agents._devtools.temporal_cli import TemporalCliNotFoundError
from durable_agents._domain.approvals import ApprovalRequest, Decision
from durable_agents._domain.run import RunStatus, RunView
from durable_agents._infra.logs import configure_logging
from examples.db_tuner.data import default_db_path, generate

GOAL = "Make the queries in the slow query log fast, and clean up indexes nothing uses."
console = Console(soft_wrap=True)


async def _demo(data_dir: Path, keep_server: bool, port: int | None, ui_port: int | None) -> int:
    db = default_db_path(data_dir)
    console.print(f"generating a fresh demo shop database at {db} …")
    await asyncio.to_thread(generate, db)
    offline = not os.environ.get("OPENAI_API_KEY")
    async with dev_environment(
        data_dir, keep_server=keep_server, port=port, ui_port=ui_port
    ) as env:
        agents = AgentsClient(env.client, env.settings.temporal.task_queue, env.ui_url)
        handle = await agents.start_run(
            "db-tuner", GOAL, request_id=f"demo-{uuid.uuid4().hex[:8]}", user="demo"
        )
        console.print(
            f"run {handle.workflow_id} started "
            f"({'offline model' if offline else 'OpenAI-compatible model'})"
        )
        story = await agents.web_ui_url(handle.workflow_id)
        console.print(f"watch it live: {story}\n", markup=False)

        approver = getpass.getuser() if sys.stdin.isatty() else "demo"

        async def on_approval(view: RunView, request: ApprovalRequest) -> None:
            print_request(console, handle.workflow_id, request, view)
            if sys.stdin.isatty():
                answer = await ask_yes_no(
                    console,
                    f"Approve {request.what} as {approver}?",
                    elsewhere=decided_elsewhere(agents, handle.workflow_id, request.id),
                )
                if isinstance(answer, Overtaken):
                    return
                approve, reason = answer.yes, "answered at the terminal"
            else:
                approve, reason = True, "no terminal: the demo approves"
                console.print(f"no terminal: approving as '{approver}'")
            decision = Decision(
                request_id=request.id,
                approver=approver,
                reason=reason,
                args_digest=request.args_digest,
            )
            await (agents.approve if approve else agents.reject)(handle.workflow_id, decision)

        async with detach_on_ctrl_c() as pressed:
            followed = await until_detached(
                follow(
                    agents,
                    handle.workflow_id,
                    on_view=lambda v: print_view(console, v),
                    on_approval=on_approval,
                ),
                pressed,
            )
        if followed is None:
            console.print()
            console.print(await detached(agents, handle.workflow_id), markup=False)
            console.print(
                "(with the dev server stopped, the run waits in .data/temporal.db: "
                "`agentctl dev` brings it back)"
                if env.server is not None and not keep_server
                else ""
            )
            return 130
        report = followed
        print_report(console, report)
        console.print(
            f"\nOpen the run in the Web UI: {await agents.web_ui_url(handle.workflow_id)}",
            markup=False,
        )
        if keep_server and env.server is not None:
            console.print("the dev server keeps running (Ctrl-C to stop it)")
            await _wait_forever()
        elif env.server is not None:
            console.print(
                "stopping the dev server (run `make demo DEMO_ARGS=--keep-server` "
                "or `agentctl dev` to keep it up and browse the UI)"
            )
    return 0 if report.status is RunStatus.COMPLETED else 1


async def _wait_forever() -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        return


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m examples.demo``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument(
        "--keep-server",
        action="store_true",
        help="keep the dev server (and Web UI) up after the run",
    )
    parser.add_argument(
        "--port", type=int, help="Temporal's port (default: TEMPORAL_ADDRESS, else 7233)"
    )
    parser.add_argument("--ui-port", type=int, help="the Web UI's port (default: 8233)")
    args = parser.parse_args(argv)
    # Worker logs would interleave with the demo's story; warnings and errors still show.
    configure_logging(logging.WARNING)
    # The demo's worker serves the repository's example agents (and any you add).
    os.environ.setdefault("AGENT_PLUGINS", EXAMPLE_PLUGINS)
    try:
        return asyncio.run(_demo(args.data_dir, args.keep_server, args.port, args.ui_port))
    except BusyPortError as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        return 2
    except (DevServerError, TemporalCliNotFoundError, ConnectionError) as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    from durable_agents._cli.process_exit import exit_now

    exit_now(main())
