"""The workers of eval variants that override specs (`domain.spec_overrides`).

Each such variant gets a worker of the eval's own (`own_worker`) whose catalog holds the
agents' specs patched as the variant says; its runs go to that worker's private queue.
Every patch is applied before any worker or run starts, so a bad one costs nothing.
"""

import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path

from temporalio.client import Client

from durable_agents._activities.catalog import Catalog, UnknownAgentError
from durable_agents._domain.eval_cases import Dataset, Variant
from durable_agents._domain.spec_overrides import apply_overrides
from durable_agents._workers.build import build_catalog
from durable_agents._workers.config import WorkerSettings
from durable_agents._workers.own_worker import own_worker


class OverrideError(ValueError):
    """A variant's overrides do not fit the worker's agents; the message says how."""


def override_catalogs(settings: WorkerSettings, dataset: Dataset) -> dict[str, Catalog]:
    """Per variant with overrides, the worker's catalog with its agents patched."""
    catalogs: dict[str, Catalog] = {}
    for variant in dataset.variants:
        if not variant.overrides:
            continue
        catalog = build_catalog(settings)
        for agent, patch in variant.overrides.items():
            try:
                catalog.add(apply_overrides(catalog.spec(agent), patch))
            except (UnknownAgentError, ValueError) as err:
                raise OverrideError(f"variant '{variant.name}': {err}") from None
        catalogs[variant.name] = catalog
    return catalogs


@asynccontextmanager
async def override_workers(
    temporal: Client, settings: WorkerSettings, dataset: Dataset, catalogs: Mapping[str, Catalog]
) -> AsyncIterator[Dataset]:
    """Run a worker per variant of ``catalogs``; yields ``dataset`` with those variants
    sent to their workers' queues (and data directories)."""
    async with AsyncExitStack() as stack:
        variants: list[Variant] = []
        for variant in dataset.variants:
            if variant.name not in catalogs:
                variants.append(variant)
                continue
            data_dir = variant.data_dir or tempfile.mkdtemp(prefix="agentctl-eval-")
            own = replace(settings, data_dir=Path(data_dir))
            queue = await stack.enter_async_context(
                own_worker(temporal, own, "eval", catalog=catalogs[variant.name])
            )
            variants.append(
                variant.model_copy(update={"task_queue": queue, "data_dir": str(own.data_dir)})
            )
        yield dataset.model_copy(update={"variants": variants})
