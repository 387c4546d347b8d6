"""What every scenario shares: a dev server on a SQLite file, the model process, a client.

CPU is read as deltas: ``getrusage(RUSAGE_SELF)`` for this process (in-process worker and
client; the model runs elsewhere) and ``/proc/<pid>/stat`` utime+stime for the server.
"""

import dataclasses
import os
import resource
import struct
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from bench.agent import PLUGINS, step_spec
from bench.model_proc import ModelProcess
from durable_agents._activities.catalog import Catalog, load_price_table
from durable_agents._activities.plugins import load_plugins, plugin_modules
from durable_agents._devtools.dev_server import DevServer
from durable_agents._infra.connection import TemporalSettings, connect
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from tests.support.agents import LocalAgents

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def self_cpu_s() -> float:
    """User + system CPU seconds of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wal_commits(db_file: Path) -> int:
    """Write transactions committed so far to the SQLite database ``db_file`` in WAL mode.

    Read from the WAL index (``<db>-shm``): its header's ``iChange`` counter is bumped by
    every commit, by any connection, and survives checkpoints. 0 before the first write.
    """
    shm = db_file.with_name(db_file.name + "-shm")
    if not shm.exists():
        return 0
    with shm.open("rb") as f:
        header = f.read(12)
    return int(struct.unpack("=I", header[8:12])[0]) if len(header) == 12 else 0


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Harness:
    """The shared pieces; build it with `open_harness`."""

    server: DevServer
    client: Client
    model: ModelProcess
    workdir: Path
    catalog: Catalog

    def queue(self, name: str) -> str:
        """A fresh task queue for one scenario."""
        return f"bench-{name}-{uuid.uuid4().hex[:8]}"

    def settings(self, task_queue: str, **overrides: object) -> WorkerSettings:
        """Worker settings: the scripted model, a private data dir, ``task_queue``."""
        base = WorkerSettings(
            temporal=TemporalSettings(address=self.server.address, task_queue=task_queue),
            data_dir=self.workdir / "data" / task_queue,
            openai_api_key="bench-key",
            openai_base_url=self.model.base_url,
            plugins=PLUGINS,
            # BENCH_STREAM_TOKENS=0: model calls not streamed (AGENT_STREAM_TOKENS=0).
            stream_tokens=os.environ.get("BENCH_STREAM_TOKENS", "1") != "0",
        )
        return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]

    def worker(self, task_queue: str) -> Worker:
        """An in-process worker on ``task_queue`` whose agents are `catalog`'s."""
        return build_worker(self.client, self.settings(task_queue), catalog=self.catalog)

    def agents(self, task_queue: str) -> LocalAgents:
        """The Python API on ``task_queue``.

        Runs name their agent; a run of a variant spec (`bench.agent.bench_spec`) loads it
        into `catalog` first, so only in-process workers (`worker`) can run it.
        """
        return LocalAgents(self.client, self.catalog, task_queue)

    def server_commits(self) -> int:
        """Write transactions the Temporal server has committed to its SQLite file."""
        assert self.server.db_file is not None
        return wal_commits(self.server.db_file)

    def server_cpu_s(self) -> float:
        """CPU seconds the Temporal server has used so far."""
        assert self.server.pid is not None
        return process_cpu_s(self.server.pid)


@asynccontextmanager
async def open_harness(workdir: Path) -> AsyncIterator[Harness]:
    """Start the dev server (SQLite file under ``workdir``) and the model process."""
    server = DevServer(db_file=workdir / "temporal.db", ui=False, log_file=workdir / "server.log")
    model = ModelProcess().start()
    try:
        await server.start()
        client = await connect(server.address)
        catalog = Catalog(load_plugins(plugin_modules(PLUGINS)), load_price_table(None))
        catalog.add(step_spec(catalog))
        yield Harness(server, client, model, workdir, catalog)
    finally:
        model.stop()
        await server.stop()
