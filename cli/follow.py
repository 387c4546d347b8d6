"""Following a run until it ends: progress lines and approval prompts.

Shared by ``agentctl run --wait``, ``agentctl watch`` and ``make demo``. It polls the
``status`` query (cheap, served by the worker from its cache) and reports each new step
and each new approval request once. `decided_elsewhere` tells a prompt that its request
was answered by someone else (or the run ended); `detached` says what keeps going after
Ctrl-C and the commands that answer it.
"""

import asyncio
from collections.abc import Awaitable, Callable

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._client.api import AgentsClient
from durable_agents._domain.approvals import ApprovalRequest, ApprovalState
from durable_agents._domain.run import RunReport, RunView

OnView = Callable[[RunView], None]
OnApproval = Callable[[RunView, ApprovalRequest], Awaitable[None]]


def approve_command(workflow_id: str, request: ApprovalRequest) -> str:
    """The exact command that approves ``request``."""
    return f"agentctl approve {workflow_id} {request.id} --reason 'looks right'"


def answer_lines(workflow_id: str, approval_id: str) -> list[str]:
    """The two commands that approve or reject ``approval_id``, as lines to print."""
    return [
        f"  approve: agentctl approve {workflow_id} {approval_id} --reason '...'",
        f"  reject:  agentctl reject {workflow_id} {approval_id} --reason '...'",
    ]


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


async def detached(client: AgentsClient, wid: str) -> str:
    """What goes on after Ctrl-C, and the command that answers it."""
    try:
        view = await client.status(wid)
    except RPCError:
        return f"detached: {wid} keeps running; follow it with: agentctl watch {wid}"
    if view.status.terminal:
        return f"detached: {wid} has ended ({view.status.value}); see: agentctl result {wid}"
    lines = [f"detached: {wid} keeps running; follow it with: agentctl watch {wid}"]
    for r in view.pending_approvals:
        lines[0] = (
            f"detached: {wid} keeps waiting for a decision on {r.id} ({r.what}) until "
            f"{r.deadline:%H:%M:%S} UTC, then {r.on_timeout.value}"
        )
        lines += answer_lines(wid, r.id)
    return "\n".join(lines)


def decided_elsewhere(
    client: AgentsClient, workflow_id: str, request_id: str
) -> Callable[[], Awaitable[str | None]]:
    """A check for the prompt: has ``request_id`` been answered, or the run ended?"""

    async def check() -> str | None:
        try:
            view = await client.status(workflow_id)
        except RPCError as e:
            if e.status is RPCStatusCode.NOT_FOUND:
                return f"{workflow_id} is gone: {await client.ended(workflow_id)}"
            return None  # no worker answered this time; ask again at the next poll
        if any(r.id == request_id for r in view.pending_approvals):
            return None
        for r in (*view.decided, *view.closed):
            if r.id == request_id:
                return _overtaken(r)
        if view.status.terminal:
            return f"{workflow_id} ended ({view.status.value}) before an answer here"
        return f"request {request_id} no longer waits for an answer"

    return check


def _overtaken(r: ApprovalRequest) -> str:
    """How a request left the prompt, in words."""
    why = f" ({r.reason})" if r.reason else ""
    if r.state is ApprovalState.CLOSED:
        return f"request {r.id} was closed: {r.reason or 'the run ended'}"
    if r.state is ApprovalState.TIMED_OUT:
        return f"request {r.id} timed out{why}"
    who = f" by {r.decided_by}" if r.decided_by else ""
    return f"request {r.id} was {r.state.value}{who} elsewhere{why}"
