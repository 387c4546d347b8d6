"""Human checkpoints inside the workflow: requests, decisions, deadlines, audit.

A decision changes a run only if it names a pending request, comes from an approver the
policy allows, and (when it carries one) has the digest of the exact arguments asked
about. Anything else (unknown, stale, duplicate, forged, unauthorized, malformed) is
written to the audit trail and otherwise ignored.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pydantic
from temporalio import workflow

from domain.approvals import (
    ApprovalKind,
    ApprovalRequest,
    ApprovalState,
    AuditEntry,
    BudgetExtension,
    Decision,
    OnTimeout,
    args_digest,
)
from domain.redaction import redact
from workflows.metrics import count
from workflows.state import RunState

TIMEOUT_ACTOR = "policy:timeout"


class ApprovalBook:
    """The approval requests of one run."""

    def __init__(
        self,
        state: RunState,
        on_change: Callable[[], None],
        escalate: Callable[[ApprovalRequest], Awaitable[None]],
    ) -> None:
        self._state = state
        self._on_change = on_change
        self._escalate = escalate

    @property
    def pending(self) -> list[ApprovalRequest]:
        """Requests still waiting for a person."""
        return [r for r in self._state.approvals if r.state is ApprovalState.PENDING]

    def audit(
        self,
        event: str,
        *,
        actor: str | None = None,
        request_id: str | None = None,
        accepted: bool = True,
        detail: str = "",
    ) -> None:
        """Append a line to the audit trail."""
        self._state.audit.append(
            AuditEntry(
                at=workflow.now(),
                event=event,
                actor=actor,
                request_id=request_id,
                accepted=accepted,
                detail=detail,
            )
        )

    async def ask(
        self,
        kind: ApprovalKind,
        what: str,
        why: str,
        risk: str,
        tool: str | None = None,
        args: dict[str, Any] | None = None,
    ) -> ApprovalRequest:
        """Create a request, wait for a decision or the deadline, return the final request."""
        policy = self._state.request.spec.approvals
        now = workflow.now()
        request = ApprovalRequest(
            id=f"a{len(self._state.approvals) + 1}",
            kind=kind,
            tool=tool,
            args=redact(args or {}, self._state.request.spec.sensitive_fields),
            args_digest=args_digest(args or {}),
            what=what,
            why=why,
            risk=risk,
            requested_at=now,
            deadline=now + timedelta(seconds=policy.deadline_s),
            on_timeout=policy.on_timeout,
        )
        self._state.approvals.append(request)
        self.audit("approval_requested", request_id=request.id, detail=what)
        count("durable_agents_approvals_requested_total", "Approval requests", kind=kind.value)
        self._on_change()
        while request.state is ApprovalState.PENDING:
            remaining = (request.deadline - workflow.now()).total_seconds()
            try:
                await workflow.wait_condition(
                    lambda: request.state is not ApprovalState.PENDING,
                    timeout=max(remaining, 0.001),
                    timeout_summary=f"approval {request.id} deadline",
                )
            except TimeoutError:
                await self._on_deadline(request)
        self._on_change()
        return request

    async def _on_deadline(self, request: ApprovalRequest) -> None:
        count(
            "durable_agents_approvals_timed_out_total",
            "Approval deadlines reached",
            kind=request.kind.value,
            on_timeout=request.on_timeout.value,
        )
        policy = self._state.request.spec.approvals
        if request.on_timeout is OnTimeout.ESCALATE and not request.extended:
            request.extended = True
            request.deadline = workflow.now() + timedelta(seconds=policy.deadline_s)
            self.audit("approval_escalated", actor=TIMEOUT_ACTOR, request_id=request.id)
            await self._escalate(request)
            return
        approved = request.on_timeout is OnTimeout.APPROVE
        self._close(
            request,
            ApprovalState.APPROVED if approved else ApprovalState.TIMED_OUT,
            TIMEOUT_ACTOR,
            f"no decision before the deadline; on_timeout={request.on_timeout}",
        )

    def _close(
        self, request: ApprovalRequest, state: ApprovalState, actor: str, reason: str
    ) -> None:
        request.state = state
        request.decided_by = actor
        request.decided_at = workflow.now()
        request.reason = reason
        self.audit(f"approval_{state.value}", actor=actor, request_id=request.id, detail=reason)
        count(
            "durable_agents_approvals_decided_total",
            "Approval requests closed",
            kind=request.kind.value,
            state=state.value,
            by="timeout" if actor == TIMEOUT_ACTOR else "person",
        )

    def decide(self, raw: Any, approve: bool) -> None:
        """Apply a decision signal if it is valid; audit and ignore it otherwise."""
        verb = "approve" if approve else "reject"
        try:
            decision = Decision.model_validate(raw)
        except pydantic.ValidationError as err:
            self.audit(
                f"{verb}_ignored",
                accepted=False,
                detail=f"malformed decision: {err.error_count()} error(s)",
            )
            return
        problem = self._problem(decision)
        if problem:
            self.audit(
                f"{verb}_ignored",
                actor=decision.approver,
                request_id=decision.request_id,
                accepted=False,
                detail=problem,
            )
            return
        request = next(r for r in self._state.approvals if r.id == decision.request_id)
        self._close(
            request,
            ApprovalState.APPROVED if approve else ApprovalState.REJECTED,
            decision.approver,
            decision.reason,
        )

    def extend_budget(self, raw: Any) -> None:
        """Apply a budget extension signal from an allowed approver; audit and ignore others.

        A granted extension answers every pending request for more budget.
        """
        try:
            ext = BudgetExtension.model_validate(raw)
        except pydantic.ValidationError as err:
            self.audit(
                "extend_budget_ignored",
                accepted=False,
                detail=f"malformed extension: {err.error_count()} error(s)",
            )
            return
        if not self._state.request.spec.approvals.allows(ext.approver, None):
            self.audit(
                "extend_budget_ignored",
                actor=ext.approver,
                accepted=False,
                detail=f"'{ext.approver}' may not extend this budget",
            )
            return
        self._state.ledger.extend(
            ext.add_usd, ext.add_tokens, ext.add_llm_calls, ext.add_tool_calls
        )
        self.audit(
            "budget_extended",
            actor=ext.approver,
            detail=f"+${ext.add_usd} +{ext.add_tokens} tokens: {ext.reason}",
        )
        for r in self.pending:
            if r.kind is ApprovalKind.BUDGET:
                count(
                    "durable_agents_approvals_decided_total",
                    "Approval requests closed",
                    kind="budget",
                    state="approved",
                    by="person",
                )
                r.state, r.decided_by, r.decided_at = (
                    ApprovalState.APPROVED,
                    ext.approver,
                    workflow.now(),
                )

    def _problem(self, decision: Decision) -> str | None:
        request = next((r for r in self._state.approvals if r.id == decision.request_id), None)
        if request is None:
            return f"unknown request '{decision.request_id}'"
        if request.state is not ApprovalState.PENDING:
            return f"request already {request.state.value}"
        if decision.args_digest is not None and decision.args_digest != request.args_digest:
            return "digest does not match the arguments asked about"
        if not self._state.request.spec.approvals.allows(decision.approver, request.tool):
            return f"'{decision.approver}' may not decide this request"
        return None
