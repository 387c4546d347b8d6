"""The native cluster from nothing: PostgreSQL, the Temporal server and Web UI built from Go
modules, the namespace, two workers started by the cluster itself; then a run that needs
an approval survives kill -9 of the worker running its slow tool and a kill -9 restart of
the server, and completes with every effect taken once.

`make test` builds the binaries first (`make temporal-cluster postgres`); run alone, the
fixture builds what is missing (minutes, with progress on stderr).
"""

import asyncio
import random
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from bench.chaos_check import RunOutcome
from bench.chaos_roles import approval_driver
from bench.chaos_script import ChaosScript, effect_names, goal_for, rocket_name
from durable_agents._client.api import AgentsClient
from durable_agents._devtools.cluster import Cluster
from durable_agents._domain.run import RunStatus
from durable_agents._infra.connection import TemporalSettings, connect
from durable_agents.testing.scripted_model import ScriptedModelServer
from tests.support import test_agent
from tests.support.cluster_target import own_cluster
from tests.support.interrupt import running_call, still_running

pytestmark = [pytest.mark.e2e, pytest.mark.crash]
QUEUE = "cluster-smoke"


@pytest.fixture(scope="module")
def smoke_model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        ChaosScript(seed=3).install(server)
        yield server


@pytest.fixture(scope="module")
async def cluster(
    tmp_path_factory: pytest.TempPathFactory, smoke_model: ScriptedModelServer
) -> AsyncIterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    async with own_cluster(root, smoke_model.base_url, QUEUE) as cluster:
        yield cluster


def _http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as page:
        return int(page.status)


@pytest.mark.timeout(600)
async def test_a_run_survives_a_worker_kill_and_a_server_restart(cluster: Cluster) -> None:
    status = cluster.status()
    assert status["workers"] == 2 and "(up)" in str(status["web_ui"]), status
    assert await asyncio.to_thread(_http_status, cluster.ui_url) == 200
    client = await connect(TemporalSettings(address=cluster.address, namespace=cluster.namespace))
    agents = AgentsClient(client, QUEUE)
    data = cluster.agent_data_dir
    run = RunOutcome("r001", f"run-smoke-{uuid.uuid4().hex[:8]}")
    driver = asyncio.create_task(approval_driver(agents, [run], random.Random(3)))
    try:
        await agents.start_run("test-agent", goal_for(run.tag), request_id=run.workflow_id[4:])
        call = await running_call(client, data, {effect_names(run.tag)[2]})
        victim = next(w for w in cluster.workers if w.pid == call.worker_pid)
        cluster.kill_worker(victim)
        interrupted = still_running(data, call)
        await cluster.restart_server()
        run.report = await asyncio.wait_for(agents.result(run.workflow_id), 180)
    finally:
        driver.cancel()
    assert run.report.status is RunStatus.COMPLETED, run.report.errors
    assert run.approvals_sent, "the rocket's approval was never asked for"
    assert Counter(test_agent.effects(data)) == dict.fromkeys(effect_names(run.tag), 1)
    launches = [name for tool, name, _, _ in test_agent.executions(data) if tool == "launch_rocket"]
    assert launches == [rocket_name(run.tag)]
    started = Counter(name for _, name, _, _ in test_agent.executions(data, "started"))
    assert started[call.name] >= 2 or not interrupted, started


async def test_the_run_history_is_in_postgresql(cluster: Cluster) -> None:
    rows = cluster.postgres.psql("SELECT count(*) FROM executions", database="temporal")
    assert int(rows.strip()) >= 1
