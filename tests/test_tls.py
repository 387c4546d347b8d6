"""Connecting to Temporal behind TLS, mTLS and an API key, configured the way every Temporal
tool is (`temporalio.envconfig`: ``TEMPORAL_*`` variables and profiles in a TOML file).

The dev server has no TLS, so tests put a real TLS terminator in front of it
(`tests.support.tls.TlsProxy`: Python's ssl with a CA made here, ALPN h2, optionally
requiring a client certificate). Everything behind it is real: an ``agent-worker``
process runs an agent over TLS, the Python API and ``agentctl`` follow the run through
the same settings, and the API key reaches the server as an ``authorization`` header.
"""

import asyncio
import dataclasses
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from durable_agents._client.api import AgentsClient
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain.run import RunStatus
from durable_agents._infra.connection import (
    DEFAULT_ADDRESS,
    TemporalConfigError,
    TemporalSettings,
    connect,
)
from durable_agents._infra.temporal_settings import DEFAULT_UI_URL
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.plans import plan_reply, tool_task
from tests.support.processes import REPO, WorkerProcess
from tests.support.tls import API_KEY_ALPHABET, Pki, TlsProxy, authorization_headers

NO_FILE = {"TEMPORAL_CONFIG_FILE": os.devnull}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    return Pki.make(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def tls_proxy(pki: Pki, dev_server: DevServer) -> AsyncIterator[TlsProxy]:
    """The dev server behind TLS."""
    async with TlsProxy(pki, dev_server.address) as proxy:
        yield proxy


@pytest.fixture
async def mtls_proxy(pki: Pki, dev_server: DevServer) -> AsyncIterator[TlsProxy]:
    """The dev server behind TLS that requires a client certificate the CA signed."""
    async with TlsProxy(pki, dev_server.address, require_client_cert=True) as proxy:
        yield proxy


def tls_env(proxy: TlsProxy, pki: Pki, **more: str) -> dict[str, str]:
    """The variables that reach ``proxy`` over TLS, trusting the test CA."""
    return {
        **NO_FILE,
        "TEMPORAL_ADDRESS": proxy.address,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca_cert),
        **more,
    }


def client_cert_env(pki: Pki) -> dict[str, str]:
    return {
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki.client_cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki.client_key),
    }


def write_profile(path: Path, name: str, proxy: TlsProxy, pki: Pki, *, mtls: bool = False) -> Path:
    """A TOML configuration file holding one profile, as ``temporal config set`` writes."""
    lines = [
        f"[profile.{name}]",
        f'address = "{proxy.address}"',
        'namespace = "default"',
        f"[profile.{name}.tls]",
        f'server_ca_cert_path = "{pki.ca_cert}"',
    ]
    if mtls:
        lines += [
            f'client_cert_path = "{pki.client_cert}"',
            f'client_key_path = "{pki.client_key}"',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


async def namespace_of(settings: TemporalSettings) -> str:
    """Connect as ``settings`` say and ask the server about the namespace."""
    client = await connect(settings)
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=settings.namespace)
    )
    return described.namespace_info.name


