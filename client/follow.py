"""Following a run until it ends: progress lines and approval prompts.

Shared by ``agentctl run --wait``, ``agentctl watch`` and ``make demo``. It polls the
``status`` query (cheap, served by the worker from its cache) and reports each new step
and each new approval request once.
"""

import asyncio
from collections.abc import Awaitable, Callable

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from client.api import AgentsClient
from domain.approvals import ApprovalRequest
from domain.run import RunReport, RunView

OnView = Callable[[RunView], None]
OnApproval = Callable[[RunView, ApprovalRequest], Awaitable[None]]


def approve_command(workflow_id: str, request: ApprovalRequest) -> str:
    """The exact command that approves ``request``."""
    return f"agentctl approve {workflow_id} {request.id} --reason 'looks right'"


async def follow(
    agents: AgentsClient,
    workflow_id: str,
    *,
    on_view: OnView | None = None,
    on_approval: OnApproval | None = None,
    poll_s: float = 0.5,
) -> RunReport:
    """Poll the run until it ends, calling back on updates; return its report."""
    seen_requests: set[str] = set()
    last_version: tuple[int, int, str] | None = None
    handle = agents.temporal.get_workflow_handle(workflow_id)
    while True:
        desc = await handle.describe()
        if desc.status is not WorkflowExecutionStatus.RUNNING:
            return await agents.result(workflow_id)
        try:
            view = await agents.status(workflow_id)
        except RPCError:
            await asyncio.sleep(poll_s)  # no worker has the run yet
            continue
        version = (view.usage.llm_calls + view.usage.tool_calls, view.iteration, view.phase.value)
        if on_view is not None and version != last_version:
            on_view(view)
        last_version = version
        for request in view.pending_approvals:
            if request.id not in seen_requests:
                seen_requests.add(request.id)
                if on_approval is not None:
                    await on_approval(view, request)
        await asyncio.sleep(poll_s)
