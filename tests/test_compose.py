"""The container deployment (docker-compose.yml, Dockerfile, deploy/), checked statically.

Neither a Docker engine nor the network is needed: the compose file is validated against
the Compose Specification schema vendored in tests/data/, and every value that has to
agree with the project (the worker's environment variables, ports, console scripts,
search attributes, shutdown timing) is compared with the code and README that define it.

Compose variables (``${NAME:-default}``) are resolved as with an empty host environment,
so the checks see the defaults whatever the developer's shell exports.
"""

import ast
import importlib.metadata
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from datetime import timedelta
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from durable_agents._domain.contract import SEARCH_ATTRIBUTE_TYPES
from durable_agents._domain.run import DEFAULT_TASK_QUEUE
from durable_agents._infra.connection import DEFAULT_ADDRESS, TemporalSettings
from durable_agents._workers.config import WorkerSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY = ROOT / "deploy"
README = ROOT / "README.md"
PYPROJECT = ROOT / "pyproject.toml"
COMPOSE_SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"
SOURCE_DIRS = (
    "domain", "infra", "workflows", "activities", "workers", "client", "cli", "devtools",
    "examples",
)  # fmt: skip

# Worker variables that no project code reads because a library does, each with the
# distribution that reads it: the test checks that it is a declared dependency (the image
# installs nothing else) and that its code mentions the variable. Empty today: the worker
# reads every variable the compose file sets itself (workers/telemetry.py reads the
# OTEL_EXPORTER_OTLP_* ones and hands them to the OpenTelemetry exporters).
LIBRARY_READERS: dict[str, str] = {}

# The OpenTelemetry distribution that exports spans over each OTLP protocol, and the
# collector receiver protocol that takes it.
OTLP_EXPORTERS: dict[str, tuple[str, str]] = {
    "grpc": ("opentelemetry-exporter-otlp-proto-grpc", "grpc"),
    "http/protobuf": ("opentelemetry-exporter-otlp-proto-http", "http"),
}


# --- loading --------------------------------------------------------------------------

_COMPOSE_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable syntax, resolved against ``env``."""

    def value(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise ValueError(f"compose variable {name} is required: {arg}")
        if op == ":+":
            return arg if current else ""
        if op == "+":
            return "" if current is None else arg
        return current or ""

    return _COMPOSE_VARIABLE.sub(value, text)


def interpolated(node: Any, env: Mapping[str, str]) -> Any:
    """``node`` with every string value interpolated (keys are left alone, as Compose does)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    return node


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


RAW_COMPOSE: dict[str, Any] = load_yaml(COMPOSE_FILE)
COMPOSE: dict[str, Any] = interpolated(RAW_COMPOSE, {})
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def environment(service: str) -> dict[str, str | None]:
    """A service's environment as a mapping (list form ``NAME=value`` too)."""
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {name: value for name, value in pairs}
    return {name: None if value is None else str(value) for name, value in env.items()}


WORKER_ENV = environment("worker")


class Port(NamedTuple):
    host_ip: str | None
    published: int | None
    target: int


def ports(service: str) -> list[Port]:
    """The ports a service publishes, short (``ip:host:container``) or long syntax."""
    found = []
    for entry in SERVICES[service].get("ports", []):
        if isinstance(entry, dict):
            published = entry.get("published")
            found.append(
                Port(
                    entry.get("host_ip"),
                    None if published is None else int(published),
                    int(entry["target"]),
                )
            )
            continue
        parts = str(entry).split("/")[0].rsplit(":", 2)
        target = int(parts[-1])
        published_port = int(parts[-2]) if len(parts) >= 2 and parts[-2] else None
        host_ip = parts[0] if len(parts) == 3 else None
        found.append(Port(host_ip, published_port, target))
    return found


def command(service: str) -> list[str]:
    cmd = SERVICES[service].get("command")
    return cmd.split() if isinstance(cmd, str) else list(cmd or [])


