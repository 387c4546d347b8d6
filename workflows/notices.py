"""Notifications a run sends (escalations, budget alerts), without ever blocking on them.

A notification is started as an activity and not awaited where it is raised, so a slow
webhook never holds up an approval wait or a model call; the run drains them before it
returns. A notification that finally fails is audited, never fatal to the run.
"""

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from durable_agents._domain import contract
from durable_agents._domain.approvals import ApprovalRequest
from durable_agents._domain.money import micros_to_usd
from durable_agents._domain.notifications import (
    Notification,
    NotificationKind,
    NotifyErrorType,
    NotifyResult,
    approve_command,
    extend_budget_command,
)
from durable_agents._workflows.approvals import ApprovalBook
from durable_agents._workflows.state import RunState

NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[NotifyErrorType.REJECTED],
)


class Notices:
    """Starts ``notify`` activities for one run and drains them at its end."""

    def __init__(self, state: RunState, approvals: ApprovalBook) -> None:
        self._state = state
        self._approvals = approvals
        self._pending: list[asyncio.Task[Any]] = []

    def _notification(
        self, kind: NotificationKind, title: str, text: str, **extra: Any
    ) -> Notification:
        st = self._state
        wid = workflow.info().workflow_id
        spent, budget = st.ledger.spent, st.ledger.budget
        # Where the worker says (a run from before admission: where its request said).
        base = st.ui_base_url
        return Notification(
            kind=kind,
            workflow_id=wid,
            agent=st.spec.name,
            goal=st.request.goal,
            title=title,
            text=text,
            # The run's story tab (summary, details, live status), not its raw history.
            ui_url=f"{base}/namespaces/{workflow.info().namespace}/workflows/{wid}/"
            f"{workflow.info().run_id}/user-metadata"
            if base
            else None,
            attempted=[f"{s.label}: {s.outcome.value}" for s in st.steps[-20:]],
            details={
                "spent_usd": f"{micros_to_usd(spent.cost_micros):.6f}",
                "limit_usd": str(budget.max_cost_usd),
                "tokens": str(spent.tokens),
                "iteration": str(st.iteration),
            },
            sensitive_fields=st.spec.sensitive_fields,
            **extra,
        )

    def send(self, n: Notification) -> None:
        """Start the activity; its outcome is collected by `drain`."""
        self._pending.append(asyncio.ensure_future(self._deliver(n)))

    async def _deliver(self, n: Notification) -> None:
        try:
            await workflow.execute_activity(
                contract.NOTIFY,
                n,
                result_type=NotifyResult,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(minutes=10),
                retry_policy=NOTIFY_RETRY,
                summary=f"notify: {n.kind.value}",
            )
        except ActivityError as err:
            self._approvals.audit("notify_failed", detail=f"{n.kind.value}: {err.cause or err}")

    async def drain(self) -> None:
        """Wait for every notification started so far."""
        if self._pending:
            await asyncio.gather(*self._pending)
            self._pending.clear()

    def escalation(self, request: ApprovalRequest) -> None:
        """An approval request passed its deadline once; people are asked again."""
        wid = workflow.info().workflow_id
        self.send(
            self._notification(
                NotificationKind.APPROVAL_ESCALATED,
                title=f"Approval {request.id} is overdue: {request.what}",
                text=f"{request.why}. Risk: {request.risk}. The deadline was extended once, to "
                f"{request.deadline:%Y-%m-%d %H:%M:%S} UTC; then the request is denied.",
                request=request,
                command=approve_command(wid, request.id),
            )
        )

    def soft_limit(self) -> None:
        """Spending crossed the soft fraction of a limit (sent once per run)."""
        wid = workflow.info().workflow_id
        fraction = self._state.ledger.soft_fraction_used()
        self.send(
            self._notification(
                NotificationKind.BUDGET_SOFT_LIMIT,
                title=f"Run {wid} has used {fraction:.0%} of its budget",
                text="The run continues; it stops at the hard limit unless the budget grows.",
                command=extend_budget_command(wid, 0.5),
            )
        )
