"""The embedded default: a local dev server (SQLite under ``.data/``, Web UI on :8233)
plus a worker, for ``agentctl dev`` and ``make demo``.

A server on the address is reused (and left running) when TEMPORAL_ADDRESS names it or it
is the one this data dir's dev server started (kept running to browse the UI); a Temporal
server it did not start on the port it would take (a cluster) is refused, naming both ways
out. Otherwise one is started and stopped again at the end.
"""

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from durable_agents._devtools.dev_server import DevServer, free_port
from durable_agents._infra.connection import TemporalSettings, connect
from durable_agents._infra.logs import configure_logging
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings

DEV_PORT = 7233
console = Console(stderr=True, soft_wrap=True)
UI_PORT = 8233
# How long a server on the port gets to answer as Temporal before it is called not one.
PROBE_TIMEOUT_S = 5.0


class BusyPortError(Exception):
    """A port we need is taken (or a server we were told to reuse is not Temporal); the
    message is one line naming the option that picks another."""


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


async def answers_as_temporal(
    temporal: TemporalSettings | str,
    timeout: float = PROBE_TIMEOUT_S,  # noqa: ASYNC109
) -> bool:
    """Whether a Temporal frontend answers as ``temporal`` says (not just any open port)."""
    try:
        client = await asyncio.wait_for(connect(temporal), timeout)
        await asyncio.wait_for(client.service_client.check_health(), timeout)
    except (ConnectionError, RuntimeError, TimeoutError, RPCError):
        return False
    return True


@dataclass(frozen=True)
class DevAddress:
    """Where ``agentctl dev`` / ``make demo`` run (or reuse) Temporal, and why there."""

    host: str
    port: int
    ui_port: int
    source: str  # the option or variable that chose the address, for error messages

    @classmethod
    def choose(cls, port: int | None, ui_port: int | None) -> "DevAddress":
        """``--port`` first, else ``TEMPORAL_ADDRESS`` (to reuse a server), else 7233."""
        ui = ui_port or UI_PORT
        if port is not None:
            return cls("127.0.0.1", port, ui, "--port")
        env = os.environ.get("TEMPORAL_ADDRESS")
        if env:
            host, _, text = env.rpartition(":")
            if not host or not text.isdigit():
                raise BusyPortError(f"TEMPORAL_ADDRESS={env} is not host:port")
            return cls(host, int(text), ui, "TEMPORAL_ADDRESS")
        return cls("127.0.0.1", DEV_PORT, ui, "--port")

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def local(self) -> bool:
        """Whether we may start a server here ourselves."""
        return self.host in ("127.0.0.1", "localhost")


@dataclass
class DevEnvironment:
    """A running server (ours or reused), a client, and optionally a worker."""

    client: Client
    server: DevServer | None
    ui_url: str
    settings: WorkerSettings
    address: str = f"127.0.0.1:{DEV_PORT}"


@contextlib.asynccontextmanager
async def dev_environment(
    data_dir: Path = Path(".data"),
    *,
    with_worker: bool = True,
    keep_server: bool = False,
    port: int | None = None,
    ui_port: int | None = None,
) -> AsyncIterator[DevEnvironment]:
    """Start (or reuse) the dev server and a worker for the duration of the block.

    A server already answering as Temporal on the address is reused (and left running);
    anything else on the port, or a busy Web UI port, raises `BusyPortError`.
    """
    where = DevAddress.choose(port, ui_port)
    settings = WorkerSettings.from_env()
    settings = WorkerSettings(**{**settings.__dict__, "data_dir": data_dir})
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    server: DevServer | None = None
    address = where.address
    # A server reused at TEMPORAL_ADDRESS is reached the way the environment says (TLS,
    # API key, a profile); one on --port, or one we start, is a plaintext dev server.
    temporal = (
        dataclasses.replace(settings.temporal, address=address)
        if where.source == "TEMPORAL_ADDRESS"
        else TemporalSettings(address=address)
    )
    if await asyncio.to_thread(_listening, where.host, where.port):
        if not await answers_as_temporal(temporal):
            raise BusyPortError(_not_temporal(where))
        if where.source != "TEMPORAL_ADDRESS" and not _ours(data_dir, where.port):
            raise BusyPortError(_not_ours(where))
        console.print(f"reusing the Temporal server already on {address}")
    elif not where.local:
        raise ConnectionError(f"nothing answers at TEMPORAL_ADDRESS={address}")
    else:
        if await asyncio.to_thread(_listening, "127.0.0.1", where.ui_port):
            raise BusyPortError(
                f"Web UI port {where.ui_port} is busy: choose another with --ui-port "
                f"(e.g. --ui-port {free_port()})"
            )
        server = DevServer(
            db_file=data_dir / "temporal.db",
            port=where.port,
            ui_port=where.ui_port,
            log_file=data_dir / "temporal-server.log",
        )
        console.print(
            f"starting Temporal dev server on {address} (data in {data_dir}/temporal.db)",
        )
        await server.start()
        temporal = TemporalSettings(address=address)
        await asyncio.to_thread(_claim, data_dir, server)
    client = await connect(temporal)
    ui_url = (
        server.ui_url
        if server is not None
        else os.environ.get("TEMPORAL_UI_URL", f"http://127.0.0.1:{where.ui_port}")
    )
    env = DevEnvironment(client, server, ui_url, settings, address)
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


def _owner_file(data_dir: Path) -> Path:
    return data_dir / "dev-server.json"


def _claim(data_dir: Path, server: DevServer) -> None:
    """Note that the server on this port is the one this data dir's dev server runs."""
    _owner_file(data_dir).write_text(json.dumps({"port": server.port, "pid": server.pid}))


def _ours(data_dir: Path, port: int) -> bool:
    """Whether the server on ``port`` is one `agentctl dev` started on this data dir (and
    still runs): only that one is reused without being named in TEMPORAL_ADDRESS."""
    try:
        owner = json.loads(_owner_file(data_dir).read_text())
        os.kill(int(owner["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(owner["port"] == port)


def _not_ours(where: DevAddress) -> str:
    return (
        f"port {where.port} is busy with a Temporal server that agentctl dev did not start "
        f"(a cluster, or another checkout's dev server): use it with "
        f"TEMPORAL_ADDRESS={where.address}, or choose another port with --port "
        f"(e.g. --port {free_port()})"
    )


def _not_temporal(where: DevAddress) -> str:
    if where.source == "TEMPORAL_ADDRESS":
        return (
            f"TEMPORAL_ADDRESS={where.address} does not answer as Temporal: point it at a "
            "Temporal server, or unset it to start one"
        )
    return (
        f"port {where.port} is busy with something that does not answer as Temporal: "
        f"choose another with --port (e.g. --port {free_port()})"
    )


async def run_dev(
    *, with_worker: bool = True, port: int | None = None, ui_port: int | None = None
) -> None:
    """``agentctl dev``: serve until Ctrl-C or SIGTERM (worker logs at INFO on stderr)."""
    configure_logging(logging.INFO)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with dev_environment(with_worker=with_worker, port=port, ui_port=ui_port) as env:
        model = "offline model" if env.settings.uses_offline_model else "OpenAI-compatible"
        console.print(
            f"Temporal: {env.address} · Web UI: {env.ui_url} · worker: "
            f"{'on (' + model + ')' if with_worker else 'off'} · Ctrl-C to stop",
        )
        await stop.wait()
    console.print("stopped")
