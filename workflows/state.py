"""The compact state of a run: everything needed to continue it as a new execution."""

from datetime import datetime

from pydantic import BaseModel

from domain.approvals import ApprovalRequest, AuditEntry
from domain.budget import BudgetLedger
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
    call_counts: dict[str, int] = {}
    recent_calls: list[str] = []
    approvals: list[ApprovalRequest] = []
    audit: list[AuditEntry] = []
    answer: str = ""

    def next_call_id(self, kind: str) -> str:
        """A deterministic id, unique across continue-as-new generations."""
        self.call_seq += 1
        return f"g{self.generation}-{self.call_seq}-{kind}"

    @property
    def last_error(self) -> str | None:
        """The most recent error, for the status view."""
        return self.errors[-1] if self.errors else None
