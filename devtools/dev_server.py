"""Run a real Temporal dev server (``temporal server start-dev``) as a managed subprocess.

We manage the process ourselves instead of using the SDK's ``WorkflowEnvironment`` so that
chaos tests can ``kill -9`` the server and restart it on the same SQLite file and ports, and
so ``make demo`` can keep one running in the foreground::

    python -m durable_agents._devtools.dev_server --db-file .data/temporal.db \
        --port 7233 --ui-port 8233
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client

from durable_agents._client.web_ui import run_url
from durable_agents._devtools.temporal_cli import TemporalCliNotFoundError, find_temporal_cli
from durable_agents._domain.contract import SEARCH_ATTRIBUTE_TYPES

_HOST = "127.0.0.1"
# One partition per task queue (the server's default is 4, for throughput a single dev
# server does not need). With several, a task queued while no worker polls (a worker
# restarting after a crash) can sit in a partition the new worker's pollers reach only
# through forwarding: `make bench` measured recovery at 3.1-3.2 s with 4 partitions and
# 1.4-1.6 s with one (worker start 1.4-1.7 s included).
# Shared with deploy/temporal/dynamicconfig/docker.yaml (a test keeps the two equal).
SIGNAL_LIMITS = {
    "limit.blobSize.error": 512 * 1024,
    "limit.blobSize.warn": 256 * 1024,
    "history.maximumSignalsPerExecution": 64,
}
DYNAMIC_CONFIG = {
    "matching.numTaskqueueReadPartitions": 1,
    "matching.numTaskqueueWritePartitions": 1,
    # What a caller can add to a run's history is bounded: no payload over 512 KiB, and
    # at most 64 signals per execution (32 MiB, under the 50 MiB history limit), so a
    # flood of ignored signals cannot push a run past its history limit. The project's
    # own payloads stay far below (big outputs go to the payload store); updates, which a
    # run refuses in its validator, write nothing.
    "limit.blobSize.error": SIGNAL_LIMITS["limit.blobSize.error"],
    "limit.blobSize.warn": SIGNAL_LIMITS["limit.blobSize.warn"],
    "history.maximumSignalsPerExecution": SIGNAL_LIMITS["history.maximumSignalsPerExecution"],
}
# What a step costs on the embedded server (issue 15). The dev server has one history
# shard, and its transfer queue (every workflow and activity task it dispatches) is read
# at most `history.transferProcessorMaxPollRPS` times a second (20 by default): four
# dispatches per step capped any workflow at 5 steps/s, whatever it did. Lifted here.
# Eager workflow start hands a run's first workflow task back in the answer to the start,
# to a worker of the starting client; eager activity dispatch hands an activity back with
# the workflow task that scheduled it, when the worker has a free slot (workers.build asks
# for it). Both skip a trip through matching. Eager activities were off for a while: the
# chaos harness left runs failing replay after crashes (3 of 7 runs); the likely cause, a
# status query racing the admission local activity, was fixed by resolve-by-activity-1
# (workflows.versions), and 12 of 12 chaos runs with eager activities on were clean since.
THROUGHPUT: dict[str, int | bool] = {
    "history.transferProcessorMaxPollRPS": 100_000,
    "system.enableActivityEagerExecution": True,
    "system.enableEagerWorkflowStart": True,
}
# SQLite's `synchronous` level for the server's file, with a write-ahead log (one
# append and, at FULL, one fsync per transaction, instead of a rollback journal's
# several). FULL keeps what the README promises: a transaction the server acknowledged
# survives kill -9 of the server and power loss. NORMAL survives kill -9 of the server
# (and of anything else) but may lose the last transactions to power loss or an OS
# crash (the database stays consistent); it costs no fsync per transaction.
SYNCHRONOUS_ENV = "AGENT_DEV_SQLITE_SYNCHRONOUS"
SYNCHRONOUS_LEVELS = ("FULL", "NORMAL")
DEFAULT_SYNCHRONOUS = "FULL"


def synchronous_level(value: str | None = None) -> str:
    """The SQLite ``synchronous`` level: ``value``, else `SYNCHRONOUS_ENV`, else FULL."""
    level = (value or os.environ.get(SYNCHRONOUS_ENV) or DEFAULT_SYNCHRONOUS).upper()
    if level not in SYNCHRONOUS_LEVELS:
        raise DevServerError(
            f"{SYNCHRONOUS_ENV}={level}: the dev server's SQLite synchronous level is one of "
            f"{', '.join(SYNCHRONOUS_LEVELS)} (FULL survives power loss, NORMAL only crashes)"
        )
    return level


class DevServerError(RuntimeError):
    """The dev server did not come up; the message ends with the tail of its log."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _in_use(port: int) -> bool:
    # Connect rather than bind: a port only in TIME_WAIT after a restart is still usable.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((_HOST, port)) == 0


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the parent dies (Linux), so a server or
    worker started by a test or `agentctl dev` never outlives a killed parent."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The server runs in its own session, so its process group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _index_type(name: str) -> IndexedValueType.ValueType:
    # "KeywordList" -> INDEXED_VALUE_TYPE_KEYWORD_LIST
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()
    return IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{snake}")


