"""On a standing cluster (``make test-cluster``): the cluster's own agent workers, started
by ``cluster up``, share the db-tuner's runs between them. Skipped without a cluster (the
smoke test in ``make test`` starts workers through the cluster too)."""

import asyncio
import random
import uuid

import pytest
from temporalio.api.enums.v1 import EventType

from bench.chaos_check import RunOutcome
from bench.chaos_roles import approval_driver
from durable_agents._client.api import AgentsClient
from durable_agents._devtools.cluster import Cluster
from durable_agents._domain.run import DEFAULT_TASK_QUEUE, RunStatus
from durable_agents._infra.connection import TemporalSettings, connect
from tests.support.cluster_target import cluster_root

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(300)
async def test_the_clusters_workers_share_the_runs() -> None:
    root = cluster_root()
    if root is None:
        pytest.skip("needs DURABLE_AGENTS_TEST_CLUSTER (make test-cluster)")
    cluster = Cluster(root)
    assert sum(1 for w in cluster.workers if w.running) >= 2, cluster.status()
    client = await connect(TemporalSettings(address=cluster.address, namespace=cluster.namespace))
    agents = AgentsClient(client, DEFAULT_TASK_QUEUE)  # the queue the workers serve
    key = uuid.uuid4().hex[:6]
    runs = [RunOutcome(f"r{i}", f"run-share-{key}-{i}") for i in range(4)]
    driver = asyncio.create_task(approval_driver(agents, runs, random.Random(1)))
    try:
        for run in runs:
            goal = "make the slow queries fast"
            await agents.start_run("db-tuner", goal, request_id=run.workflow_id[4:])
        for run in runs:
            run.report = await asyncio.wait_for(agents.result(run.workflow_id), 240)
            run.terminal = True
    finally:
        driver.cancel()
    assert all(r.report and r.report.status is RunStatus.COMPLETED for r in runs), [
        (r.report.status, r.report.errors) for r in runs if r.report
    ]
    started = EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    identities = set()
    for run in runs:
        history = await client.get_workflow_handle(run.workflow_id).fetch_history()
        identities |= {
            e.activity_task_started_event_attributes.identity
            for e in history.events
            if e.event_type == started
        }
    pids = {str(w.pid) for w in cluster.workers if w.running}
    assert len({i.split("@")[0] for i in identities} & pids) >= 2, identities
