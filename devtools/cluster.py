"""A real Temporal cluster on this machine: PostgreSQL, the Temporal server and the Web UI
built from Go modules, the namespace and search attributes, and N agent workers.

    python -m durable_agents._devtools.cluster up [--workers N] [--port P] [--ui-port P]
    python -m durable_agents._devtools.cluster status | down [--purge] | upgrade [--to V]

(``make cluster``, ``make cluster-status``, ``make cluster-down``.) Everything binds
127.0.0.1 and keeps its state under ``.data/cluster/`` (``--root``): PostgreSQL's data, the
logs, the shared agent data dir and ``cluster.json`` (ports, versions and process ids, so a
later ``down`` stops what ``up`` started). The schemas are set up by
deploy/temporal/setup-schema.sh and the namespace by setup-namespace.sh, the scripts the
compose file runs; the server reads the compose file's settings for the ``temporal``
service (shards, database plugin, user, dynamic config).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from temporalio.client import Client
from temporalio.service import TLSConfig

from durable_agents._devtools.cluster_build import ClusterBinaries, ServerBuild
from durable_agents._devtools.cluster_parts import (
    DEPLOY,
    HOST,
    REPO,
    ClusterPorts,
    ClusterState,
    Detached,
    compose_environment,
    compose_host_path,
)
from durable_agents._devtools.go_build import GoBuildError, Say
from durable_agents._devtools.postgres import Postgres, PostgresError
from durable_agents._devtools.versions import TemporalVersions

DEFAULT_ROOT = Path(".data") / "cluster"
EXAMPLE_PLUGINS = "examples.db_tuner,examples.file_editor"


class ClusterError(RuntimeError):
    """A part of the cluster did not come up; the message names it and ends with its log."""


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class ClusterTls:
    """TLS on the frontend (mTLS with ``require_client_cert``): the server's certificate and
    key, the CA that signed them and the client certificates, and the client certificate
    the cluster's own clients present (system workers, namespace setup, Web UI, agent
    workers). Internode traffic stays plaintext on 127.0.0.1. Not kept in cluster.json: a
    later ``Cluster(root)`` without it can still stop the cluster, not talk to it.
    """

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    require_client_cert: bool = False

    def server_env(self) -> dict[str, str]:
        """The variables deploy/temporal/config/cluster.yaml renders ``global.tls`` from."""
        return {
            "FRONTEND_TLS_CERT_FILE": str(self.server_cert),
            "FRONTEND_TLS_KEY_FILE": str(self.server_key),
            "FRONTEND_TLS_CA_FILE": str(self.ca_cert),
            "FRONTEND_TLS_REQUIRE_CLIENT_AUTH": str(self.require_client_cert).lower(),
            "FRONTEND_TLS_CLIENT_CERT_FILE": str(self.client_cert),
            "FRONTEND_TLS_CLIENT_KEY_FILE": str(self.client_key),
        }

    def client_env(self) -> dict[str, str]:
        """The ``TEMPORAL_TLS_*`` variables (envconfig) of the cluster's own clients."""
        return {
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(self.ca_cert),
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(self.client_cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(self.client_key),
        }

    def ui_env(self) -> dict[str, str]:
        """The Web UI server's TLS variables (its docker.yaml)."""
        return {
            "TEMPORAL_TLS_CA": str(self.ca_cert),
            "TEMPORAL_TLS_CERT": str(self.client_cert),
            "TEMPORAL_TLS_KEY": str(self.client_key),
            "TEMPORAL_TLS_ENABLE_HOST_VERIFICATION": "true",
            "TEMPORAL_TLS_SERVER_NAME": HOST,
        }

    def sdk_config(self) -> TLSConfig:
        """The same, for a `temporalio` client."""
        return TLSConfig(
            server_root_ca_cert=self.ca_cert.read_bytes(),
            client_cert=self.client_cert.read_bytes(),
            client_private_key=self.client_key.read_bytes(),
        )


# The server's own TLS variables: set from a ClusterTls, or blank (no TLS) whatever the
# environment holds.
_NO_TLS = dict.fromkeys(ClusterTls(*(Path(),) * 5).server_env(), "")


class Cluster:
    """PostgreSQL + Temporal server + Web UI + workers, under ``root``."""

    def __init__(
        self,
        root: Path = DEFAULT_ROOT,
        *,
        ports: ClusterPorts | None = None,
        port_overrides: dict[str, int] | None = None,
        namespace: str = "default",
        workers: int = 2,
        worker_env: dict[str, str] | None = None,
        ui: bool = True,
        tie_to_parent: bool = False,
        say: Say = _say,
        tls: ClusterTls | None = None,
    ) -> None:
        self.root = root.resolve()
        saved = ClusterState.read(self.state_file)
        self.state = saved or ClusterState(ports=ports or ClusterPorts(), namespace=namespace)
        if saved is None or not self._anything_running(saved):
            self.state.ports = replace(ports or self.state.ports, **(port_overrides or {}))
            self.state.namespace = namespace
        self.workers_wanted = workers
        self.worker_env = worker_env or {}
        self.ui = ui
        self.tie_to_parent = tie_to_parent
        self.say = say
        self.tls = tls
        compose = compose_environment("temporal")
        db = compose_environment("temporal-schema")
        self.postgres = Postgres(
            self.root / "postgres",
            self.state.ports.postgres,
            user=compose["POSTGRES_USER"],
            password=compose["POSTGRES_PWD"],
        )
        self._compose, self._sql_plugin = compose, db["SQL_PLUGIN"]
        self.server = Detached("temporal-server", self.root / "logs" / "temporal-server.log")
        self.server.pid = self.state.server_pid
        self.web = Detached("temporal-ui", self.root / "logs" / "temporal-ui.log")
        self.web.pid = self.state.ui_pid
        self.workers = [
            Detached(f"worker-{i}", self.root / "logs" / f"worker-{i}.log", pid)
            for i, pid in enumerate(self.state.worker_pids)
        ]
        self._binaries: ClusterBinaries | None = None

    @staticmethod
    def _anything_running(state: ClusterState) -> bool:
        pids = [state.server_pid, state.ui_pid, *state.worker_pids]
        return any(Detached("x", Path(), p).running for p in pids if p)

    @property
    def state_file(self) -> Path:
        """``root/cluster.json``."""
        return self.root / "cluster.json"

    @property
    def ports(self) -> ClusterPorts:
        """The ports in use."""
        return self.state.ports

    @property
    def address(self) -> str:
        """The frontend's gRPC address."""
        return f"{HOST}:{self.ports.frontend}"

    @property
    def ui_url(self) -> str:
        """The Web UI's base URL."""
        return f"http://{HOST}:{self.ports.ui}"

    @property
    def namespace(self) -> str:
        """The namespace the workers serve."""
        return self.state.namespace

    @property
    def agent_data_dir(self) -> Path:
        """The data dir all workers share (ledgers, payload store)."""
        return self.root / "agent-data"

    def _save(self) -> None:
        self.state.server_pid = self.server.pid if self.server.running else None
        self.state.ui_pid = self.web.pid if self.web.running else None
        self.state.worker_pids = [w.pid for w in self.workers if w.pid and w.running]
        self.root.mkdir(parents=True, exist_ok=True)
        self.state.write(self.state_file)

    def binaries(self) -> ClusterBinaries:
        """The CLI, server, SQL tool and UI (built once into the user cache)."""
        if self._binaries is None:
            self._binaries = ClusterBinaries.ensure(self.state.server_version or None, self.say)
        return self._binaries

    # -- PostgreSQL and schemas ------------------------------------------------------------

    def _script(self, script: str, env: dict[str, str], path_dirs: list[Path]) -> None:
        path = os.pathsep.join([*map(str, path_dirs), os.environ.get("PATH", "")])
        done = subprocess.run(
            ["sh", str(DEPLOY / script)],
            env={**os.environ, **env, "PATH": path},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ClusterError(f"{script} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")

    def setup_schema(self, build: ServerBuild) -> None:
        """Create the databases and bring both schemas to ``build``'s version."""
        self.say(f"schema: temporal and temporal_visibility at v{build.version}")
        env = {
            "SQL_PLUGIN": self._sql_plugin,
            "SQL_HOST": HOST,
            "SQL_PORT": str(self.ports.postgres),
            "SQL_USER": self.postgres.user,
            "SQL_PASSWORD": self.postgres.password,
            "SCHEMA_ROOT": str(build.postgres_schema),
        }
        self._script("setup-schema.sh", env, [build.home])

    # -- Temporal server ------------------------------------------------------------------

    def _server_env(self) -> dict[str, str]:
        shared = {k: self._compose[k] for k in ("DB", "NUM_HISTORY_SHARDS", "POSTGRES_USER")}
        dynamic = compose_host_path("temporal", self._compose["DYNAMIC_CONFIG_FILE_PATH"])
        return {
            **os.environ,
            **shared,
            "POSTGRES_PWD": self.postgres.password,
            "POSTGRES_SEEDS": HOST,
            "DB_PORT": str(self.ports.postgres),
            "BIND_ON_IP": HOST,
            "DYNAMIC_CONFIG_FILE_PATH": str(dynamic),
            **self.ports.server_env(),
            **(self.tls.server_env() if self.tls else _NO_TLS),
        }

    async def start_server(self, timeout: float = 120.0) -> None:  # noqa: ASYNC109
        """Start the server (all four services) and wait until its frontend answers."""
        if self.server.running:
            return
        build = self.binaries().server
        command = [str(build.server), "--root", str(DEPLOY), "--config", "config"]
        command += ["--env", "cluster", "--allow-no-auth", "start"]
        self.server.start(
            command, self._server_env(), cwd=self.root, tie_to_parent=self.tie_to_parent
        )
        self.state.server_version = build.version
        self._save()
        await self._wait_frontend(timeout)

    async def _wait_frontend(self, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if not self.server.running:
                raise ClusterError(f"temporal-server exited:\n{self.server.tail()}")
            try:
                tls = self.tls.sdk_config() if self.tls else False
                client = await asyncio.wait_for(Client.connect(self.address, tls=tls), 5)
                if await client.service_client.check_health():
                    return
            except Exception as err:  # not up yet
                last = f"{type(err).__name__}: {err}"
            await asyncio.sleep(0.5)
        raise ClusterError(
            f"temporal-server not ready in {limit_s:.0f}s ({last}):\n{self.server.tail()}"
        )

    def kill_server(self) -> None:
        """SIGKILL the server, as a crash would."""
        self.server.kill()
        self._save()

    async def restart_server(self) -> None:
        """Kill the server and start it again on the same database and ports."""
        self.kill_server()
        await self.start_server()

    def setup_namespace(self, namespace: str | None = None) -> None:
        """Create ``namespace`` (default: the cluster's) and its search attributes."""
        name = namespace or self.namespace
        env = {"TEMPORAL_ADDRESS": self.address, "TEMPORAL_NAMESPACE": name}
        env.update(self.tls.client_env() if self.tls else {})
        self._script("setup-namespace.sh", env, [self.binaries().cli.parent])

    # -- Web UI and workers ---------------------------------------------------------------

    def start_ui(self) -> None:
        """Start the Web UI server on 127.0.0.1 (its image's docker.yaml, our env)."""
        if self.web.running or not self.ui:
            return
        ui = self.binaries().ui
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": self.address,
            "TEMPORAL_UI_IP": HOST,
            "TEMPORAL_UI_PORT": str(self.ports.ui),
            "TEMPORAL_DEFAULT_NAMESPACE": self.namespace,
            "TEMPORAL_CSRF_COOKIE_INSECURE": "true",  # plain http on loopback
            **(self.tls.ui_env() if self.tls else {}),
        }
        command = [str(ui.server), "--root", str(ui.home), "--config", "config", "--env", "docker"]
        self.web.start([*command, "start"], env, cwd=self.root, tie_to_parent=self.tie_to_parent)

    def worker_environment(self) -> dict[str, str]:
        """The environment of each agent worker."""
        own = ("TEMPORAL_", "AGENT_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
        env.update(
            TEMPORAL_ADDRESS=self.address,
            TEMPORAL_NAMESPACE=self.namespace,
            TEMPORAL_UI_URL=self.ui_url,
            AGENT_DATA_DIR=str(self.agent_data_dir),
            AGENT_PLUGINS=os.environ.get("AGENT_PLUGINS", EXAMPLE_PLUGINS),
        )
        env.update(self.tls.client_env() if self.tls else {})
        env.update(self.worker_env)
        return env

    def _example_database(self) -> None:
        """The db-tuner's shop database in the shared data dir, if the workers serve it."""
        shop = self.agent_data_dir / "db-tuner" / "shop.db"
        if "examples.db_tuner" in self.worker_environment()["AGENT_PLUGINS"] and not shop.exists():
            command = [sys.executable, "-m", "examples.db_tuner.data", "--out", str(shop)]
            subprocess.run(command, cwd=REPO, check=True, capture_output=True)

    async def start_worker(self, timeout: float = 90.0) -> Detached:  # noqa: ASYNC109
        """Start one more worker and wait until it polls."""
        index = max((int(w.name.split("-")[1]) for w in self.workers), default=-1) + 1
        worker = Detached(f"worker-{index}", self.root / "logs" / f"worker-{index}.log")
        offset = worker.log_file.stat().st_size if worker.log_file.exists() else 0
        command = [sys.executable, "-m", "durable_agents._workers.main"]
        env = self.worker_environment()
        worker.start(command, env, cwd=REPO, tie_to_parent=self.tie_to_parent)
        self.workers.append(worker)
        self._save()
        deadline = time.monotonic() + timeout
        while "worker ready" not in worker.log_file.read_text(errors="replace")[offset:]:
            if not worker.running or time.monotonic() > deadline:
                raise ClusterError(f"{worker.name} did not start:\n{worker.tail()}")
            await asyncio.sleep(0.1)
        return worker

    def kill_worker(self, worker: Detached) -> None:
        """SIGKILL one worker (it stays in the list, dead)."""
        worker.kill()
        self._save()

    # -- the whole ------------------------------------------------------------------------

    async def up(self) -> None:
        """Bring up whatever is not running yet."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.server.running:
            busy = [p for p in self.ports.busy() if not p.startswith(("postgres", "ui"))]
            if busy:
                taken = ", ".join(busy)
                raise ClusterError(f"ports in use: {taken}; choose --port or --free-ports")
        binaries = self.binaries()
        self.say(f"PostgreSQL on {HOST}:{self.ports.postgres} (data in {self.postgres.home})")
        await asyncio.to_thread(self.postgres.start)
        if not self.server.running:
            await asyncio.to_thread(self.setup_schema, binaries.server)
            self.say(f"Temporal server v{binaries.server.version} on {self.address}")
            await self.start_server()
        await asyncio.to_thread(self.setup_namespace)
        self.start_ui()
        await asyncio.to_thread(self._example_database)
        self.workers = [w for w in self.workers if w.running]
        while len(self.workers) < self.workers_wanted:
            await self.start_worker()
        self._save()

    def down(self, purge: bool = False) -> None:
        """Stop workers, UI, server and PostgreSQL; with ``purge``, delete ``root``."""
        for worker in self.workers:
            worker.stop()
        self.web.stop()
        self.server.stop()
        self.postgres.stop()
        self.workers = []
        if purge:
            self.discard_database()
            shutil.rmtree(self.root, ignore_errors=True)
        elif self.root.is_dir():
            self._save()

    def discard_database(self) -> None:
        """Delete PostgreSQL's data where it lives outside ``root`` (a checkout the server
        user cannot reach keeps it in /var/tmp, see devtools/postgres.py); logs stay."""
        if self.postgres.home.is_symlink():
            shutil.rmtree(self.postgres.real_home, ignore_errors=True)

    async def upgrade(self, version: str) -> None:
        """Stop the server, bring the schemas to ``version``'s, start ``version``'s server.

        Runs in flight wait meanwhile (workers keep polling and reconnect)."""
        current = await asyncio.to_thread(self.binaries)
        target = await asyncio.to_thread(ServerBuild(version).ensure, self.say)
        self.server.stop()
        await asyncio.to_thread(self.setup_schema, target)
        self._binaries = ClusterBinaries(current.cli, target, current.ui)
        await self.start_server()
        self.say(f"upgraded to Temporal server v{version}")

    def status(self) -> dict[str, object]:
        """What runs, where."""
        return {
            "frontend": f"{self.address} ({'up' if self.server.running else 'down'})",
            "server_version": self.state.server_version or None,
            "web_ui": f"{self.ui_url} ({'up' if self.web.running else 'down'})",
            "postgres": f"{HOST}:{self.ports.postgres} "
            f"({'up' if self.postgres.running else 'down'})",
            "namespace": self.namespace,
            "workers": sum(1 for w in self.workers if w.running),
            "logs": str(self.root / "logs"),
        }

    def how_to_use(self) -> str:
        """Where things are and how to point agentctl at them."""
        return (
            f"Temporal frontend: {self.address} (namespace {self.namespace}, "
            f"server v{self.state.server_version})\n"
            f"Web UI:            {self.ui_url}\n"
            f"Workers:           {sum(1 for w in self.workers if w.running)} "
            f"(logs in {self.root / 'logs'})\n"
            "Point agentctl at it:\n"
            f"  export TEMPORAL_ADDRESS={self.address} TEMPORAL_NAMESPACE={self.namespace} "
            f"TEMPORAL_UI_URL={self.ui_url}\n"
            '  agentctl run db-tuner "make the slow queries fast"\n'
        )


def main(argv: list[str] | None = None) -> int:
    """``up``, ``status``, ``down`` or ``upgrade``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["up", "status", "down", "upgrade"])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="state dir")
    parser.add_argument("--workers", type=int, default=2, help="agent workers (up)")
    parser.add_argument("--port", type=int, help="frontend port (default 7233)")
    parser.add_argument("--ui-port", type=int, help="Web UI port (default 8233)")
    parser.add_argument("--postgres-port", type=int, help="PostgreSQL port (default 55432)")
    parser.add_argument(
        "--free-ports", action="store_true", help="up: any free ports (kept in cluster.json)"
    )
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--purge", action="store_true", help="down: delete the state dir")
    parser.add_argument("--to", help="upgrade: server version (default: TEMPORAL_UPGRADE_VERSION)")
    args = parser.parse_args(argv)
    chosen = {"frontend": args.port, "ui": args.ui_port, "postgres": args.postgres_port}
    cluster = Cluster(
        args.root,
        ports=ClusterPorts.free() if args.free_ports else None,
        port_overrides={k: v for k, v in chosen.items() if v},
        namespace=args.namespace,
        workers=args.workers,
    )
    try:
        if args.command == "up":
            asyncio.run(cluster.up())
            sys.stdout.write(cluster.how_to_use())
        elif args.command == "down":
            cluster.down(purge=args.purge)
            sys.stdout.write("cluster stopped\n")
        elif args.command == "upgrade":
            asyncio.run(cluster.upgrade(args.to or TemporalVersions.load().upgrade))
            sys.stdout.write(cluster.how_to_use())
        else:
            for key, value in cluster.status().items():
                sys.stdout.write(f"{key:<15} {value}\n")
    except (ClusterError, PostgresError, GoBuildError) as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
