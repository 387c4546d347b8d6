"""The compact state of a run: everything needed to continue it as a new execution."""

from datetime import datetime

from pydantic import BaseModel

from domain.approvals import ApprovalRequest, AuditEntry
from domain.budget import BudgetLedger, Usage
from domain.plan import Plan
from domain.run import Phase, RunRequest, RunStatus, StepRecord


class RunState(BaseModel):
    """What a run knows. Carried across continue-as-new, so it must stay small."""

    request: RunRequest
    ledger: BudgetLedger
    started_at: datetime
    status: RunStatus = RunStatus.RUNNING
    phase: Phase = Phase.STARTING
    iteration: int = 0
    replans: int = 0
    generation: int = 0
    call_seq: int = 0
    plan: Plan | None = None
    steps: list[StepRecord] = []
    summary: str = ""
    problems: list[str] = []
    errors: list[str] = []
    usage_by_model: dict[str, Usage] = {}
    call_counts: dict[str, int] = {}
    recent_calls: list[str] = []
    approvals: list[ApprovalRequest] = []
    audit: list[AuditEntry] = []
    answer: str = ""

    def next_call_id(self, kind: str) -> str:
        """A deterministic id, unique across continue-as-new generations."""
        self.call_seq += 1
        return f"g{self.generation}-{self.call_seq}-{kind}"

    def add_model_usage(self, model: str, usage: Usage) -> None:
        """Count ``usage`` under ``model`` (for per-model reports)."""
        self.usage_by_model[model] = self.usage_by_model.get(model, Usage()) + usage

    @property
    def last_error(self) -> str | None:
        """The most recent error, for the status view."""
        return self.errors[-1] if self.errors else None
