"""A worker inside a client process, on a private task queue: what ``agentctl eval`` runs
for variants with spec overrides, and ``--from-runs`` for its re-runs.

It is a worker like any other (the plugins of ``AGENT_PLUGINS``, the environment's model
settings and policy files), except that it belongs to no Worker Deployment (a version that
is not current would get no runs) and its task queue is its own, so only the runs the
process sends there reach it, and what they obey is this worker's catalog. Its runs hold
no money in users' monthly ledgers: they are not users' spend, and a ledger lives on the
task queue of the worker that started it, which would be this private one, gone when the
process ends (the user's later runs would find their ledger held by no worker).
"""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from temporalio.client import Client

from durable_agents._activities.catalog import Catalog
from durable_agents._activities.user_limits import UserLimits
from durable_agents._infra.connection import TemporalSettings
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings


def own_worker_settings(temporal: TemporalSettings, plugins: str | None) -> WorkerSettings:
    """The environment's worker settings with these plugins, outside any Worker Deployment
    (callers choose the data directory)."""
    return replace(
        WorkerSettings.from_env(),
        temporal=temporal,
        plugins=plugins,
        deployment=None,
        build_id=None,
    )


@asynccontextmanager
async def own_worker(
    temporal: Client, settings: WorkerSettings, prefix: str, *, catalog: Catalog | None = None
) -> AsyncIterator[str]:
    """Run a worker with ``settings`` (and ``catalog``) on a new private task queue, named
    ``prefix-...``, while the block runs; yields the queue."""
    queue = f"{prefix}-{uuid.uuid4().hex[:10]}"
    private = replace(
        settings,
        temporal=replace(settings.temporal, task_queue=queue),
        deployment=None,
        build_id=None,
    )
    async with build_worker(temporal, private, catalog=catalog, limits=UserLimits()):
        yield queue
