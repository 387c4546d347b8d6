"""``agent-worker``: run a worker until SIGTERM or Ctrl-C, then shut down gracefully."""

import asyncio
import signal
import sys

import structlog

from durable_agents._activities.instrumentation import HISTOGRAM_BUCKETS
from durable_agents._infra.connection import connect
from durable_agents._infra.logs import configure_logging
from durable_agents._infra.telemetry import TelemetryConfigError, build_runtime, configure_tracing
from durable_agents._workers.build import build_provider, build_worker
from durable_agents._workers.config import WorkerSettings

log = structlog.get_logger("agent-worker")


async def serve(settings: WorkerSettings) -> None:
    """Connect, build the worker and run it until a termination signal arrives."""
    tracing = configure_tracing(settings.telemetry)  # first, so every span is exported
    runtime = build_runtime(settings.telemetry, HISTOGRAM_BUCKETS)
    client = await connect(settings.temporal, runtime=runtime)
    provider = build_provider(settings)
    worker = build_worker(client, settings, provider=provider)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    model = "offline model" if settings.uses_offline_model else "OpenAI-compatible endpoint"
    async with worker:
        log.info(
            "worker ready",
            task_queue=worker.task_queue,
            temporal=settings.temporal.describe(),
            model=model,
            metrics=settings.telemetry.metrics_address,
            tracing=tracing is not None,
        )
        # Polling already: a restarted worker first picks up the runs waiting for it, then
        # imports the model client (about a second) before the first model call needs it.
        warming = asyncio.create_task(_warm_up(provider))
        await stop.wait()
        warming.cancel()
        log.info("worker stopping", reason="signal")
    if tracing is not None:
        tracing.shutdown()  # flush the last spans before the process goes
    log.info("worker stopped")


async def _warm_up(provider: object, delay_s: float = 1.0) -> None:
    warm_up = getattr(provider, "warm_up", None)
    if warm_up is not None:
        await asyncio.sleep(delay_s)
        await asyncio.to_thread(warm_up)


def main() -> None:
    """Console entry point."""
    configure_logging()
    try:
        asyncio.run(serve(WorkerSettings.from_env()))
    except (ConnectionError, TelemetryConfigError) as err:
        sys.exit(f"agent-worker: {err}")


if __name__ == "__main__":
    main()
