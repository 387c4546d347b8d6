"""A PostgreSQL server of the project's own, under ``.data/``, for the native Temporal cluster.

The binaries come from Debian's packages (``scripts/install-postgres.sh`` installs them
when missing). The server runs from a data directory of ours, bound to 127.0.0.1 on its
own port, as an unprivileged user: ``initdb`` refuses root, so a root caller runs it as
the ``postgres`` user the package creates. Its superuser and password are those of
docker-compose.yml (``POSTGRES_USER``/``POSTGRES_PASSWORD``, ``temporal`` by default).

fsync is off: this is a development cluster. It survives any process being killed
(the data is in the OS's page cache), not the machine losing power.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INSTALL_SCRIPT = REPO / "scripts" / "install-postgres.sh"
HOST = "127.0.0.1"
_SERVER_OPTIONS = "-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"


class PostgresError(RuntimeError):
    """PostgreSQL could not be installed, initialised or started; the message says why."""


def bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` with ``initdb``, installing if needed."""

    def found() -> list[Path]:
        dirs = Path("/usr/lib/postgresql").glob("*/bin")
        return sorted(
            (d for d in dirs if (d / "initdb").is_file()), key=lambda d: int(d.parent.name)
        )

    if not found():
        done = subprocess.run(["sh", str(INSTALL_SCRIPT)], check=False)
        if done.returncode != 0 or not found():
            raise PostgresError(f"PostgreSQL is not installed and {INSTALL_SCRIPT} failed")
    return found()[-1]


@dataclass
class Postgres:
    """One PostgreSQL server: data in ``home/data``, log in ``home/postgres.log``."""

    home: Path
    port: int
    user: str = "temporal"
    password: str = "temporal"

    @property
    def real_home(self) -> Path:
        """``home`` with links resolved: the path the server user can reach."""
        return self.home.resolve()

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (``PGDATA``)."""
        return self.real_home / "data"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.real_home / "postgres.log"

    def _owner(self) -> pwd.struct_passwd | None:
        """Whom the server runs as: None for ourselves, the ``postgres`` user for root."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError as err:
            raise PostgresError("running as root and there is no `postgres` user") from err

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        owner = self._owner()
        tool = bin_dir() / args[0]
        done = subprocess.run(
            [str(tool), *args[1:]],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.real_home,
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            extra_groups=[] if owner else None,
        )
        if check and done.returncode != 0:
            raise PostgresError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}".strip())
        return done

    def _prepare_home(self) -> None:
        """Create ``home``, owned by the user the server runs as and reachable by it."""
        owner = self._owner()
        if self.home.is_symlink() or self.home.is_dir():
            return
        self.home.parent.mkdir(parents=True, exist_ok=True)
        if owner is None:
            self.home.mkdir()
            return
        # The server must reach its directory through every parent; a checkout under a
        # private home (/root) is not, so the data then lives in /var/tmp, linked from here.
        probe = subprocess.run(
            ["test", "-x", str(self.home.parent)], user=owner.pw_uid, check=False
        )
        if probe.returncode == 0:
            self.home.mkdir()
            target = self.home
        else:
            target = Path(tempfile.mkdtemp(prefix="durable-agents-postgres-", dir="/var/tmp"))
            self.home.symlink_to(target)
        os.chown(target, owner.pw_uid, owner.pw_gid)

    @property
    def initialised(self) -> bool:
        """Whether ``initdb`` has run here."""
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> None:
        """``initdb`` with the superuser and password (once)."""
        self._prepare_home()
        if self.initialised:
            return
        owner = self._owner()
        pwfile = self.real_home / "pwfile"
        pwfile.write_text(self.password + "\n")
        if owner is not None:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        """Whether the server runs (``pg_ctl status``)."""
        if not self.initialised:
            return False
        return self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode == 0

    def start(self) -> None:
        """Initialise if needed, then start and wait until it accepts connections."""
        self.init()
        if self.running:
            return
        options = f"-p {self.port} -k {self.real_home} {_SERVER_OPTIONS}"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back sessions; ``immediate``: like a crash)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql over TCP as the superuser; return what it printed."""
        psql = shutil.which("psql") or str(bin_dir() / "psql")
        done = subprocess.run(
            [
                psql,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PGPASSWORD": self.password},
        )
        if done.returncode != 0:
            raise PostgresError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def dump(self, database: str) -> bytes:
        """Everything ``database`` stores, as ``pg_dump --data-only`` text followed by the
        bytes of every bytea value it printed in hex (where payloads live)."""
        done = subprocess.run(
            [
                str(bin_dir() / "pg_dump"),
                "--data-only",
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-U",
                self.user,
                database,
            ],
            capture_output=True,
            check=False,
            env={**os.environ, "PGPASSWORD": self.password},
        )
        if done.returncode != 0:
            raise PostgresError(f"pg_dump {database} failed: {done.stderr.decode().strip()}")
        blobs = (
            bytes.fromhex(h.decode()) for h in re.findall(rb"\\\\x((?:[0-9a-f]{2})+)", done.stdout)
        )
        return done.stdout + b"".join(blobs)
