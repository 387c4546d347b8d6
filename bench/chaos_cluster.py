"""The chaos harness's server role on the native cluster (``python -m bench.chaos --cluster``):
PostgreSQL, the Temporal server and its schemas under the chaos work dir, on free ports.
A server restart is a kill -9 of the server process (PostgreSQL stays up); a PostgreSQL
restart is an immediate shutdown (a crash: no checkpoint) and a start."""

from __future__ import annotations

import asyncio
from pathlib import Path

from durable_agents._devtools.cluster import Cluster
from durable_agents._devtools.cluster_parts import ClusterPorts


class ClusterUnderChaos:
    """What `bench.chaos` does to a `DevServer`, done to a cluster."""

    def __init__(self, root: Path) -> None:
        self.cluster = Cluster(
            root / "cluster", ports=ClusterPorts.free(), workers=0, ui=False, tie_to_parent=True
        )
        self.postgres_restarts = 0

    @property
    def address(self) -> str:
        """The frontend's address."""
        return self.cluster.address

    async def start(self) -> None:
        """PostgreSQL, schemas, server, namespace (workers are the harness's)."""
        await self.cluster.up()

    def kill(self) -> None:
        """kill -9 the Temporal server."""
        self.cluster.kill_server()

    async def restart(self) -> None:
        """Start the server again (after `kill`) on the same database and ports."""
        await self.cluster.restart_server()

    async def restart_postgres(self) -> None:
        """Crash PostgreSQL (immediate shutdown) and start it again; the server reconnects."""
        await asyncio.to_thread(self.cluster.postgres.stop, "immediate")
        await asyncio.sleep(1.0)
        await asyncio.to_thread(self.cluster.postgres.start)
        self.postgres_restarts += 1

    async def stop(self) -> None:
        """Stop everything, keeping the work dir's logs (PostgreSQL's data goes if it lives
        outside it, in /var/tmp: the evidence names each stuck run's last events)."""
        await asyncio.to_thread(self.cluster.down)
        self.cluster.discard_database()
