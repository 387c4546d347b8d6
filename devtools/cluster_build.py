"""The Temporal server, its SQL tool and the Web UI server, built from Go modules.

Each lands in the user cache beside the Temporal CLI (see `durable_agents._devtools.go_build`):

- ``temporal-server-<v>/``: ``temporal-server``, ``temporal-sql-tool`` (``go install`` names
  it ``sql``) and ``schema/`` (the module's SQL schemas, which ``setup-schema.sh`` applies);
- ``temporal-ui-<v>/``: ``temporal-ui-server`` and ``config/`` (the module's own
  ``base.yaml`` and ``docker.yaml``, the file the ``temporalio/ui`` image runs with, plus a
  ``host`` so it binds only where it is told).

``python -m durable_agents._devtools.cluster_build [--upgrade]`` builds what is missing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from durable_agents._devtools.go_build import (
    GoBuildError,
    Say,
    build_cached,
    cache_root,
    go_install,
    module_dir,
)
from durable_agents._devtools.temporal_cli import find_temporal_cli
from durable_agents._devtools.versions import TemporalVersions

SERVER_MODULE = "go.temporal.io/server"
UI_MODULE = "github.com/temporalio/ui-server/v2"
# The UI's docker.yaml reads its settings from the environment but has no bind address.
_UI_HOST_LINE = 'host: {{ env "TEMPORAL_UI_IP" | default "0.0.0.0" }}\n'


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _reports(binary: Path, version: str) -> bool:
    """Whether ``binary --version`` runs and names ``version``."""
    if not binary.is_file():
        return False
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and version in done.stdout


@dataclass(frozen=True)
class ServerBuild:
    """``temporal-server`` and ``temporal-sql-tool`` of one release, and its schemas."""

    version: str

    @property
    def home(self) -> Path:
        """The cache directory."""
        return cache_root() / f"temporal-server-{self.version}"

    @property
    def server(self) -> Path:
        """The server binary (all four services in one process by default)."""
        return self.home / "temporal-server"

    @property
    def sql_tool(self) -> Path:
        """``temporal-sql-tool``, under the name the admin-tools image and our scripts use."""
        return self.home / "temporal-sql-tool"

    @property
    def postgres_schema(self) -> Path:
        """The PostgreSQL schemas (``SCHEMA_ROOT`` of ``setup-schema.sh``)."""
        return self.home / "schema" / "postgresql" / "v12"

    def ready(self) -> bool:
        """Whether both binaries run at this version and the schemas are there."""
        return (
            _reports(self.server, self.version)
            and _reports(self.sql_tool, self.version)
            and (self.postgres_schema / "temporal" / "versioned").is_dir()
        )

    def _build(self, tmp: Path, say: Say) -> None:
        at = f"@v{self.version}"
        say(
            f"building Temporal server and SQL tool v{self.version} from Go modules into "
            f"{self.home} (first time only; a few minutes)"
        )
        packages = [f"{SERVER_MODULE}/cmd/server{at}", f"{SERVER_MODULE}/cmd/tools/sql{at}"]
        elapsed = go_install(packages, tmp, f"Temporal server v{self.version}", say)
        (tmp / "server").rename(tmp / "temporal-server")
        (tmp / "sql").rename(tmp / "temporal-sql-tool")
        shutil.copytree(module_dir(SERVER_MODULE + at) / "schema", tmp / "schema")
        say(f"built Temporal server v{self.version} in {elapsed:.0f}s")

    def ensure(self, say: Say = _say) -> ServerBuild:
        """Build into the cache unless a working build is there."""
        build_cached(
            self.home,
            f"Temporal server v{self.version}",
            self.ready,
            lambda t: self._build(t, say),
            say,
        )
        return self


@dataclass(frozen=True)
class UiBuild:
    """The Temporal Web UI server of one release and its config."""

    version: str

    @property
    def home(self) -> Path:
        """The cache directory."""
        return cache_root() / f"temporal-ui-{self.version}"

    @property
    def server(self) -> Path:
        """The UI server binary."""
        return self.home / "temporal-ui-server"

    @property
    def config_dir(self) -> Path:
        """``base.yaml`` and ``docker.yaml`` (run with ``--env docker``)."""
        return self.home / "config"

    def ready(self) -> bool:
        """Whether the binary runs at this version and its config is there."""
        return _reports(self.server, self.version) and (self.config_dir / "docker.yaml").is_file()

    def _build(self, tmp: Path, say: Say) -> None:
        at = f"@v{self.version}"
        say(f"building Temporal Web UI server v{self.version} from Go modules into {self.home}")
        elapsed = go_install([f"{UI_MODULE}/cmd/server{at}"], tmp, "Temporal Web UI", say)
        (tmp / "server").rename(tmp / "temporal-ui-server")
        source = module_dir(UI_MODULE + at) / "config"
        (tmp / "config").mkdir()
        shutil.copyfile(source / "base.yaml", tmp / "config" / "base.yaml")
        docker = (source / "docker.yaml").read_text(encoding="utf-8")
        (tmp / "config" / "docker.yaml").write_text(docker.rstrip("\n") + "\n" + _UI_HOST_LINE)
        for path in (tmp / "config").iterdir():
            path.chmod(0o644)  # the module cache's copies are read-only
        say(f"built Temporal Web UI server v{self.version} in {elapsed:.0f}s")

    def ensure(self, say: Say = _say) -> UiBuild:
        """Build into the cache unless a working build is there."""
        build_cached(
            self.home,
            f"Temporal Web UI v{self.version}",
            self.ready,
            lambda t: self._build(t, say),
            say,
        )
        return self


@dataclass(frozen=True)
class ClusterBinaries:
    """Everything the native cluster runs: CLI (namespace setup), server, SQL tool, UI."""

    cli: Path
    server: ServerBuild
    ui: UiBuild

    @classmethod
    def ensure(cls, server_version: str | None = None, say: Say = _say) -> ClusterBinaries:
        """Find or build all of them (the pinned versions unless told otherwise)."""
        versions = TemporalVersions.load()
        cli = find_temporal_cli(progress=say)
        server = ServerBuild(server_version or versions.server).ensure(say)
        ui = UiBuild(versions.ui).ensure(say)
        return cls(cli, server, ui)


def main(argv: list[str] | None = None) -> int:
    """Build the pinned server, SQL tool and UI (and, with --upgrade, the next server)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--upgrade", action="store_true", help="also build TEMPORAL_UPGRADE_VERSION's server"
    )
    args = parser.parse_args(argv)
    try:
        built = ClusterBinaries.ensure()
        if args.upgrade:
            ServerBuild(TemporalVersions.load().upgrade).ensure()
    except GoBuildError as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    sys.stdout.write(f"{built.server.home}\n{built.ui.home}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
