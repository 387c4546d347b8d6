"""Waiting for a run to reach a state, for tests that act on runs in flight."""

import asyncio

from client.api import AgentsClient
from domain.approvals import ApprovalRequest


async def pending_request(
    agents: AgentsClient, workflow_id: str, timeout: float = 30.0
) -> ApprovalRequest:
    """The first pending approval request of a run, once it appears."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                view = await agents.status(workflow_id)
            except Exception:  # the run may not have been picked up by a worker yet
                await asyncio.sleep(0.1)
                continue
            if view.pending_approvals:
                return view.pending_approvals[0]
            await asyncio.sleep(0.1)