class DevServer:
    """One ``temporal server start-dev`` process, bound to 127.0.0.1, restartable in place."""

    def __init__(
        self,
        *,
        db_file: Path | None = None,
        port: int | None = None,
        ui_port: int | None = None,
        ui: bool = True,
        namespace: str = "default",
        log_file: Path | None = None,
        cli: Path | None = None,
        synchronous: str | None = None,
    ) -> None:
        # None means in-memory. Absolute, so a restart from another cwd uses the same file.
        self.db_file = db_file.resolve() if db_file is not None else None
        # Ports are chosen once so that restart() comes back on the same address.
        self.port = port or free_port()
        self.ui_port = ui_port or free_port()
        self.ui = ui
        self.namespace = namespace
        if log_file is None:
            fd, name = tempfile.mkstemp(prefix="temporal-dev-server-", suffix=".log")
            os.close(fd)
            log_file = Path(name)
        self.log_file = log_file
        self._cli = cli
        self._proc: subprocess.Popen[bytes] | None = None
        # Read once: a restart keeps the level the server started with.
        self.synchronous = synchronous_level(synchronous)

    @property
    def address(self) -> str:
        """The frontend's gRPC address, ``127.0.0.1:<port>``."""
        return f"{_HOST}:{self.port}"

    @property
    def ui_url(self) -> str:
        """The Web UI's base URL."""
        return f"http://{_HOST}:{self.ui_port}"

    def workflow_url(self, workflow_id: str, run_id: str | None = None) -> str:
        """The Web UI page of one workflow: with its run id, the run's story."""
        return run_url(self.ui_url, self.namespace, workflow_id, run_id)

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _command(self, cli: Path) -> list[str]:
        args = [str(cli), "server", "start-dev", "--ip", _HOST, "--port", str(self.port)]
        if self.ui:
            args += ["--ui-ip", _HOST, "--ui-port", str(self.ui_port)]
        else:
            args.append("--headless")
        if self.namespace != "default":  # "default" is always created
            args += ["--namespace", self.namespace]
        if self.db_file is not None:
            args += ["--db-filename", str(self.db_file)]
            for pragma, level in self.sqlite_pragmas().items():
                args += ["--sqlite-pragma", f"{pragma}={level}"]
        # The server logs the configuration it parsed (read back by `running_settings`).
        args.append("--log-config")
        # Only applied when the namespace is first created in the DB; an existing SQLite file
        # keeps its own set, and _wait_ready registers any that are missing.
        for name, kind in SEARCH_ATTRIBUTE_TYPES.items():
            args += ["--search-attribute", f"{name}={kind}"]
        for key, value in {**DYNAMIC_CONFIG, **THROUGHPUT}.items():
            args += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        return args

    def sqlite_pragmas(self) -> dict[str, str]:
        """The SQLite pragmas of the server's file (none in memory)."""
        if self.db_file is None:
            return {}
        return {"journal_mode": "wal", "synchronous": self.synchronous}

    def settings(self) -> dict[str, object]:
        """What the server is started with: storage, SQLite pragmas, dynamic config."""
        return {
            "storage": "memory" if self.db_file is None else "sqlite file",
            "sqlite_pragmas": self.sqlite_pragmas(),
            "dynamic_config": {**DYNAMIC_CONFIG, **THROUGHPUT},
        }

    def running_settings(self) -> dict[str, str]:
        """What the running server reports it runs with, read back rather than assumed.

        ``journal_mode`` is read from the database file (SQLite keeps it there);
        the connection attributes (``synchronous``) from the configuration the server
        logged at its last start. Dynamic config is not reported by the server at all;
        a value it cannot convert is logged ("Failed to convert value"), and
        ``dynamic_config_rejected`` counts such lines.
        """
        found: dict[str, str] = {}
        if self.db_file is not None and self.db_file.exists():
            conn = sqlite3.connect(f"file:{self.db_file}?mode=ro", uri=True, timeout=10)
            try:
                found["journal_mode"] = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
            finally:
                conn.close()
        log = self.log_file.read_text(errors="replace")
        start = log.rfind("connectAttributes:")
        if start >= 0:
            for line in log[start:].splitlines()[1:]:
                key, sep, value = line.strip().partition(": ")
                if not sep or not line.startswith(" " * 20):
                    break
                found.setdefault(key, value)
        found["dynamic_config_rejected"] = str(log.count("Failed to convert value"))
        return found

    async def start(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109 (public API)
        """Spawn the server and wait until its frontend answers and the attributes exist."""
        if self.running:
            return
        if self._cli is None:
            # May build the CLI (minutes): keep the event loop free meanwhile.
            self._cli = await asyncio.to_thread(find_temporal_cli)
        # Otherwise the readiness check could succeed against whoever holds the port.
        for port in (self.port, self.ui_port) if self.ui else (self.port,):
            if _in_use(port):
                raise DevServerError(f"port {port} on {_HOST} is already in use")
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)  # the CLI will not
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            # Popen, not asyncio's subprocess, so kill() works synchronously and from any loop.
            # New session = new process group: signals to us (Ctrl-C) do not reach the server,
            # and stop()/kill() can signal the whole group.
            self._proc = subprocess.Popen(  # noqa: ASYNC220 (fork+exec is quick)
                self._command(self._cli),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        try:
            await self._wait_ready(time.monotonic() + timeout)
        except BaseException:
            self.kill()
            raise

    async def _wait_ready(self, deadline: float) -> None:
        client: Client | None = None
        last_error = "no answer yet"
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise self._error(f"exited with code {self._proc.returncode} while starting")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._error(f"not ready in time ({last_error})")
            try:
                if client is None:
                    client = await asyncio.wait_for(
                        Client.connect(self.address, namespace=self.namespace),
                        timeout=min(5.0, remaining),
                    )
                if await self._ensure_search_attributes(client):
                    return
                last_error = "search attributes not visible yet"
            except Exception as err:  # not up yet: connection refused, namespace not loaded...
                last_error = f"{type(err).__name__}: {err}"
            await asyncio.sleep(0.2)

    async def _ensure_search_attributes(self, client: Client) -> bool:
        """Return True if all attributes exist; register the missing ones otherwise."""
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=self.namespace)
        )
        missing = {
            name: _index_type(kind)
            for name, kind in SEARCH_ATTRIBUTE_TYPES.items()
            if name not in listed.custom_attributes
        }
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=self.namespace, search_attributes=missing)
            )
        return not missing

    def _error(self, what: str) -> DevServerError:
        try:
            log = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-30:])
        except OSError as err:
            log = f"(unreadable: {err})"
        return DevServerError(f"Temporal dev server {what}; last lines of {self.log_file}:\n{log}")

    async def stop(self) -> None:
        """SIGTERM the server, wait up to 10 s, then SIGKILL it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 10.0)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the server at once, as a crash would (for chaos tests)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)
        self._proc = None

    async def restart(self) -> None:
        """Stop the server if it runs, then start it again on the same DB file and ports."""
        await self.stop()
        await self.start()

    async def __aenter__(self) -> DevServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def _serve(args: argparse.Namespace) -> int:
    server = DevServer(
        db_file=args.db_file,
        port=args.port,
        ui_port=args.ui_port,
        ui=not args.headless,
        namespace=args.namespace,
        log_file=args.log_file,
    )
    await server.start()
    ui = server.ui_url if server.ui else "(headless)"
    sys.stdout.write(f"Temporal dev server: {server.address}\nWeb UI: {ui}\n")
    sys.stdout.write(f"Server log: {server.log_file}\nCtrl-C to stop.\n")
    sys.stdout.flush()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    while server.running and not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=1.0)
    await server.stop()
    if stopping.is_set():
        return 0
    sys.stderr.write(f"the server exited on its own; see {server.log_file}\n")
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run a dev server in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db-file", type=Path, help="SQLite file (default: in-memory)")
    parser.add_argument("--port", type=int, help="frontend gRPC port (default: a free one)")
    parser.add_argument("--ui-port", type=int, help="Web UI port (default: a free one)")
    parser.add_argument("--headless", action="store_true", help="no Web UI")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--log-file", type=Path, help="server log (default: a temp file)")
    try:
        return asyncio.run(_serve(parser.parse_args(argv)))
    except (DevServerError, TemporalCliNotFoundError) as err:
        sys.stderr.write(f"error: {err}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
