"""The compact state of a run: everything needed to continue it as a new execution.

Continue-as-new carries `RunState.carried()`: the plan, counters, ledger and running
summary whole, but only a recent window of the lists that grow with the run (steps,
audit, approvals, errors, call counts). What falls out of the window is kept as
counts (steps by outcome) and as a digest (the audit trail), so the state, and the
history bytes each continuation costs, stay flat however long the run goes on.
"""

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from durable_agents._domain.approvals import ApprovalRequest, AuditEntry
from durable_agents._domain.budget import BudgetLedger, Usage
from durable_agents._domain.plan import Plan
from durable_agents._domain.prompts import SUMMARY_FAILURES, failure_labels
from durable_agents._domain.run import Phase, RecordedRequest, RunRequest, RunStatus, StepRecord
from durable_agents._domain.spec import AgentSpec

# Kept across continue-as-new; older entries become counts or a digest.
CARRIED_STEPS = 8  # at least the observation window
CARRIED_AUDIT = 50
CARRIED_DECIDED_APPROVALS = 20
CARRIED_ERRORS = 20
CARRIED_CALL_SIGNATURES = 200


class RunState(BaseModel):
    """What a run knows. Carried across continue-as-new, so it must stay small."""

    request: RunRequest
    spec: AgentSpec
    ledger: BudgetLedger
    started_at: datetime
    spec_hash: str = ""
    # Approvers' public keys, resolved with the spec (empty: identity not verified).
    approver_keys: dict[str, str] = {}
    # The Web UI notifications link to, as the worker is configured.
    ui_base_url: str | None = None
    # The user's ledger this run reserved from, settled when it ends.
    user_ledger: str | None = None
    # The run that started this one as its sub-agent, and how deep it nests.
    parent_workflow_id: str | None = None
    depth: int = 0
    # Which of the spec's tools came from its MCP servers (None: not known, so the run
    # keeps the list it started with), and why the run wants that list read again.
    mcp_tools: list[str] | None = None
    refresh_tools_why: str | None = None
    # Approval requests ever made (ids stay unique across continue-as-new).
    approval_seq: int = 0
    extensions: int = 0
    ignored_signals: int = 0
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
    # What earlier executions dropped from the lists above.
    earlier_steps: int = 0
    earlier_outcomes: dict[str, int] = {}
    earlier_failures: list[str] = []
    earlier_audit: int = 0
    audit_digest: str = ""

    def carried(self, observation_window: int) -> dict[str, Any]:
        """The state to continue as new with: windows of the growing lists (no request).

        The request travels as the new execution's input, so it is not carried twice.
        """
        keep = max(CARRIED_STEPS, observation_window)
        dropped_steps, steps = self.steps[:-keep], self.steps[-keep:]
        outcomes = dict(self.earlier_outcomes)
        for step in dropped_steps:
            outcomes[step.outcome.value] = outcomes.get(step.outcome.value, 0) + 1
        dropped_audit, audit = self.audit[:-CARRIED_AUDIT], self.audit[-CARRIED_AUDIT:]
        digest = self.audit_digest
        for entry in dropped_audit:  # a hash chain: the dropped trail cannot be rewritten
            digest = hashlib.sha256((digest + entry.model_dump_json()).encode()).hexdigest()
        pending = [a for a in self.approvals if a.state.value == "pending"]
        decided = [a for a in self.approvals if a.state.value != "pending"]
        approvals = [
            a for a in self.approvals if a in pending or a in decided[-CARRIED_DECIDED_APPROVALS:]
        ]
        signatures = list(self.call_counts.items())[-CARRIED_CALL_SIGNATURES:]
        state = self.model_copy(
            update={
                "steps": steps,
                "earlier_steps": self.earlier_steps + len(dropped_steps),
                "earlier_outcomes": outcomes,
                "earlier_failures": [
                    *self.earlier_failures,
                    *failure_labels(dropped_steps),
                ][-SUMMARY_FAILURES:],
                "audit": audit,
                "earlier_audit": self.earlier_audit + len(dropped_audit),
                "audit_digest": digest,
                "approvals": approvals,
                "errors": self.errors[-CARRIED_ERRORS:],
                "call_counts": dict(signatures),
            }
        )
        carried: dict[str, Any] = json.loads(state.model_dump_json(exclude={"request"}))
        return carried

    @classmethod
    def resumed(
        cls, carried: dict[str, Any], request: RunRequest, recorded: RecordedRequest | None = None
    ) -> "RunState":
        """The state of a continued run (``request`` is the new execution's input).

        Older runs carried less: ``recorded``, their one-object input, holds the rest
        (the spec of a run from before the worker resolved agents, its user's ledger,
        its Web UI link, its sub-agent depth).
        """
        fields: dict[str, Any] = {k: v for k, v in carried.items() if k != "request"}
        fields["request"] = request.model_dump(mode="json")
        if recorded is not None:
            if recorded.spec is not None:
                fields.setdefault("spec", recorded.spec.model_dump(mode="json"))
            fields.setdefault("user_ledger", recorded.user_ledger_id)
            fields.setdefault("ui_base_url", recorded.ui_base_url)
            fields.setdefault("parent_workflow_id", recorded.parent_workflow_id)
            fields.setdefault("depth", recorded.depth)
        return cls.model_validate(fields)

    @classmethod
    def continued(
        cls, carried: dict[str, Any], request: RunRequest, recorded: RecordedRequest | None = None
    ) -> "RunState":
        """The state of the next execution of a run that continued as new."""
        state = cls.resumed(carried, request, recorded)
        state.generation += 1
        return state

    def next_approval_id(self) -> str:
        """A request id never used before in this run, across continue-as-new.

        A run carried before ids were counted knows only the requests it kept; the
        highest id among them is at least as high as any it dropped.
        """
        highest = max((int(a.id[1:]) for a in self.approvals if a.id[1:].isdigit()), default=0)
        self.approval_seq = max(self.approval_seq, highest, len(self.approvals)) + 1
        return f"a{self.approval_seq}"

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
