"""The pieces of the native cluster besides PostgreSQL: ports, the settings shared with
docker-compose.yml, and detached processes that a later ``cluster down`` can stop."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from durable_agents._devtools.dev_server import die_with_parent

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
DEPLOY = REPO / "deploy" / "temporal"
HOST = "127.0.0.1"
# The PostgreSQL schema keeps membership ports in a SMALLINT column.
MEMBERSHIP_PORT_LIMIT = 32768


def _taken(port: int) -> bool:
    with socket.socket() as sock:
        # As Go's listeners do: a port left in TIME_WAIT by a stopped server is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def _free(low: int, high: int, avoid: set[int], rng: random.Random) -> int:
    for _ in range(500):
        port = rng.randrange(low, high)
        if port not in avoid and not _taken(port):
            avoid.add(port)
            return port
    raise RuntimeError(f"no free port between {low} and {high}")


@dataclass(frozen=True)
class ClusterPorts:
    """Every port the cluster binds on 127.0.0.1."""

    frontend: int = 7233
    frontend_http: int = 7243
    history: int = 7234
    matching: int = 7235
    worker: int = 7239
    frontend_membership: int = 6933
    history_membership: int = 6934
    matching_membership: int = 6935
    worker_membership: int = 6939
    ui: int = 8233
    postgres: int = 55432

    @classmethod
    def free(cls) -> ClusterPorts:
        """Ports free right now (membership ports below 32768), for a test's own cluster."""
        rng = random.Random()
        used: set[int] = set()
        names = [f for f in cls.__dataclass_fields__ if f not in ("ui", "frontend")]
        grpc = {n: _free(20000, MEMBERSHIP_PORT_LIMIT, used, rng) for n in names}
        return cls(
            frontend=_free(20000, MEMBERSHIP_PORT_LIMIT, used, rng),
            ui=_free(20000, MEMBERSHIP_PORT_LIMIT, used, rng),
            **grpc,
        )

    def busy(self) -> list[str]:
        """The ports someone else holds now, by name."""
        return [f"{name} {port}" for name, port in asdict(self).items() if _taken(port)]

    def server_env(self) -> dict[str, str]:
        """The port variables of deploy/temporal/config/cluster.yaml."""
        return {
            "FRONTEND_GRPC_PORT": str(self.frontend),
            "FRONTEND_HTTP_PORT": str(self.frontend_http),
            "FRONTEND_MEMBERSHIP_PORT": str(self.frontend_membership),
            "HISTORY_GRPC_PORT": str(self.history),
            "HISTORY_MEMBERSHIP_PORT": str(self.history_membership),
            "MATCHING_GRPC_PORT": str(self.matching),
            "MATCHING_MEMBERSHIP_PORT": str(self.matching_membership),
            "WORKER_GRPC_PORT": str(self.worker),
            "WORKER_MEMBERSHIP_PORT": str(self.worker_membership),
        }


_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}`` and ``${VAR:-default}``."""
    return _VARIABLE.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), text)


def compose_service(name: str) -> dict[str, Any]:
    """One service of docker-compose.yml (anchors merged), as YAML gives it."""
    with COMPOSE_FILE.open(encoding="utf-8") as handle:
        services: dict[str, Any] = yaml.safe_load(handle)["services"]
    return dict(services[name])


def compose_environment(name: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A service's environment in docker-compose.yml, interpolated against ``env``."""
    values = compose_service(name).get("environment") or {}
    source = os.environ if env is None else env
    return {k: interpolate(str(v), source) for k, v in values.items() if v is not None}


def compose_host_path(service: str, container_path: str) -> Path:
    """The file of this checkout that compose mounts at ``container_path`` in ``service``."""
    for volume in compose_service(service).get("volumes") or []:
        source, _, rest = str(volume).partition(":")
        target = rest.split(":")[0].rstrip("/")
        if source.startswith(".") and container_path.startswith(target + "/"):
            return (REPO / source / container_path[len(target) + 1 :]).resolve()
    raise LookupError(f"{container_path} is not mounted from this checkout in {service}")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


@dataclass
class Detached:
    """A process started in its own session with its log in a file. Its pid is enough to
    stop it later, from another process (``cluster down`` after ``cluster up``)."""

    name: str
    log_file: Path
    pid: int | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        if self._proc is not None:
            return self._proc.poll() is None
        return self.pid is not None and _alive(self.pid)

    def start(
        self, command: list[str], env: Mapping[str, str], *, cwd: Path, tie_to_parent: bool
    ) -> None:
        """Spawn ``command``; with ``tie_to_parent`` it gets SIGTERM when we die (tests)."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent if tie_to_parent else None,
            )
        self.pid = self._proc.pid

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process group."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the process to end; whether it did."""
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.running

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.signal(signal.SIGKILL)
        self.wait(10)
        self.pid, self._proc = None, None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` s."""
        if self.running:
            self.signal(signal.SIGTERM)
            self.wait(timeout)
        self.kill()

    def tail(self, lines: int = 30) -> str:
        """The last lines of the log."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError as err:
            return f"(unreadable: {err})"


@dataclass
class ClusterState:
    """What ``cluster.json`` keeps between ``up``, ``status`` and ``down``."""

    ports: ClusterPorts = field(default_factory=ClusterPorts)
    namespace: str = "default"
    server_version: str = ""
    server_pid: int | None = None
    ui_pid: int | None = None
    worker_pids: list[int] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> ClusterState | None:
        """The saved state, or None if there is none."""
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        return cls(**{**raw, "ports": ClusterPorts(**raw["ports"])})

    def write(self, path: Path) -> None:
        """Save atomically."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)
