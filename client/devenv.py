"""The embedded default: a local dev server (SQLite under ``.data/``, Web UI on :8233)
plus a worker, for ``agentctl dev`` and ``make demo``.

If a server already answers on the address (one you kept running to browse the UI), it
is reused and left running; otherwise one is started and stopped again at the end.
"""

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from temporalio.client import Client
from temporalio.worker import Worker

from client.connection import connect
from client.dev_server import DevServer
from workers.build import build_worker
from workers.config import WorkerSettings
from workers.logs import configure_logging

DEV_PORT = 7233
console = Console(stderr=True, soft_wrap=True)
UI_PORT = 8233


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class DevEnvironment:
    """A running server (ours or reused), a client, and optionally a worker."""

    client: Client
    server: DevServer | None
    ui_url: str
    settings: WorkerSettings

    def workflow_url(self, workflow_id: str) -> str:
        """The Web UI page of a run."""
        return f"{self.ui_url}/namespaces/default/workflows/{workflow_id}"


@contextlib.asynccontextmanager
async def dev_environment(
    data_dir: Path = Path(".data"), *, with_worker: bool = True, keep_server: bool = False
) -> AsyncIterator[DevEnvironment]:
    """Start (or reuse) the dev server and a worker for the duration of the block."""
    settings = WorkerSettings.from_env()
    settings = WorkerSettings(**{**settings.__dict__, "data_dir": data_dir})
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    server: DevServer | None = None
    address = f"127.0.0.1:{DEV_PORT}"
    if not _listening(DEV_PORT):
        server = DevServer(
            db_file=data_dir / "temporal.db",
            port=DEV_PORT,
            ui_port=UI_PORT,
            log_file=data_dir / "temporal-server.log",
        )
        console.print(
            f"starting Temporal dev server on {address} (data in {data_dir}/temporal.db)",
        )
        await server.start()
    else:
        console.print(f"reusing the Temporal server already on {address}")
    client = await connect(address)
    env = DevEnvironment(client, server, f"http://127.0.0.1:{UI_PORT}", settings)
    worker: Worker | None = build_worker(client, settings) if with_worker else None
    try:
        if worker is None:
            yield env
        else:
            async with worker:
                yield env
    finally:
        if server is not None and not keep_server:
            await server.stop()


async def run_dev(*, with_worker: bool = True) -> None:
    """``agentctl dev``: serve until Ctrl-C or SIGTERM (worker logs at INFO on stderr)."""
    configure_logging(logging.INFO)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with dev_environment(with_worker=with_worker) as env:
        model = "offline model" if env.settings.uses_offline_model else "OpenAI-compatible"
        console.print(
            f"Temporal: 127.0.0.1:{DEV_PORT} · Web UI: {env.ui_url} · worker: "
            f"{'on (' + model + ')' if with_worker else 'off'} · Ctrl-C to stop",
        )
        await stop.wait()
    console.print("stopped")
