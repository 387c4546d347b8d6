"""Fixtures: one real Temporal dev server per session, a scripted model per test, and a
worker per test on its own uuid task queue.

No test may reach a real model: the OpenAI settings of every worker point at the
scripted server, and the environment's key is removed for the whole session.
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from durable_agents._activities.catalog import Catalog, load_price_table
from durable_agents._activities.plugins import EXAMPLE_PLUGINS, load_plugins, plugin_modules
from durable_agents._activities.user_limits import UserLimits
from durable_agents._devtools.dev_server import DevServer
from durable_agents._devtools.temporal_cli import find_temporal_cli
from durable_agents._infra.connection import TemporalSettings, connect
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import ScriptedModelServer
from tests.support.agentctl import Cli
from tests.support.agents import LocalAgents
from tests.support.attacks import TemporalCli
from tests.support.cluster_target import cluster_root, session_on_cluster

TEST_PLUGINS = f"{EXAMPLE_PLUGINS},tests.support.test_agent"
# Workers and agentctl that tests start in their own processes serve the same agents and
# run this checkout's code (not whichever checkout an editable install points at).
os.environ.setdefault("AGENT_PLUGINS", TEST_PLUGINS)
CHECKOUT = Path(__file__).resolve().parent.parent
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(CHECKOUT), str(CHECKOUT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
)


@pytest.fixture(scope="session", autouse=True)
def _no_real_models() -> Iterator[None]:
    """Tests never talk to a real model, whatever the developer's shell exports."""
    saved = {k: os.environ.pop(k) for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL") if k in os.environ}
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session", autouse=True)
def _no_outside_temporal_config() -> Iterator[None]:
    """Tests (and the workers and agentctl they start) reach the test servers as each test
    says, whatever the developer's shell exports or ~/.config/temporalio holds: no
    profile, API key, TLS or gRPC metadata from outside, and no configuration file."""
    outside = ("TEMPORAL_PROFILE", "TEMPORAL_API_KEY", "TEMPORAL_TLS", "TEMPORAL_GRPC_META_")
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(outside)}
    saved_file = os.environ.get("TEMPORAL_CONFIG_FILE")
    os.environ["TEMPORAL_CONFIG_FILE"] = os.devnull
    yield
    os.environ.update(saved)
    if saved_file is None:
        os.environ.pop("TEMPORAL_CONFIG_FILE", None)
    else:
        os.environ["TEMPORAL_CONFIG_FILE"] = saved_file


@pytest.fixture(scope="session")
def temporal_cli() -> Path:
    """A working Temporal CLI (built from Go modules on first use, then cached)."""
    return find_temporal_cli()


@pytest.fixture
def tcli(temporal_cli: Path, dev_server: DevServer) -> TemporalCli:
    """The official CLI, pointed at the session's dev server."""
    return TemporalCli(temporal_cli, dev_server.address, dev_server.namespace)


@pytest.fixture(scope="session")
async def dev_server(
    temporal_cli: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DevServer]:
    """One real dev server for the session, on a SQLite file in a temp dir; with
    DURABLE_AGENTS_TEST_CLUSTER, a namespace of the session's own on that cluster."""
    cluster = cluster_root()
    if cluster is not None:
        yield await session_on_cluster(cluster)
        return
    root = tmp_path_factory.mktemp("temporal")
    server = DevServer(
        db_file=root / "temporal.db", ui=True, log_file=root / "server.log", cli=temporal_cli
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def client(dev_server: DevServer) -> Client:
    """A client with the project's data converter."""
    return await connect(
        TemporalSettings(address=dev_server.address, namespace=dev_server.namespace)
    )


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    """A scripted OpenAI-compatible server for this test."""
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def task_queue() -> str:
    """A task queue of this test's own."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def worker_settings(
    dev_server: DevServer, model: ScriptedModelServer, tmp_path: Path, task_queue: str
) -> WorkerSettings:
    """Settings of this test's worker: scripted model, private data dir and queue."""
    return WorkerSettings(
        temporal=TemporalSettings(
            address=dev_server.address, namespace=dev_server.namespace, task_queue=task_queue
        ),
        data_dir=tmp_path / "worker-data",
        openai_api_key="test-key",
        openai_base_url=model.base_url,
        plugins=TEST_PLUGINS,
    )


@pytest.fixture
async def worker(
    client: Client, worker_settings: WorkerSettings, catalog: Catalog, user_limits: UserLimits
) -> AsyncIterator[None]:
    """An in-process worker on this test's queue, running for the whole test."""
    async with build_worker(client, worker_settings, catalog=catalog, limits=user_limits):
        yield


@pytest.fixture
def user_limits() -> UserLimits:
    """The monthly limits this test's worker enforces (none until a test sets some)."""
    return UserLimits()


@pytest.fixture
def catalog() -> Catalog:
    """The agents tests can start: the examples plus the test agent."""
    return Catalog(load_plugins(plugin_modules(TEST_PLUGINS)), load_price_table(None))


@pytest.fixture
def agents(client: Client, catalog: Catalog, task_queue: str) -> LocalAgents:
    """The Python API, pointed at this test's queue (and its worker's catalog)."""
    return LocalAgents(client, catalog, task_queue)


@pytest.fixture
def cli(dev_server: DevServer, task_queue: str, tmp_path: Path) -> Cli:
    """``agentctl`` with this test's server, queue and plugins (and its own state dir,
    where ``agentctl watch`` keeps its positions)."""
    cli = Cli(dev_server, task_queue, TEST_PLUGINS)
    cli.env["XDG_STATE_HOME"] = str(tmp_path / "agentctl-state")
    return cli