def bind_mounts(service: str) -> list[tuple[str, str]]:
    """(host path, container path) of a service's bind mounts."""
    mounts = []
    for entry in SERVICES[service].get("volumes", []):
        if isinstance(entry, dict):
            if entry.get("type") == "bind":
                mounts.append((entry["source"], entry["target"]))
            continue
        source, target = str(entry).split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def distribution_name(requirement: str) -> str:
    name = re.split(r"[\s\[<>=!~;@(]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_dependencies() -> set[str]:
    """What `pip install .` puts in the image: [project] dependencies, no extras."""
    return {distribution_name(r) for r in pyproject()["project"]["dependencies"]}


def project_sources() -> Iterator[Path]:
    for directory in SOURCE_DIRS:
        yield from sorted((ROOT / directory).rglob("*.py"))


def wheel_layers() -> dict[str, str]:
    """The build hook's map of repository folders to the package's subpackages."""
    tree = ast.parse((ROOT / "scripts" / "hatch_layers.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LAYERS":
            layers: dict[str, str] = ast.literal_eval(node.value)
            return layers
    raise AssertionError("scripts/hatch_layers.py defines no LAYERS")


def read_by_project(name: str) -> list[Path]:
    """The project's source files that mention ``"NAME"`` (or ``'NAME'``)."""
    quoted = (f'"{name}"', f"'{name}'")
    return [
        path
        for path in project_sources()
        if any(q in path.read_text(encoding="utf-8") for q in quoted)
    ]


def readme_environment() -> dict[str, str]:
    """README's Environment table: variable -> the rest of its row."""
    text = README.read_text(encoding="utf-8")
    assert "\n## Environment\n" in text, "README.md has no '## Environment' section"
    section = text.split("\n## Environment\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|(.*)$", section, flags=re.MULTILINE))


class Instruction(NamedTuple):
    keyword: str
    args: str


def dockerfile_stages() -> list[list[Instruction]]:
    """The Dockerfile's instructions, split into build stages (ARGs before FROM apply)."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = args.strip().partition("=")
            global_args[name] = default
            continue
        if keyword == "FROM":
            args = interpolate(args, global_args)
            stages.append([])
        stages[-1].append(Instruction(keyword, args.strip()))
    return stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def compose_duration(text: str) -> timedelta:
    """Compose's duration format (``1m30s``, ``30s``, ``500ms``)."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"bad duration {text!r}"
    return timedelta(seconds=sum(float(n) * units[u] for n, u in parts))


def graceful_shutdown_timeout() -> timedelta:
    """How long the compose worker lets activities finish on SIGTERM: its
    ``AGENT_SHUTDOWN_GRACE_S`` if the compose file sets it, else the setting's default
    (which workers/build.py passes as ``graceful_shutdown_timeout``)."""
    build = (ROOT / "workers" / "build.py").read_text(encoding="utf-8")
    assert "graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_s)" in build
    env = SERVICES["worker"].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env if "=" in item)
    value = env.get("AGENT_SHUTDOWN_GRACE_S")
    seconds = float(value) if value else WorkerSettings().shutdown_grace_s
    return timedelta(seconds=seconds)


# --- 1. the Compose Specification -----------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for label, document in (("as written", RAW_COMPOSE), ("interpolated", COMPOSE)):
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        assert not errors, f"docker-compose.yml ({label}) breaks the Compose Specification:\n" + (
            "\n".join(f"  {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
        )


def test_the_schema_rejects_what_compose_rejects() -> None:
    """The vendored schema is the real one, not a permissive stand-in."""
    validator = jsonschema.Draft202012Validator(
        json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    )
    assert not validator.is_valid({"services": {"w": {"image": "x", "no_such_key": 1}}})
    assert not validator.is_valid({"services": {"w": {"image": "x", "restart": 3}}})
    assert validator.is_valid({"services": {"w": {"image": "x", "restart": "always"}}})


# --- 2. the worker's environment ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WORKER_ENV))
def test_worker_variable_is_read(name: str) -> None:
    if name in LIBRARY_READERS:
        dist = LIBRARY_READERS[name]
        assert dist in declared_dependencies(), f"{name} is read by {dist}, not a dependency"
        files = importlib.metadata.distribution(dist).files or []
        assert any(
            name in Path(str(f.locate())).read_text(encoding="utf-8", errors="replace")
            for f in files
            if f.suffix == ".py"
        ), f"{dist} does not mention {name}"
        return
    assert read_by_project(name), (
        f"the worker service sets {name}, but no source file under {', '.join(SOURCE_DIRS)} "
        f'reads "{name}" (a variable read by a library belongs in LIBRARY_READERS)'
    )


@pytest.mark.parametrize("name", sorted(WORKER_ENV))
def test_worker_variable_is_documented(name: str) -> None:
    assert name in readme_environment(), f"{name} is missing from README's Environment table"


@pytest.fixture
def compose_worker_settings(monkeypatch: pytest.MonkeyPatch) -> WorkerSettings:
    """`WorkerSettings.from_env()` in a process that has exactly the worker's environment."""
    prefixes = ("TEMPORAL_", "AGENT", "OPENAI_", "OTEL_", "DB_TUNER_")
    for name in [n for n in os.environ if n.startswith(prefixes)]:
        monkeypatch.delenv(name)
    for name, value in WORKER_ENV.items():
        if value is not None:  # no value: passed through from the host, here unset
            monkeypatch.setenv(name, value)
    return WorkerSettings.from_env()


def test_worker_environment_configures_a_worker(compose_worker_settings: WorkerSettings) -> None:
    """The compose environment, given to the real settings loader, means what it says."""
    settings = compose_worker_settings
    assert settings.temporal.address == f"temporal:{ports('temporal')[0].target}"
    assert settings.data_dir == Path("/data")
    assert settings.uses_offline_model and settings.openai_base_url is None
    # A host's agentctl with the defaults talks to the same namespace and task queue.
    assert settings.temporal.namespace == TemporalSettings().namespace
    assert settings.temporal.task_queue == DEFAULT_TASK_QUEUE
    assert environment("temporal-setup")["TEMPORAL_NAMESPACE"] == settings.temporal.namespace
    assert environment("temporal-ui")["TEMPORAL_DEFAULT_NAMESPACE"] == settings.temporal.namespace


def test_passed_through_secrets_have_no_value_in_the_file() -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        assert name in RAW_COMPOSE["services"]["worker"]["environment"]
        assert RAW_COMPOSE["services"]["worker"]["environment"][name] is None, name


# --- 3. commands and ports ------------------------------------------------------------


def test_worker_runs_the_agent_worker_console_script() -> None:
    scripts: dict[str, str] = pyproject()["project"]["scripts"]
    worker_cmd = command("worker")
    assert worker_cmd and worker_cmd[0] in scripts, f"{worker_cmd} is not in [project.scripts]"
    assert scripts[worker_cmd[0]] == "durable_agents._workers.main:main"
    final = dockerfile_stages()[-1]
    starts = [i for i in final if i.keyword in ("ENTRYPOINT", "CMD")]
    assert starts, "the Dockerfile's final stage has no ENTRYPOINT/CMD"
    program = exec_form(starts[0].args)[0]
    assert program in scripts and scripts[program] == "durable_agents._workers.main:main"


def test_dockerfile_image_user_signal_and_volume() -> None:
    stages = dockerfile_stages()
    final = stages[-1]
    assert final[0].args.split()[0].startswith("python:3.11-slim"), final[0]
    users = [i.args for i in final if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the worker must not run as root"
    assert [i.args for i in final if i.keyword == "STOPSIGNAL"] == ["SIGTERM"]
    volumes = [v for i in final if i.keyword == "VOLUME" for v in exec_form(i.args)]
    data_dir = WORKER_ENV["AGENT_DATA_DIR"]
    assert data_dir in volumes
    assert f"AGENT_DATA_DIR={data_dir}" in " ".join(i.args for i in final if i.keyword == "ENV")
    assert ("agent-data", data_dir) in [
        tuple(str(v).split(":")[:2]) for v in SERVICES["worker"]["volumes"]
    ]


def test_dockerfile_copies_every_package_of_the_wheel() -> None:
    project = pyproject()
    hook = project["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["custom"]["path"]
    needed = {"pyproject.toml", project["project"]["readme"], hook, "src", *wheel_layers()}
    copied: set[str] = set()
    for instruction in dockerfile_stages()[0]:
        if instruction.keyword == "COPY" and "--from" not in instruction.args:
            copied.update(p.rstrip("/") for p in instruction.args.split()[:-1])
    assert needed <= copied, f"the build stage does not copy {sorted(needed - copied)}"
    ignored = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in sorted(needed):
        assert not any(fnmatch(path, pattern) for pattern in ignored), (
            f".dockerignore excludes {path}, which the image needs"
        )
    for heavy in (".venv", ".data", ".git"):
        assert heavy in ignored, f".dockerignore should exclude {heavy}"


def test_temporal_port_matches_the_documented_address() -> None:
    (port,) = ports("temporal")
    default_port = int(DEFAULT_ADDRESS.rsplit(":", 1)[1])
    assert port.published == port.target == default_port == 7233
    assert f"`{DEFAULT_ADDRESS}`" in readme_environment()["TEMPORAL_ADDRESS"]
    for service in ("worker", "temporal-setup", "temporal-ui"):
        assert environment(service)["TEMPORAL_ADDRESS"] == f"temporal:{port.target}", service


def test_ui_port_matches_the_documented_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEMPORAL_UI_URL", raising=False)
    ui_url = TemporalSettings.from_env().ui_url
    assert ui_url is not None
    documented = urlsplit(ui_url)
    (port,) = ports("temporal-ui")
    assert port.published == documented.port
    assert f"<{ui_url}>" in README.read_text(encoding="utf-8")
    assert port.target == int(environment("temporal-ui").get("TEMPORAL_UI_PORT") or 8080)


def test_published_ports_are_bound_to_loopback() -> None:
    for service in SERVICES:
        for port in ports(service):
            assert port.host_ip == "127.0.0.1", f"{service} publishes {port} beyond the host"


def test_workers_scale_and_stop_gracefully() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker and not worker.get("ports")
    assert worker.get("restart") in ("always", "unless-stopped", "on-failure")
    grace = compose_duration(worker["stop_grace_period"])
    assert grace > graceful_shutdown_timeout(), (
        f"stop_grace_period {grace} must exceed graceful_shutdown_timeout "
        f"{graceful_shutdown_timeout()} so running activities can finish"
    )


def test_prometheus_scrapes_every_worker_on_its_metrics_port() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    metrics_port = int(WORKER_ENV["AGENT_METRICS_PORT"] or 0)
    worker_jobs = [
        sd
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        if "worker" in sd["names"]
    ]
    assert worker_jobs, "no dns_sd_configs job resolves the service name `worker`"
    for sd in worker_jobs:
        assert sd.get("type", "SRV") == "A" and sd["port"] == metrics_port
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    server_metrics = environment("temporal")["PROMETHEUS_ENDPOINT"] or ""
    assert f"temporal:{server_metrics.rsplit(':', 1)[1]}" in targets
    for target in targets:
        assert target.rsplit(":", 1)[0] in {*SERVICES, "localhost"}, target


def test_prometheus_config_is_mounted() -> None:
    assert ("./deploy/prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml") in (
        bind_mounts("prometheus")
    )


# --- 4. deploy/ configuration ---------------------------------------------------------


# Server config templates ("# enable-template") are YAML only once the server renders them:
# tests/test_cluster_config.py has the server render them.
@pytest.mark.parametrize(
    "path",
    sorted(
        p.relative_to(ROOT).as_posix()
        for p in DEPLOY.rglob("*")
        if p.suffix in (".yml", ".yaml") and not p.read_text().startswith("# enable-template")
    ),
)
def test_deploy_yaml_parses(path: str) -> None:
    assert isinstance(load_yaml(ROOT / path), dict), f"{path} is not a YAML mapping"


def test_bind_mounts_exist() -> None:
    for service in SERVICES:
        for source, _ in bind_mounts(service):
            assert (ROOT / source).exists(), f"{service} mounts {source}, which does not exist"


def test_collector_sends_otlp_traces_to_jaeger() -> None:
    config = collector_config()
    assert ("./deploy/otel-collector/config.yaml", "/etc/otelcol-contrib/config.yaml") in (
        bind_mounts("otel-collector")
    )

    def kind(component_id: str) -> str:
        return component_id.split("/", 1)[0]

    service = config["service"]
    for section in ("receivers", "processors", "exporters", "connectors"):
        for pipeline in service["pipelines"].values():
            for component in pipeline.get(section, []):
                assert component in config.get(section, {}), f"{component} is not defined"
    for extension in service.get("extensions", []):
        assert extension in config.get("extensions", {}), f"{extension} is not defined"

    wired = False
    for name, pipeline in service["pipelines"].items():
        receivers = [r for r in pipeline["receivers"] if kind(r) == "otlp"]
        exporters = [
            e
            for e in pipeline["exporters"]
            if kind(e) in ("otlp", "otlp_grpc", "otlphttp", "otlp_http", "jaeger")
        ]
        if not (name.split("/")[0] == "traces" and receivers and exporters):
            continue
        for exporter in exporters:
            target = config["exporters"][exporter]["endpoint"]
            host = urlsplit(target if "//" in target else f"//{target}").hostname
            assert host in SERVICES and "jaeger" in SERVICES[host]["image"], target
        wired = True
    assert wired, "no traces pipeline takes an otlp receiver to a Jaeger (OTLP) exporter"


def collector_config() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(DEPLOY / "otel-collector" / "config.yaml")
    return config


def test_worker_exports_spans_to_the_collector(compose_worker_settings: WorkerSettings) -> None:
    telemetry = compose_worker_settings.telemetry
    assert telemetry.otlp_endpoint, "the worker would export no spans"
    endpoint = urlsplit(telemetry.otlp_endpoint)
    assert endpoint.hostname == "otel-collector" and "otel-collector" in SERVICES
    _, protocol = OTLP_EXPORTERS[telemetry.otlp_protocol]
    config = collector_config()
    trace_receivers = {
        receiver
        for name, pipeline in config["service"]["pipelines"].items()
        if name.split("/")[0] == "traces"
        for receiver in pipeline["receivers"]
        if receiver.split("/")[0] == "otlp"
    }
    listening = {
        int(config["receivers"][r]["protocols"][protocol]["endpoint"].rsplit(":", 1)[1])
        for r in trace_receivers
        if protocol in (config["receivers"][r].get("protocols") or {})
    }
    assert endpoint.port in listening, (
        f"the worker sends OTLP/{protocol} to port {endpoint.port}; the collector's traces "
        f"pipeline takes OTLP/{protocol} on {sorted(listening)}"
    )


def test_the_image_ships_the_otlp_exporter_the_worker_uses(
    compose_worker_settings: WorkerSettings,
) -> None:
    dist, _ = OTLP_EXPORTERS[compose_worker_settings.telemetry.otlp_protocol]
    assert dist in declared_dependencies(), (
        f"the worker exports spans with {dist} (OTEL_EXPORTER_OTLP_PROTOCOL="
        f"{compose_worker_settings.telemetry.otlp_protocol}), but pyproject.toml does not "
        "declare it: the image (pip install .) would lack it and agent-worker would fail to start"
    )


def test_worker_serves_metrics_where_prometheus_looks(
    compose_worker_settings: WorkerSettings,
) -> None:
    address = compose_worker_settings.telemetry.metrics_address
    assert address, "AGENT_METRICS_PORT is not set: the worker serves no metrics"
    host, port = address.rsplit(":", 1)
    assert host not in ("127.0.0.1", "localhost", "[::1]"), (
        f"the worker serves metrics on {address}, which Prometheus (another container) "
        "cannot reach; set AGENT_METRICS_HOST=0.0.0.0"
    )
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    scraped = {
        sd["port"]
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        if "worker" in sd["names"]
    }
    assert scraped == {int(port)}


def test_setup_registers_exactly_the_domain_search_attributes() -> None:
    script = (DEPLOY / "temporal" / "setup-namespace.sh").read_text(encoding="utf-8")
    registered = dict(
        re.findall(r"^retry .* ensure_search_attribute (\w+) (\w+)$", script, flags=re.MULTILINE)
    )
    assert registered == SEARCH_ATTRIBUTE_TYPES
    setup = SERVICES["temporal-setup"]
    assert setup["entrypoint"][-1] == "/deploy/setup-namespace.sh"
    assert ("./deploy/temporal", "/deploy") in bind_mounts("temporal-setup")


def test_temporal_schema_setup_and_server_agree() -> None:
    def tag(service: str) -> str:
        return str(SERVICES[service]["image"]).rsplit(":", 1)[1]

    assert str(SERVICES["temporal"]["image"]).startswith("temporalio/server:")
    for job in ("temporal-schema", "temporal-setup"):
        assert str(SERVICES[job]["image"]).startswith("temporalio/admin-tools:")
        assert tag(job) == tag("temporal"), "admin-tools must be the server's release"
        assert SERVICES[job]["restart"] == "no"
    depends = SERVICES["temporal"]["depends_on"]
    assert depends["postgresql"]["condition"] == "service_healthy"
    assert depends["temporal-schema"]["condition"] == "service_completed_successfully"
    assert "healthcheck" in SERVICES["postgresql"]
    schema_db = environment("temporal-schema")
    server_db = environment("temporal")
    assert schema_db["SQL_HOST"] == server_db["POSTGRES_SEEDS"] == "postgresql"
    assert schema_db["SQL_USER"] == server_db["POSTGRES_USER"]
    assert schema_db["SQL_PASSWORD"] == server_db["POSTGRES_PWD"]
    assert schema_db["SQL_PLUGIN"] == server_db["DB"]
    assert (
        SERVICES["worker"]["depends_on"]["temporal-setup"]["condition"]
        == "service_completed_successfully"
    )


def test_dynamic_config_is_mounted_where_the_server_reads_it() -> None:
    path = environment("temporal")["DYNAMIC_CONFIG_FILE_PATH"] or ""
    for source, target in bind_mounts("temporal"):
        if path.startswith(target.rstrip("/") + "/"):
            assert (ROOT / source / path[len(target.rstrip("/")) + 1 :]).is_file()
            return
    pytest.fail(f"DYNAMIC_CONFIG_FILE_PATH {path} is not in a mounted directory")


def test_the_cluster_bounds_what_callers_add_to_a_history_like_the_dev_server() -> None:
    from durable_agents._devtools.dev_server import DYNAMIC_CONFIG, SIGNAL_LIMITS

    config = load_yaml(ROOT / "deploy" / "temporal" / "dynamicconfig" / "docker.yaml")
    for key, value in SIGNAL_LIMITS.items():
        assert config[key] == [{"value": value, "constraints": {}}], key
        assert DYNAMIC_CONFIG[key] == value
