"""Tests against a running cluster (``make test-cluster``) instead of a fresh dev server.

``DURABLE_AGENTS_TEST_CLUSTER`` names the cluster's state dir (``.data/test-cluster``).
The session gets a namespace of its own on it, so ids fixed in tests and ledgers left by
an earlier run of the suite never meet.
"""

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from bench.chaos_roles import PLUGINS
from durable_agents._devtools.cluster import Cluster, ClusterTls
from durable_agents._devtools.cluster_parts import ClusterPorts
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain.contract import SEARCH_ATTRIBUTE_TYPES

CLUSTER_ENV = "DURABLE_AGENTS_TEST_CLUSTER"


class ClusterTarget(DevServer):
    """A `DevServer` look-alike for a session on a running cluster: the same address,
    UI and namespace properties; the cluster is not ours to start or stop."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        super().__init__(port=cluster.ports.frontend, ui_port=cluster.ports.ui, namespace=namespace)
        self.cluster = cluster

    @property
    def running(self) -> bool:
        """Whether the cluster's server runs."""
        return self.cluster.server.running

    async def start(self, timeout: float = 60.0) -> None:
        """Nothing to start: the cluster runs already."""

    async def stop(self) -> None:
        """Left running: the cluster is not the session's."""

    def stored_bytes(self) -> bytes:
        """All that the server keeps in PostgreSQL (history and visibility)."""
        pg = self.cluster.postgres
        return pg.dump("temporal") + pg.dump("temporal_visibility")


def _probe_value(name: str, kind: str) -> SearchAttributePair[Any]:
    keys: dict[str, tuple[Any, Any]] = {
        "Keyword": (SearchAttributeKey.for_keyword, "probe"),
        "Double": (SearchAttributeKey.for_float, 0.0),
        "Int": (SearchAttributeKey.for_int, 0),
        "Bool": (SearchAttributeKey.for_bool, False),
    }
    make, value = keys[kind]
    return SearchAttributePair(make(name), value)


def cluster_root() -> Path | None:
    """The cluster the suite runs against, if ``DURABLE_AGENTS_TEST_CLUSTER`` names one."""
    value = os.environ.get(CLUSTER_ENV)
    return Path(value) if value else None


async def session_on_cluster(root: Path) -> ClusterTarget:
    """A new namespace on the cluster at ``root``, ready for runs."""
    cluster = Cluster(root)
    if not cluster.server.running:
        raise RuntimeError(f"{CLUSTER_ENV}={root}: no cluster runs there (make test-cluster)")
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    await asyncio.to_thread(cluster.setup_namespace, namespace)
    client = await Client.connect(cluster.address, namespace=namespace)
    # A new namespace and its search attributes reach every service's cache within its
    # refresh interval (10 s): wait until a start that sets every attribute is accepted, so
    # the first test sees neither "namespace not found" nor "no mapping defined".
    attributes = TypedSearchAttributes(
        [_probe_value(n, k) for n, k in SEARCH_ATTRIBUTE_TYPES.items()]
    )
    async with asyncio.timeout(90):
        while True:
            try:
                handle = await client.start_workflow(
                    "NamespaceProbe",
                    id=f"probe-{uuid.uuid4().hex[:8]}",
                    task_queue="nobody-listens",
                    search_attributes=attributes,
                )
                await handle.terminate("probe only")
                break
            except Exception:
                await asyncio.sleep(0.5)
    return ClusterTarget(cluster, namespace)


@contextlib.asynccontextmanager
async def own_cluster(
    root: Path,
    model_url: str,
    task_queue: str,
    *,
    ui: bool = True,
    workers: int = 2,
    tls: ClusterTls | None = None,
) -> AsyncIterator[Cluster]:
    """A cluster of a test's own under ``root`` on free ports, with ``workers`` workers
    serving the test agent on ``task_queue`` with the scripted model at ``model_url`` (and
    ``tls`` on its frontend, if given); stopped after (its logs stay under ``root``)."""
    env = {
        "AGENT_PLUGINS": PLUGINS,
        "AGENTS_TASK_QUEUE": task_queue,
        "OPENAI_API_KEY": "test",
        "OPENAI_BASE_URL": model_url,
    }
    cluster = Cluster(
        root,
        ports=ClusterPorts.free(),
        workers=workers,
        worker_env=env,
        ui=ui,
        tie_to_parent=True,
        tls=tls,
    )
    try:
        await cluster.up()
        yield cluster
    finally:
        await asyncio.to_thread(cluster.down)  # logs stay under root
        cluster.discard_database()
