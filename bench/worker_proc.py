"""``python -m bench.worker_proc``: ``agent-worker`` with a larger workflow cache.

``BENCH_MAX_CACHED_WORKFLOWS`` sets the worker's workflow cache size (the settings have no
variable for it), so the memory benchmark can keep every waiting run cached. Everything
else is the real worker: `workers.main.serve` with settings from the environment.
"""

import asyncio
import dataclasses
import os

from durable_agents._infra.logs import configure_logging
from durable_agents._workers.config import WorkerSettings
from durable_agents._workers.main import serve


def main() -> None:
    """Run the worker until SIGTERM, like ``agent-worker``."""
    configure_logging()
    settings = WorkerSettings.from_env()
    cache = os.environ.get("BENCH_MAX_CACHED_WORKFLOWS")
    if cache:
        settings = dataclasses.replace(settings, max_cached_workflows=int(cache))
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
