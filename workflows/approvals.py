"""Human checkpoints inside the workflow: requests, decisions, deadlines, audit.

A decision changes a run only if it names a pending request, carries the digest of the
exact arguments asked about, comes from an approver the policy allows and, when the
worker has approver keys, is signed by that approver. Updates are checked by their
validator (a refused one writes nothing and the caller hears why); signals, kept for
older clients, are checked the same way and, when refused, audited (a bounded number of
times) and otherwise ignored: no payload of any shape or arity can fail the run.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pydantic
from temporalio import workflow

from durable_agents._domain.approvals import (
    ApprovalKind,
    ApprovalRequest,
    ApprovalState,
    AuditEntry,
    BudgetExtension,
    Decision,
    DecisionAnswer,
    DecisionRefusedError,
    OnTimeout,
    Verdict,
    args_digest,
    decision_message,
    extension_message,
)
from durable_agents._domain.redaction import redact
from durable_agents._domain.signatures import verify
from durable_agents._workflows.metrics import count
from durable_agents._workflows.payloads import MalformedPayload, one_payload, parse_payload
from durable_agents._workflows.state import RunState

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

    @property
    def decided(self) -> list[ApprovalRequest]:
        """Requests answered, by a person or by their deadline, oldest first."""
        return [r for r in self._state.approvals if r.state is not ApprovalState.PENDING]

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
        policy = self._state.spec.approvals
        now = workflow.now()
        request = ApprovalRequest(
            id=self._state.next_approval_id(),
            kind=kind,
            tool=tool,
            args=redact(args or {}, self._state.spec.sensitive_fields),
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
        policy = self._state.spec.approvals
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

    # -- decisions: updates (validated, answered) and signals (audited, never failing) --

    def check_decision(self, raw: Any, verdict: Verdict) -> Decision:
        """The decision in ``raw`` if the run would take it; `DecisionRefusedError` says why."""
        decision = _parse(Decision, raw, "decision")
        request = next((r for r in self._state.approvals if r.id == decision.request_id), None)
        if request is None:
            known = ", ".join(r.id for r in self.pending) or "none pending"
            raise DecisionRefusedError(
                f"unknown request '{decision.request_id}' (pending: {known})"
            )
        if request.state is not ApprovalState.PENDING:
            raise DecisionRefusedError(
                f"request {request.id} is already {request.state.value} by {request.decided_by}"
            )
        if decision.args_digest is None:
            raise DecisionRefusedError(
                f"the decision has no args_digest; it must carry {request.args_digest} "
                "(the digest of the exact arguments asked about, shown by `agentctl status`)"
            )
        if decision.args_digest != request.args_digest:
            raise DecisionRefusedError("args_digest does not match the arguments asked about")
        self._check_approver(decision.approver, request.tool)
        message = decision_message(workflow.info().workflow_id, verdict, decision)
        self._check_signature(decision.approver, message, decision.signature)
        return decision

    def apply_decision(self, decision: Decision, verdict: Verdict) -> DecisionAnswer:
        """Close the request a checked decision names."""
        request = next(r for r in self._state.approvals if r.id == decision.request_id)
        self._close(
            request,
            ApprovalState.APPROVED if verdict is Verdict.APPROVE else ApprovalState.REJECTED,
            decision.approver,
            decision.reason,
        )
        return DecisionAnswer(
            request_id=request.id,
            state=request.state.value,
            decided_by=decision.approver,
            identity_verified=self.identity_verified,
            detail=request.what,
        )

    def decide_signal(self, args: tuple[Any, ...], verdict: Verdict) -> None:
        """A decision sent as a signal (older clients): taken if valid, else audited."""
        try:
            decision = self.check_decision(one_payload(args), verdict)
        except DecisionRefusedError as err:
            self._ignored(f"{verdict.value}_ignored", str(err), args)
            return
        self.apply_decision(decision, verdict)

    def check_extension(self, raw: Any) -> BudgetExtension:
        """The extension in ``raw`` if the run would take it; `DecisionRefusedError` says why."""
        ext = _parse(BudgetExtension, raw, "budget extension")
        policy = self._state.spec.approvals
        added = (ext.add_usd, ext.add_tokens, ext.add_llm_calls, ext.add_tool_calls)
        if not any(v > 0 for v in added):
            raise DecisionRefusedError("the extension adds nothing: give --usd or --tokens")
        if ext.add_usd > policy.max_extension_usd:
            raise DecisionRefusedError(
                f"${ext.add_usd} is more than one extension may add "
                f"(this agent's policy: ${policy.max_extension_usd})"
            )
        if ext.add_tokens > policy.max_extension_tokens:
            raise DecisionRefusedError(
                f"{ext.add_tokens} tokens is more than one extension may add "
                f"(this agent's policy: {policy.max_extension_tokens})"
            )
        if self._state.extensions >= policy.max_extensions:
            raise DecisionRefusedError(
                f"this run already had {self._state.extensions} budget extensions, the most "
                "its agent's policy allows"
            )
        expected = self._state.extensions + 1
        if ext.seq is not None and ext.seq != expected:
            raise DecisionRefusedError(
                f"extension number {ext.seq} is stale; this run's next one is {expected}"
            )
        if ext.seq is None and self.identity_verified:
            raise DecisionRefusedError(f"a signed extension must carry seq={expected}")
        self._check_approver(ext.approver, None)
        message = extension_message(workflow.info().workflow_id, ext)
        self._check_signature(ext.approver, message, ext.signature)
        return ext

    def apply_extension(self, ext: BudgetExtension) -> DecisionAnswer:
        """Grant a checked extension; it answers every pending request for more budget."""
        self._state.extensions += 1
        self._state.ledger.extend(
            ext.add_usd, ext.add_tokens, ext.add_llm_calls, ext.add_tool_calls
        )
        self.audit(
            "budget_extended",
            actor=ext.approver,
            detail=f"+${ext.add_usd} +{ext.add_tokens} tokens: {ext.reason}"[:500],
        )
        for r in self.pending:
            if r.kind is ApprovalKind.BUDGET:
                self._close(
                    r, ApprovalState.APPROVED, ext.approver, ext.reason or "budget extended"
                )
        return DecisionAnswer(
            state="extended",
            decided_by=ext.approver,
            identity_verified=self.identity_verified,
            detail=f"extension {self._state.extensions}: +${ext.add_usd} +{ext.add_tokens} tokens",
        )

    def extend_signal(self, args: tuple[Any, ...]) -> None:
        """An extension sent as a signal (older clients): taken if valid, else audited."""
        try:
            ext = self.check_extension(one_payload(args))
        except DecisionRefusedError as err:
            self._ignored("extend_budget_ignored", str(err), args)
            return
        self.apply_extension(ext)

    def close_pending(self, why: str) -> None:
        """The run ended: no pending request can be answered any more."""
        for r in self.pending:
            self._close(r, ApprovalState.CLOSED, "run", why)

    @property
    def identity_verified(self) -> bool:
        """Whether approvers prove who they are (the worker has approver keys)."""
        return bool(self._state.approver_keys)

    def _check_approver(self, approver: str, tool: str | None) -> None:
        policy = self._state.spec.approvals
        if not policy.allows(approver, tool):
            allowed = policy.tool_approvers.get(tool or "") or policy.approvers
            raise DecisionRefusedError(
                f"'{approver}' may not decide this; allowed: {', '.join(allowed)}"
            )

    def _check_signature(self, approver: str, message: dict[str, Any], sig: str | None) -> None:
        keys = self._state.approver_keys
        if not keys:
            return  # no keys configured: taken as declared ("identity not verified")
        key = keys.get(approver)
        if key is None:
            raise DecisionRefusedError(
                f"'{approver}' has no key on this worker; make one with `agentctl keygen "
                f"{approver}` and add its public key to AGENT_APPROVER_KEYS_FILE"
            )
        if not sig:
            raise DecisionRefusedError(
                f"the decision is not signed; approver keys are configured, so sign it "
                f"(`agentctl approve ... --as {approver}` signs with {approver}'s key)"
            )
        if not verify(key, message, sig):
            raise DecisionRefusedError(f"the signature is not {approver}'s")

    def _ignored(self, event: str, why: str, args: tuple[Any, ...]) -> None:
        """Audit an ignored signal; past a bound only count it, so the state stays small."""
        self._state.ignored_signals += 1
        if self._state.ignored_signals > MAX_AUDITED_IGNORED:
            return
        actor = None
        if args and isinstance(args[0], dict) and isinstance(args[0].get("approver"), str):
            actor = args[0]["approver"][:200]
        self.audit(event, actor=actor, accepted=False, detail=why[:500])


MAX_AUDITED_IGNORED = 20
M = TypeVar("M", bound=pydantic.BaseModel)


def _parse(model: type[M], raw: Any, what: str) -> M:
    """``raw`` as ``model``, or `DecisionRefusedError` naming what is wrong."""
    try:
        return parse_payload(model, raw, what)
    except MalformedPayload as err:
        raise DecisionRefusedError(str(err)) from None
