"""Waiting for a run to reach a state, for tests that act on runs in flight."""

import asyncio

from temporalio.api.enums.v1 import EventType

from durable_agents._client.api import AgentsClient
from durable_agents._domain.approvals import ApprovalRequest
from durable_agents._domain.run import RunReport


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


async def report_within(
    agents: AgentsClient, workflow_id: str, timeout: float = 120.0
) -> RunReport:
    """The run's report; if it does not end in time, fail with what the run was doing."""
    try:
        return await asyncio.wait_for(agents.result(workflow_id), timeout)
    except TimeoutError:
        raise AssertionError(await _stall_report(agents, workflow_id, timeout)) from None


async def _stall_report(agents: AgentsClient, workflow_id: str, timeout: float) -> str:
    """Where a run stands: its status, pending activities and its last history events."""
    handle = agents.temporal.get_workflow_handle(workflow_id)
    desc = await handle.describe()
    lines = [f"{workflow_id} did not end within {timeout:.0f}s; status {desc.status}"]
    for act in desc.raw_description.pending_activities:
        lines.append(
            f"pending {act.activity_type.name} #{act.activity_id}: attempt {act.attempt}, "
            f"state {act.state}, last failure {act.last_failure.message!r}"
        )
    events = [e async for e in handle.fetch_history_events()]
    for e in events[-12:]:
        lines.append(f"{e.event_time.ToDatetime():%H:%M:%S.%f} {EventType.Name(e.event_type)}")
    return "\n".join(lines)
