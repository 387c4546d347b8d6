"""TLS and mTLS terminated by the Temporal server itself, not by a proxy in front of it.

The native cluster (devtools/cluster.py) runs with ``global.tls`` on its frontend: the
server certificate and client CA made by `tests.support.tls.Pki`, once with TLS only and
once requiring client certificates (mTLS). The cluster's own clients (system workers,
namespace setup, Web UI, two agent workers) connect with the client certificate. The
tests connect as a user would, with nothing but ``TEMPORAL_*`` variables: trusting the CA
(and with the certificate, for mTLS) they run an agent; without the certificate mTLS is
refused, and without TLS at all either, each with the one-line hint naming the fix.
"""

import asyncio
import os
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from durable_agents._client.api import AgentsClient
from durable_agents._devtools.cluster import Cluster, ClusterTls
from durable_agents._domain.run import RunStatus
from durable_agents._infra.connection import TemporalSettings, connect
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support import test_agent
from tests.support.cluster_target import own_cluster
from tests.support.plans import plan_reply, tool_task
from tests.support.tls import Pki

pytestmark = [pytest.mark.e2e]
QUEUE = "cluster-mtls"
NO_FILE = {"TEMPORAL_CONFIG_FILE": os.devnull}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    return Pki.make(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def cluster_model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture(scope="module", params=[False, True], ids=["tls", "mtls"])
async def tls_cluster(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pki: Pki,
    cluster_model: ScriptedModelServer,
) -> AsyncIterator[Cluster]:
    """A cluster whose frontend speaks TLS only, and (mtls) requires a client certificate
    the test CA signed."""
    tls = ClusterTls(
        ca_cert=pki.ca_cert,
        server_cert=pki.server_cert,
        server_key=pki.server_key,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
        require_client_cert=request.param,
    )
    root = tmp_path_factory.mktemp("tls-cluster")
    async with own_cluster(root, cluster_model.base_url, QUEUE, tls=tls) as cluster:
        yield cluster


def env_for(cluster: Cluster, pki: Pki, *, client_cert: bool) -> dict[str, str]:
    """What a user sets to reach ``cluster`` over TLS (with the client certificate)."""
    env = {
        **NO_FILE,
        "TEMPORAL_ADDRESS": cluster.address,
        "TEMPORAL_NAMESPACE": cluster.namespace,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca_cert),
        "AGENTS_TASK_QUEUE": QUEUE,
    }
    if client_cert:
        env["TEMPORAL_TLS_CLIENT_CERT_PATH"] = str(pki.client_cert)
        env["TEMPORAL_TLS_CLIENT_KEY_PATH"] = str(pki.client_key)
    return env


def _http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as page:
        return int(page.status)


def requires_client_cert(cluster: Cluster) -> bool:
    assert cluster.tls is not None
    return cluster.tls.require_client_cert


@pytest.mark.timeout(300)
async def test_an_agent_runs_on_a_cluster_that_terminates_tls(
    tls_cluster: Cluster, pki: Pki, cluster_model: ScriptedModelServer
) -> None:
    mtls = requires_client_cert(tls_cluster)
    settings = TemporalSettings.from_env(environ=env_for(tls_cluster, pki, client_cert=mtls))
    assert settings.uses_tls and settings.uses_client_cert == mtls
    client = await connect(settings)
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=tls_cluster.namespace)
    )
    assert described.namespace_info.name == tls_cluster.namespace
    # The cluster's own clients got through too: the workers polled, the Web UI answers.
    status = tls_cluster.status()
    assert status["workers"] == 2 and "(up)" in str(status["web_ui"]), status
    assert await asyncio.to_thread(_http_status, tls_cluster.ui_url) == 200

    name = "mtls" if mtls else "tls"
    cluster_model.enqueue(plan_reply(tool_task("t1", "record_effect", name=name)), purpose="plan")
    cluster_model.enqueue(Reply.text(f"recorded over {name}"), purpose="summarize")
    agents = AgentsClient(client, QUEUE)
    handle = await agents.start_run("test-agent", f"record over {name}")
    report = await asyncio.wait_for(agents.result(handle.workflow_id), 120)
    assert report.status is RunStatus.COMPLETED, report.errors
    assert report.answer == f"recorded over {name}"
    assert test_agent.effects(tls_cluster.agent_data_dir) == [name]


async def test_without_the_client_certificate_mtls_refuses_and_the_hint_says_so(
    tls_cluster: Cluster, pki: Pki
) -> None:
    without = TemporalSettings.from_env(environ=env_for(tls_cluster, pki, client_cert=False))
    if not requires_client_cert(tls_cluster):
        await connect(without)  # TLS alone: the CA is all a client needs
        return
    with pytest.raises(ConnectionError) as refused:
        await connect(without)
    message = str(refused.value)
    assert message.startswith(f"cannot reach Temporal at {tls_cluster.address}"), message
    assert len(message.splitlines()) == 1
    assert "if it requires client certificates (mTLS), set TEMPORAL_TLS_CLIENT_CERT_PATH" in message


async def test_a_plaintext_client_is_asked_whether_the_server_uses_tls(
    tls_cluster: Cluster,
) -> None:
    plain = {**NO_FILE, "TEMPORAL_ADDRESS": tls_cluster.address}
    with pytest.raises(ConnectionError) as failed:
        await connect(TemporalSettings.from_env(environ=plain))
    message = str(failed.value)
    assert len(message.splitlines()) == 1
    assert "is the server using TLS? set TEMPORAL_TLS=true" in message, message
