"""The native cluster, docker-compose.yml, the dev server's CLI and the README agree on the
Temporal versions (deploy/temporal/versions.env) and on the server's settings."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from durable_agents._devtools.cluster_build import ServerBuild
from durable_agents._devtools.cluster_parts import (
    DEPLOY,
    MEMBERSHIP_PORT_LIMIT,
    ClusterPorts,
    compose_environment,
    compose_host_path,
    compose_service,
    interpolate,
)
from durable_agents._devtools.versions import VERSIONS_FILE, TemporalVersions, read_env_file

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent
VERSIONS = TemporalVersions.load()


def _default_tag(service: str) -> str:
    image = str(compose_service(service)["image"])
    return interpolate(image, {}).rsplit(":", 1)[1]


def test_compose_images_default_to_the_pinned_versions() -> None:
    for service in ("temporal", "temporal-schema", "temporal-setup"):
        assert _default_tag(service) == VERSIONS.server, service
    assert _default_tag("temporal-ui") == VERSIONS.ui


def test_compose_reads_the_versions_file_as_its_env_file() -> None:
    env = read_env_file(VERSIONS_FILE)
    image = str(compose_service("temporal")["image"])
    assert interpolate(image, env) == f"temporalio/server:{VERSIONS.server}"
    assert interpolate(str(compose_service("temporal-ui")["image"]), env).endswith(VERSIONS.ui)


def test_the_dev_server_runs_the_same_server_and_ui(temporal_cli: Path) -> None:
    out = subprocess.run([str(temporal_cli), "--version"], capture_output=True, text=True).stdout
    assert f"Server {VERSIONS.server}," in out and f"UI {VERSIONS.ui})" in out, out


def test_the_upgrade_goes_forward() -> None:
    def key(version: str) -> tuple[int, ...]:
        return tuple(int(p) for p in version.split("."))

    assert key(VERSIONS.upgrade) > key(VERSIONS.server)


def test_readme_names_the_pinned_versions() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    servers = set(re.findall(r"Temporal server v(\d+\.\d+\.\d+)", readme))
    uis = set(re.findall(r"Web UI v(\d+\.\d+\.\d+)", readme))
    assert servers == {VERSIONS.server} and uis == {VERSIONS.ui}, (servers, uis)
    assert f"v{VERSIONS.upgrade}" in readme


def test_membership_ports_fit_the_schema() -> None:
    for ports in (ClusterPorts(), ClusterPorts.free()):
        for name in ("frontend", "history", "matching", "worker"):
            assert getattr(ports, f"{name}_membership") < MEMBERSHIP_PORT_LIMIT


def test_the_server_config_renders_with_the_compose_settings() -> None:
    """The server renders deploy/temporal/config/cluster.yaml from the compose file's
    settings for the `temporal` service (the binary is built by `make temporal-cluster`)."""
    build = ServerBuild(VERSIONS.server)
    if not build.ready():
        build.ensure()
    compose = compose_environment("temporal", {})
    dynamic = compose_host_path("temporal", compose["DYNAMIC_CONFIG_FILE_PATH"])
    assert dynamic == DEPLOY / "dynamicconfig" / "docker.yaml"
    env = {
        **os.environ,
        **compose,
        "POSTGRES_SEEDS": "127.0.0.1",
        "DB_PORT": "55432",
        "BIND_ON_IP": "127.0.0.1",
        "DYNAMIC_CONFIG_FILE_PATH": str(dynamic),
        **ClusterPorts().server_env(),
    }
    # render-config reads --config relative to the working directory, not --root.
    command = [str(build.server), "--config", "config", "--env", "cluster", "render-config"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=DEPLOY, check=False)
    assert done.returncode == 0, done.stderr
    assert f"numhistoryshards: {compose['NUM_HISTORY_SHARDS']}" in done.stdout.lower()
    assert "127.0.0.1:55432" in done.stdout and "0.0.0.0" not in done.stdout
