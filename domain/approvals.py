"""Human checkpoints: policy, requests, decisions and the audit trail.

A request's id is deterministic (derived from the workflow id and a sequence number) and
it carries a digest of the exact canonical arguments, so a decision can prove it was
made for *this* call and not for a similar one proposed earlier.
"""

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from durable_agents._domain import contract


class OnTimeout(StrEnum):
    """What happens when nobody answers before the deadline."""

    DENY = "deny"
    APPROVE = "approve"
    ESCALATE = "escalate"  # notify, extend the deadline once, then deny


class ApprovalKind(StrEnum):
    """What an approval request is about."""

    TOOL = "tool"
    PLAN = "plan"
    BUDGET = "budget"
    CONFIDENCE = "confidence"


class ApprovalState(StrEnum):
    """Where a request stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    CLOSED = "closed"  # the run ended before anyone decided


class ApprovalPolicy(BaseModel):
    """Who may approve what, how long a request waits, and what a timeout means."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    approvers: list[str] = Field(default_factory=list, description="Empty: anyone.")
    tool_approvers: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per-tool approvers; a missing or empty entry falls back to `approvers`.",
    )
    deadline_s: float = Field(default=3600.0, gt=0)
    on_timeout: OnTimeout = OnTimeout.DENY
    approve_plan: bool = False
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    stop_on_reject: bool = False
    always_ask: list[str] = Field(default_factory=list, description="Tools that always ask.")
    ask_budget_extension: bool = Field(
        default=True, description="Under budget pressure, ask a human for more before stopping."
    )
    max_extension_usd: float = Field(
        default=5.0, ge=0, description="The most one budget extension may add, in USD."
    )
    max_extension_tokens: int = Field(
        default=1_000_000, ge=0, description="The most one budget extension may add, in tokens."
    )
    max_extensions: int = Field(default=3, ge=0, description="Budget extensions a run may get.")

    def allows(self, approver: str, tool: str | None) -> bool:
        """Whether ``approver`` may decide a request about ``tool``."""
        # An empty per-tool list must not widen a restricted global list to anyone.
        allowed = self.tool_approvers.get(tool or "") or self.approvers
        return not allowed or approver in allowed


def args_digest(args: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``args`` (sorted keys, no whitespace)."""
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ApprovalRequest(BaseModel):
    """A question a run asks a person, with a deadline."""

    id: str
    kind: ApprovalKind
    tool: str | None = None
    args: dict[str, Any] = {}
    args_digest: str
    what: str
    why: str
    risk: str
    requested_at: datetime
    deadline: datetime
    on_timeout: OnTimeout
    state: ApprovalState = ApprovalState.PENDING
    extended: bool = False
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None


class Verdict(StrEnum):
    """What a decision says."""

    APPROVE = "approve"
    REJECT = "reject"


class Decision(BaseModel):
    """A person's answer to an approval request (the payload of approve/reject).

    ``args_digest`` must be the digest of the arguments asked about (a decision proves it
    was made for this call). ``signature`` is the approver's Ed25519 signature of
    `decision_message`; it is required when the worker has approver keys.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    request_id: str = Field(min_length=1, max_length=200)
    approver: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=4000)
    args_digest: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    signature: str | None = Field(default=None, max_length=200)

    @field_validator("approver")
    @classmethod
    def _strip(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("approver must name a person")
        return v.strip()


class BudgetExtension(BaseModel):
    """A person's grant of more budget (the payload of extend_budget)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    approver: str = Field(min_length=1, max_length=200)
    add_usd: float = Field(default=0.0, ge=0, le=1_000_000)
    add_tokens: int = Field(default=0, ge=0)
    add_llm_calls: int = Field(default=0, ge=0)
    add_tool_calls: int = Field(default=0, ge=0)
    reason: str = Field(default="", max_length=4000)
    request_id: str | None = Field(default=None, max_length=200)
    seq: int | None = Field(
        default=None, ge=1, description="The run's next extension number (from its status)."
    )
    signature: str | None = Field(default=None, max_length=200)


def decision_message(workflow_id: str, verdict: Verdict, decision: Decision) -> dict[str, Any]:
    """What an approver signs: the run, the request, the verdict and the exact arguments."""
    return {
        "v": 1,
        "run": workflow_id,
        "request": decision.request_id,
        "verdict": verdict.value,
        "approver": decision.approver,
        "digest": decision.args_digest,
        "reason": decision.reason,
    }


def extension_message(workflow_id: str, ext: "BudgetExtension") -> dict[str, Any]:
    """What an approver signs to extend a budget; ``seq`` makes each grant count once."""
    return {
        "v": 1,
        "run": workflow_id,
        "op": contract.EXTEND_BUDGET,
        "seq": ext.seq,
        "approver": ext.approver,
        "add_usd": ext.add_usd,
        "add_tokens": ext.add_tokens,
        "add_llm_calls": ext.add_llm_calls,
        "add_tool_calls": ext.add_tool_calls,
        "reason": ext.reason,
    }


class AuditEntry(BaseModel):
    """One line of a run's audit trail: something a person or the policy did."""

    at: datetime
    event: str
    actor: str | None = None
    request_id: str | None = None
    accepted: bool = True
    detail: str = ""


class DecisionAnswer(BaseModel):
    """What a run did with a decision or a budget extension (the update's result)."""

    request_id: str | None = None
    state: str = Field(description="The request's state now, or 'extended'.")
    decided_by: str
    identity_verified: bool = Field(
        description="False when the worker has no approver keys: taken as declared."
    )
    detail: str = ""


class DecisionRefusedError(ValueError):
    """A decision or extension the run will not take; the message says why."""
