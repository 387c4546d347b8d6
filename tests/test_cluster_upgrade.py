"""An in-place upgrade of the native cluster with runs in flight: while three runs wait for
a person's approval, the schema and the server move from the pinned release to the next
(deploy/temporal/versions.env), and the runs then complete, every effect taken once.

Marked ``upgrade``: it builds a second server release (minutes the first time), so it runs
in ``make test-cluster``, not in ``make test``.
"""

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from bench.chaos_check import RunOutcome
from bench.chaos_roles import approval_driver
from bench.chaos_script import ChaosScript, effect_names, goal_for
from durable_agents._client.api import AgentsClient
from durable_agents._devtools.cluster import Cluster
from durable_agents._devtools.versions import TemporalVersions
from durable_agents._domain.run import RunStatus
from durable_agents._infra.connection import TemporalSettings, connect
from durable_agents.testing.scripted_model import ScriptedModelServer
from tests.support import test_agent
from tests.support.cluster_target import own_cluster

pytestmark = [pytest.mark.upgrade, pytest.mark.e2e]
QUEUE = "cluster-upgrade"


@pytest.fixture(scope="module")
def upgrade_model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        ChaosScript(seed=5).install(server)
        yield server


@pytest.fixture(scope="module")
async def old_cluster(
    tmp_path_factory: pytest.TempPathFactory, upgrade_model: ScriptedModelServer
) -> AsyncIterator[Cluster]:
    root = tmp_path_factory.mktemp("upgrade")
    async with own_cluster(root, upgrade_model.base_url, QUEUE, ui=False) as cluster:
        yield cluster


async def _server_version(agents: AgentsClient) -> str:
    info = await agents.temporal.workflow_service.get_system_info(GetSystemInfoRequest())
    return str(info.server_version)


def _schema_versions(cluster: Cluster) -> dict[str, tuple[int, ...]]:
    """The schema version each database records (setup-schema.sh's update-schema)."""
    out = {}
    for db in ("temporal", "temporal_visibility"):
        text = cluster.postgres.psql("SELECT curr_version FROM schema_version", database=db)
        out[db] = tuple(int(p) for p in text.strip().split("."))
    return out


async def _all_waiting(agents: AgentsClient, runs: list[RunOutcome]) -> None:
    async with asyncio.timeout(120):
        while True:
            views = [await agents.status(r.workflow_id) for r in runs]
            if all(v.pending_approvals for v in views):
                return
            await asyncio.sleep(0.3)


@pytest.mark.timeout(900)
async def test_runs_waiting_for_approval_survive_a_schema_and_server_upgrade(
    old_cluster: Cluster,
) -> None:
    versions = TemporalVersions.load()
    client = await connect(
        TemporalSettings(address=old_cluster.address, namespace=old_cluster.namespace)
    )
    agents = AgentsClient(client, QUEUE)
    assert await _server_version(agents) == versions.server
    key = uuid.uuid4().hex[:6]
    runs = [RunOutcome(f"r{i:03d}", f"run-up-{key}-{i}") for i in range(3)]
    for i, run in enumerate(runs):
        await agents.start_run("test-agent", goal_for(run.tag), request_id=f"up-{key}-{i}")
    await _all_waiting(agents, runs)

    before = _schema_versions(old_cluster)

    await old_cluster.upgrade(versions.upgrade)

    assert await _server_version(agents) == versions.upgrade
    after = _schema_versions(old_cluster)
    assert all(after[db] >= before[db] for db in before) and after != before, (before, after)
    driver = asyncio.create_task(approval_driver(agents, runs, random.Random(5)))
    try:
        for run in runs:
            run.report = await asyncio.wait_for(agents.result(run.workflow_id), 180)
    finally:
        driver.cancel()
    assert all(r.report and r.report.status is RunStatus.COMPLETED for r in runs)
    data = old_cluster.agent_data_dir
    expected = {name for r in runs for name in effect_names(r.tag)}
    assert Counter(test_agent.effects(data)) == dict.fromkeys(expected, 1)
    launches = Counter(
        n for tool, n, _, _ in test_agent.executions(data) if tool == "launch_rocket"
    )
    assert sorted(launches.values()) == [1, 1, 1]