async def agentctl(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``agentctl ARGS`` in its own process, with ``env`` over this test's environment."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "durable_agents._cli.main",
        *args,
        cwd=REPO,
        env={**os.environ, **env, "COLUMNS": "200"},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


# --- over TLS: a worker, the API and agentctl ---------------------------------------------


@pytest.mark.e2e
async def test_a_worker_runs_an_agent_over_tls_and_agentctl_follows_it(
    pki: Pki,
    tls_proxy: TlsProxy,
    model: ScriptedModelServer,
    worker_settings: WorkerSettings,
    task_queue: str,
    tmp_path: Path,
) -> None:
    env = tls_env(tls_proxy, pki, AGENTS_TASK_QUEUE=task_queue)
    settings = TemporalSettings.from_env(environ=env)
    assert settings.uses_tls and not settings.uses_client_cert
    model.enqueue(plan_reply(tool_task("t1", "record_effect", name="tls")), purpose="plan")
    model.enqueue(Reply.text("recorded over TLS"), purpose="summarize")
    # agent-worker in its own process, configured by nothing but its environment.
    worker_env = dataclasses.replace(worker_settings, temporal=settings).process_env()
    worker = await WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        api = await AgentsClient.connect(settings)
        handle = await api.start_run("test-agent", "record over TLS")
        report = await api.result(handle.workflow_id)
        assert report.status is RunStatus.COMPLETED, report.errors
        assert report.answer == "recorded over TLS"

        # agentctl reads the same variables...
        code, out, err = await agentctl(env, "status", handle.workflow_id, "--json")
        assert code == 0, err
        assert json.loads(out)["status"] == "completed"
        # ... or a profile, named with --profile and --config-file as the temporal CLI does,
        config = write_profile(tmp_path / "temporal.toml", "secure", tls_proxy, pki)
        queue = {"AGENTS_TASK_QUEUE": task_queue}
        by_option = ["--profile", "secure", "--config-file", str(config)]
        code, out, err = await agentctl(queue, *by_option, "result", handle.workflow_id, "--json")
        assert code == 0, err
        assert json.loads(out)["answer"] == "recorded over TLS"
        # ... or with TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE.
        by_env = {**queue, "TEMPORAL_PROFILE": "secure", "TEMPORAL_CONFIG_FILE": str(config)}
        code, out, err = await agentctl(by_env, "status", handle.workflow_id, "--json")
        assert code == 0, err
        assert json.loads(out)["status"] == "completed"
    finally:
        worker.terminate()
    # The worker process did connect through the TLS proxy, with TLS.
    assert f"{tls_proxy.address} (namespace default, TLS)" in worker.log_file.read_text()

    # Without TLS settings, the TLS port is named as the likely cause, in one line.
    code, out, err = await agentctl(
        {**NO_FILE, "TEMPORAL_ADDRESS": tls_proxy.address}, "status", "x"
    )
    assert code == 1 and out == ""
    assert err.startswith("error: cannot reach Temporal at") and len(err.strip().splitlines()) == 1
    assert "is the server using TLS? set TEMPORAL_TLS=true" in err


async def test_a_profile_with_a_client_certificate_connects_through_mtls(
    pki: Pki, mtls_proxy: TlsProxy, tmp_path: Path
) -> None:
    config = write_profile(tmp_path / "temporal.toml", "prod", mtls_proxy, pki, mtls=True)
    settings = TemporalSettings.from_env(
        profile="prod", environ={"TEMPORAL_CONFIG_FILE": str(config)}
    )
    assert settings.profile == "prod" and settings.uses_client_cert
    assert settings.describe() == f"{mtls_proxy.address} (namespace default, mTLS, profile prod)"
    assert await namespace_of(settings) == "default"


# --- mTLS -----------------------------------------------------------------------------------


async def test_mtls_works_with_the_client_certificate_and_is_refused_without(
    pki: Pki, mtls_proxy: TlsProxy
) -> None:
    with_cert = TemporalSettings.from_env(environ=tls_env(mtls_proxy, pki, **client_cert_env(pki)))
    assert await namespace_of(with_cert) == "default"
    handshakes = mtls_proxy.handshakes

    without = TemporalSettings.from_env(environ=tls_env(mtls_proxy, pki))
    with pytest.raises(ConnectionError) as refused:
        await connect(without)
    assert mtls_proxy.handshakes == handshakes  # the server refused the handshake
    message = str(refused.value)
    assert message.startswith(f"cannot reach Temporal at {mtls_proxy.address}")
    assert "if it requires client certificates (mTLS), set TEMPORAL_TLS_CLIENT_CERT_PATH" in message
    assert "TEMPORAL_TLS_CLIENT_KEY_PATH" in message

    # agentctl says the same, in one line.
    code, out, err = await agentctl(tls_env(mtls_proxy, pki), "status", "run-x")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "set TEMPORAL_TLS_CLIENT_CERT_PATH" in err and "Traceback" not in err


# --- what a wrong setting says ----------------------------------------------------------------


CA_FIX = "set TEMPORAL_TLS_SERVER_CA_CERT_PATH"


@pytest.mark.parametrize(
    ("setting", "fix"),
    [
        # TLS with the system's roots: the test CA is not among them.
        ({"TEMPORAL_TLS_SERVER_CA_CERT_PATH": "", "TEMPORAL_TLS": "true"}, CA_FIX),
        ({"TEMPORAL_TLS_SERVER_CA_CERT_PATH": "{other_ca}"}, CA_FIX),
        ({"TEMPORAL_TLS_SERVER_NAME": "temporal.example.com"}, "set TEMPORAL_TLS_SERVER_NAME"),
        (
            {"TEMPORAL_TLS_SERVER_CA_CERT_PATH": ""},
            "is the server using TLS? set TEMPORAL_TLS=true",
        ),
        ({"TEMPORAL_ADDRESS": "{plaintext}"}, "does not speak TLS"),
    ],
    ids=["no-ca", "other-ca", "wrong-name", "plaintext-to-tls", "tls-to-plaintext"],
)
async def test_a_tls_mismatch_names_the_setting_to_fix(
    pki: Pki, tls_proxy: TlsProxy, dev_server: DevServer, setting: dict[str, str], fix: str
) -> None:
    values = {"other_ca": str(pki.other_ca_cert), "plaintext": dev_server.address}
    env = tls_env(tls_proxy, pki, **{k: v.format(**values) for k, v in setting.items()})
    settings = TemporalSettings.from_env(environ={k: v for k, v in env.items() if v})
    with pytest.raises(ConnectionError) as failed:
        await connect(settings)
    assert fix in str(failed.value)


# --- API key ----------------------------------------------------------------------------------


async def test_the_api_key_reaches_the_server_as_a_bearer_token(
    pki: Pki, tls_proxy: TlsProxy
) -> None:
    key = "".join(secrets.choice(API_KEY_ALPHABET) for _ in range(32))
    settings = TemporalSettings.from_env(environ=tls_env(tls_proxy, pki, TEMPORAL_API_KEY=key))
    assert settings.connect_config()["api_key"] == key
    assert key not in repr(settings)  # settings get logged; the key must not be
    assert await namespace_of(settings) == "default"
    # The proxy terminates TLS, so it saw the request headers as the server did.
    assert any(header in tls_proxy.received for header in authorization_headers(key))
    assert not any(header in tls_proxy.received for header in authorization_headers(key[::-1]))


@pytest.mark.unit
def test_an_api_key_alone_means_tls_with_the_system_roots() -> None:
    """Temporal Cloud: address, namespace and key; TLS follows (unless turned off)."""
    cloud = {**NO_FILE, "TEMPORAL_ADDRESS": "ns.acct.tmprl.cloud:7233", "TEMPORAL_API_KEY": "k"}
    config = TemporalSettings.from_env(environ=cloud).connect_config()
    assert config["tls"] is True and config["api_key"] == "k"
    off = TemporalSettings.from_env(environ={**cloud, "TEMPORAL_TLS": "false"})
    assert off.connect_config()["tls"] is False and not off.uses_tls
    # An empty variable (a blank line in an env file) is no key, and no reason for TLS.
    blank = TemporalSettings.from_env(environ={**NO_FILE, "TEMPORAL_API_KEY": ""})
    assert blank.api_key is None and not blank.uses_tls


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.unit
def test_without_configuration_the_defaults_hold() -> None:
    settings = TemporalSettings.from_env(environ=NO_FILE)
    assert settings == TemporalSettings(ui_url=DEFAULT_UI_URL)
    assert settings.connect_config() == {"target_host": DEFAULT_ADDRESS, "namespace": "default"}
    assert settings.describe() == f"{DEFAULT_ADDRESS} (namespace default)"


@pytest.mark.unit
def test_variables_override_the_profile(pki: Pki, tmp_path: Path) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text(
        '[profile.prod]\naddress = "prod.example:7233"\nnamespace = "agents"\n'
        f'[profile.prod.tls]\nserver_ca_cert_path = "{pki.ca_cert}"\n'
    )
    env = {"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "prod"}
    settings = TemporalSettings.from_env(environ={**env, "TEMPORAL_NAMESPACE": "other"})
    assert (settings.address, settings.namespace) == ("prod.example:7233", "other")
    assert settings.uses_tls and settings.profile == "prod"


@pytest.mark.unit
def test_a_worker_process_gets_exactly_these_settings(pki: Pki, tmp_path: Path) -> None:
    """`WorkerSettings.process_env` hands the connection over as variables, profile and all."""
    config = tmp_path / "temporal.toml"
    key_pem = pki.client_key.read_text()
    config.write_text(
        '[profile.p]\naddress = "h:7233"\nnamespace = "n"\napi_key = "k"\n'
        '[profile.p.grpc_meta]\nx-team = "agents"\n'
        f'[profile.p.tls]\nserver_name = "h.example"\nserver_ca_cert_path = "{pki.ca_cert}"\n'
        f'client_cert_path = "{pki.client_cert}"\nclient_key_data = """{key_pem}"""\n'
    )
    settings = TemporalSettings.from_env(profile="p", environ={"TEMPORAL_CONFIG_FILE": str(config)})
    assert settings.grpc_meta == {"x-team": "agents"} and settings.uses_client_cert
    env = WorkerSettings(temporal=settings).process_env()
    assert env["TEMPORAL_CONFIG_FILE"] == os.devnull  # no profile of the new process's user
    again = TemporalSettings.from_env(environ=env)
    assert again == dataclasses.replace(settings, profile=None)
    assert again.connect_config() == settings.connect_config()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"TEMPORAL_TLS_CLIENT_CERT_PATH": "{missing}", "TEMPORAL_TLS_CLIENT_KEY_PATH": "{key}"},
            "the TLS client certificate {missing} does not exist: "
            "point TEMPORAL_TLS_CLIENT_CERT_PATH at the PEM file",
        ),
        (
            {"TEMPORAL_PROFILE": "ca", "TEMPORAL_CONFIG_FILE": "{config}"},
            "the TLS CA certificate {missing} does not exist: "
            "point tls.server_ca_cert_path of profile 'ca' in {config}",
        ),
        (
            {"TEMPORAL_TLS_CLIENT_CERT_PATH": "{cert}"},
            "mTLS needs the client certificate and its key: "
            "set both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH",
        ),
        (
            {"TEMPORAL_PROFILE": "staging", "TEMPORAL_CONFIG_FILE": "{config}"},
            "no Temporal profile 'staging' in {config} (profiles: ca, prod): "
            "choose one with TEMPORAL_PROFILE (agentctl: --profile)",
        ),
        (
            {"TEMPORAL_CONFIG_FILE": "{missing}"},
            "Temporal configuration file {missing} does not exist: "
            "fix TEMPORAL_CONFIG_FILE (agentctl: --config-file)",
        ),
        ({"TEMPORAL_TLS": "yes"}, "TEMPORAL_TLS=yes is not allowed: set true or false"),
    ],
    ids=[
        "missing-cert",
        "missing-ca-in-profile",
        "cert-without-key",
        "unknown-profile",
        "missing-file",
        "tls-yes",
    ],
)
def test_settings_that_cannot_work_say_what_to_fix(
    pki: Pki, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "temporal.toml"
    missing = tmp_path / "missing.pem"
    config.write_text(
        '[profile.prod]\naddress = "prod:7233"\n'
        f'[profile.ca.tls]\nserver_ca_cert_path = "{missing}"\n'
    )
    paths = {"config": config, "missing": missing, "cert": pki.client_cert, "key": pki.client_key}
    environ = {**NO_FILE, **{k: v.format(**paths) for k, v in env.items()}}
    with pytest.raises(TemporalConfigError) as refused:
        TemporalSettings.from_env(environ=environ)
    assert message.format(**paths) in str(refused.value)
