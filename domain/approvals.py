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


class Decision(BaseModel):
    """A person's answer to an approval request (the payload of approve/reject)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    request_id: str = Field(min_length=1, max_length=200)
    approver: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=4000)
    args_digest: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

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
    request_id: str | None = None


class AuditEntry(BaseModel):
    """One line of a run's audit trail: something a person or the policy did."""

    at: datetime
    event: str
    actor: str | None = None
    request_id: str | None = None
    accepted: bool = True
    detail: str = ""
