"""Admitting a run: the caller's request checked, the agent resolved by the worker.

A request names the agent, the goal, the user and the overrides the agent allows. What
the run obeys comes from its worker (the ``resolve_agent`` activity, recorded in the
history), never from the caller: a request carrying a spec, a continuation state or
a parent it does not have is refused with the reason, and so is an override past the
agent's bounds, an agent the worker has not loaded, or a user over their monthly limit.
"""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from durable_agents._domain import contract
from durable_agents._domain.admission import ResolveAgent, ResolvedAgent
from durable_agents._domain.budget import BudgetLedger
from durable_agents._domain.errors import ErrorType
from durable_agents._domain.money import usd_to_micros
from durable_agents._domain.run import Admission, RecordedRequest, RunCarry, RunRequest
from durable_agents._workflows.payloads import MalformedPayload, parse_payload
from durable_agents._workflows.shares import reserve_share
from durable_agents._workflows.state import RunState
from durable_agents._workflows.versions import resolve_by_activity

RESOLVE_TIMEOUT = timedelta(seconds=30)
RESOLVE_RETRY = RetryPolicy(maximum_attempts=5, non_retryable_error_types=["RunRefused"])


class RunRefused(Exception):  # noqa: N818 - the run's answer, not a bug
    """The run will not start; the message says why and how to fix it."""

    def __init__(self, reason: str, agent: str = "") -> None:
        super().__init__(reason)
        self.agent = agent


def parse_input(payloads: tuple[Any, ...]) -> tuple[RunRequest, RunCarry, RecordedRequest]:
    """The request and the carry in ``payloads`` (and the request as recorded, for runs
    that passed both in one object), or `RunRefused` naming what is wrong."""
    if len(payloads) not in (1, 2):
        raise RunRefused(
            f"a run takes one request payload (and a carry only from the run itself), "
            f"got {len(payloads)} payloads"
        )
    try:
        recorded = parse_payload(RecordedRequest, payloads[0], "request")
        request, carry = recorded.split()
        if len(payloads) == 2:
            if carry != RunCarry():
                raise RunRefused("the carry comes in the second payload, not in the request")
            carry = parse_payload(RunCarry, payloads[1], "carry")
    except MalformedPayload as err:
        raise RunRefused(str(err)) from None
    if recorded.spec is not None:
        raise RunRefused(
            "the request carries an agent spec; workers resolve agents themselves. "
            "Name the agent (agent=...) and only the overrides it allows (budget, model)",
            recorded.agent_name,
        )
    if recorded.user_ledger_id is not None:
        raise RunRefused("user_ledger_id is set by the run itself, not by its caller")
    return request, carry, recorded


def _check_origin(request: RunRequest, carry: RunCarry) -> None:
    """Refuse what only the run's parent run may set."""
    info = workflow.info()
    if info.parent is None and (carry.parent_workflow_id is not None or carry.depth):
        raise RunRefused("parent_workflow_id and depth are set only for a run's sub-agents")
    if info.parent is not None and carry.parent_workflow_id != info.parent.workflow_id:
        raise RunRefused("parent_workflow_id does not name this run's parent")
    if info.continued_run_id is None and carry.stream_state is not None:
        raise RunRefused("stream_state is set only by the run itself, when it continues as new")
    if not request.agent:
        raise RunRefused("the request names no agent (agent=...)")


async def _resolve(request: RunRequest) -> ResolvedAgent:
    assert request.agent is not None
    ask = ResolveAgent(
        agent=request.agent, user=request.user, budget=request.budget, model=request.model
    )
    summary = f"resolve agent {request.agent}"
    try:
        if resolve_by_activity():  # decided when the run started (see versions.py)
            resolved: ResolvedAgent = await workflow.execute_activity(
                contract.RESOLVE_AGENT,
                ask,
                result_type=ResolvedAgent,
                start_to_close_timeout=RESOLVE_TIMEOUT,
                retry_policy=RESOLVE_RETRY,
                summary=summary,
            )
        else:  # runs started before: a local activity
            resolved = await workflow.execute_local_activity(
                contract.RESOLVE_AGENT,
                ask,
                result_type=ResolvedAgent,
                start_to_close_timeout=RESOLVE_TIMEOUT,
                retry_policy=RESOLVE_RETRY,
                summary=summary,
            )
    except ActivityError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "RunRefused":
            raise RunRefused(cause.message, request.agent) from None
        if isinstance(cause, ApplicationError) and cause.type == ErrorType.MCP_UNAVAILABLE:
            # Every attempt failed to list the server's tools: the run cannot plan.
            raise RunRefused(cause.message, request.agent) from None
        raise
    return resolved


async def admit(payloads: tuple[Any, ...]) -> tuple[RunState, Admission]:
    """The state of an admitted run, or `RunRefused` with the reason."""
    request, carry, recorded = parse_input(payloads)
    info = workflow.info()
    if carry.resume_state is not None:
        if info.continued_run_id is None:
            raise RunRefused("resume_state is set only by a run continuing as new")
        state = RunState.continued(carry.resume_state, request, recorded)
        return state, _admitted(state)
    _check_origin(request, carry)
    resolved = await _resolve(request)
    state = RunState(
        request=request,
        parent_workflow_id=carry.parent_workflow_id,
        depth=carry.depth,
        spec=resolved.spec,
        spec_hash=resolved.spec_hash,
        approver_keys=resolved.approver_keys,
        ui_base_url=resolved.ui_base_url,
        ledger=BudgetLedger(budget=request.budget_of(resolved.spec)),
        started_at=workflow.now(),
        mcp_tools=resolved.mcp_tools,
    )
    if resolved.user_limit_micros is not None and info.parent is None:
        state.user_ledger = await _reserve(state, resolved.user_limit_micros)
    return state, _admitted(state)


async def _reserve(state: RunState, limit_micros: int) -> str:
    """Hold the run's cost limit in its user's monthly allowance, or refuse the run."""
    user, max_cost = state.request.user, state.ledger.budget.max_cost_usd
    if max_cost is None:
        raise RunRefused(
            f"user '{user}' has a monthly limit, so the run needs a cost limit (--budget-usd)",
            state.spec.name,
        )
    try:
        decision = await reserve_share(user, usd_to_micros(max_cost), limit_micros)
    except ActivityError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "LedgerRefused":
            raise RunRefused(cause.message, state.spec.name) from None
        raise
    if not decision.granted:
        raise RunRefused(decision.message, state.spec.name)
    return decision.ledger_id


def _admitted(state: RunState) -> Admission:
    return Admission(
        admitted=True,
        agent=state.spec.name,
        spec_hash=state.spec_hash,
        identity_verified=bool(state.approver_keys),
    )
