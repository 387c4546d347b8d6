"""A run's input, live status and final report."""

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
)

from durable_agents._domain import contract
from durable_agents._domain.approvals import ApprovalRequest, AuditEntry
from durable_agents._domain.budget import Budget, BudgetOverride, Usage
from durable_agents._domain.compact import CompactModel
from durable_agents._domain.llm import PayloadRef
from durable_agents._domain.plan import Plan, TaskKind
from durable_agents._domain.spec import AgentSpec

DEFAULT_TASK_QUEUE = "agents"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def workflow_id_for(request_id: str) -> str:
    """The workflow id of a request: a repeated request maps to the same run."""
    return f"{contract.RUN_ID_PREFIX}{request_id}"


class RunStatus(StrEnum):
    """Where a run stands; the terminal ones end it."""

    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    ESCALATED = "escalated"
    BUDGET_EXHAUSTED = "budget_exhausted"
    CANCELLED = "cancelled"
    # Set by no run: what clients show for an execution ended from outside (terminate).
    TERMINATED = "terminated"

    @property
    def terminal(self) -> bool:
        """Whether the run has ended."""
        return self not in (RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)


class Phase(StrEnum):
    """What the run is doing right now."""

    STARTING = "starting"
    PLANNING = "planning"
    EXECUTING = "executing"
    EVALUATING = "evaluating"
    AWAITING_APPROVAL = "awaiting_approval"
    ANSWERING = "answering"
    DONE = "done"


class Outcome(StrEnum):
    """How one task ended."""

    OK = "ok"
    SOFT = "soft"  # a warning was recorded, the run continued
    HARD = "hard"  # the task failed; the planner is asked to replan
    CRITICAL = "critical"  # the run halts and escalates
    SKIPPED = "skipped"  # a non-critical task that kept failing
    DENIED = "denied"  # a person or the policy refused it


class RunRequest(CompactModel):
    """What a caller asks for: the agent by name, the goal, the user, allowed overrides.

    The first input of a run (recorded without the fields at their default); what the
    run itself passes on is the second, a `RunCarry`. The worker resolves the agent.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    request_id: str
    goal: str = Field(max_length=20_000)
    agent: str | None = Field(default=None, max_length=64)
    user: str = Field(default="anonymous", min_length=1, max_length=200)
    budget: BudgetOverride | None = None
    model: str | None = Field(
        default=None, max_length=200, description="Route every purpose to this model."
    )
    shadow: bool = Field(
        default=False,
        description="A shadow run: write and irreversible tools are recorded as what the "
        "run would have called, never run (and never asked for approval). A caller may set "
        "it: it only takes effects away, and which tools write is the worker's own spec.",
    )

    @field_validator("request_id")
    @classmethod
    def _request_id(cls, v: str) -> str:
        if not _REQUEST_ID.fullmatch(v):
            raise ValueError(
                "request_id must be 1-128 characters of letters, digits and _.:- "
                "starting with a letter or digit"
            )
        return v

    @field_validator("goal")
    @classmethod
    def _goal(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("goal is empty: say what the agent should achieve")
        return v.strip()

    def budget_of(self, spec: AgentSpec) -> Budget:
        """``spec``'s budget with this request's overrides applied."""
        return self.budget.apply(spec.budget) if self.budget else spec.budget


class RunCarry(CompactModel):
    """What a run passes on, never a caller: its compact state to its next execution
    (continue-as-new), its identity and depth to its sub-agents. A run's second input;
    a run started with one it did not come from is refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    resume_state: dict[str, Any] | None = Field(
        default=None, description="The run's compact state, when it continues as new."
    )
    parent_workflow_id: str | None = None
    depth: int = Field(default=0, ge=0, le=10)
    stream_state: dict[str, Any] | None = Field(
        default=None,
        description="The run's event stream (offset and last events), when it continues as new.",
    )


class RecordedRequest(RunRequest):
    """A run's first input as runs recorded it before `RunCarry` was separate: the request
    and the carry in one object, and, from before the worker resolved agents, the spec,
    the user's ledger and the Web UI. Parsed so those runs replay and continue; a caller
    setting any of these fields is refused (`workflows.admission`)."""

    spec: AgentSpec | None = None
    parent_workflow_id: str | None = None
    depth: int = Field(default=0, ge=0, le=10)
    ui_base_url: str | None = None
    user_ledger_id: str | None = None
    resume_state: dict[str, Any] | None = None

    @field_serializer("spec")
    def _spec_without_defaults(self, spec: AgentSpec | None) -> dict[str, Any] | None:
        # Every execution of a run started with its request: the spec's fields left at
        # their defaults decode to the same values, so they were not recorded.
        return None if spec is None else spec.model_dump(mode="json", exclude_defaults=True)

    @property
    def agent_name(self) -> str:
        """The agent asked for (the oldest requests name it through their spec)."""
        return self.agent or (self.spec.name if self.spec else "")

    def split(self) -> tuple[RunRequest, RunCarry]:
        """The caller's request and what the run carried, as separate inputs."""
        carry = RunCarry(
            resume_state=self.resume_state,
            parent_workflow_id=self.parent_workflow_id,
            depth=self.depth,
        )
        return RunRequest.model_validate(
            self.model_dump(include=set(RunRequest.model_fields))
        ), carry

    @classmethod
    def joined(cls, request: RunRequest, carry: RunCarry) -> "RecordedRequest":
        """The one-object input runs passed on before the split (runs without its patch)."""
        return cls.model_validate({**request.model_dump(), **carry.model_dump()})


class Admission(BaseModel):
    """A run's answer to ``admission``: started under a resolved agent, or refused why."""

    admitted: bool
    agent: str
    reason: str = ""
    spec_hash: str = ""
    identity_verified: bool = False


class StepRecord(CompactModel):
    """One executed (or refused) task, as the report shows it.

    Serialized without fields at their default (a run carries and reports many of these).
    """

    iteration: int
    task_id: str
    kind: TaskKind
    label: str
    outcome: Outcome
    attempts: int = 0
    model: str | None = None
    usage: Usage = Usage()
    output_preview: str = ""
    output: Any = None
    output_ref: PayloadRef | None = None
    why: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


class RunView(BaseModel):
    """The ``status`` query's answer: a live view of a run."""

    workflow_id: str
    agent: str
    goal: str
    user: str
    status: RunStatus
    phase: Phase
    iteration: int
    usage: Usage
    usage_by_model: dict[str, Usage] = {}
    budget: Budget
    reserved: Usage
    spec_hash: str = ""
    models: list[str] = Field(default_factory=list, description="Models the run may call.")
    identity_verified: bool = False
    approvers: list[str] = Field(default_factory=list, description="Empty: anyone.")
    extensions: int = Field(default=0, description="Budget extensions granted so far.")
    pending_approvals: list[ApprovalRequest]
    closed: list[ApprovalRequest] = Field(
        default_factory=list, description="Requests nobody can answer: the run ended."
    )
    decided: list[ApprovalRequest] = Field(
        default_factory=list,
        description="The latest requests answered (approved, rejected, timed out), oldest "
        "first: who decided a request someone else was looking at.",
    )
    plan: Plan | None
    last_error: str | None
    steps: list[StepRecord]


class RunReport(BaseModel):
    """The result of a run, including partial results when it stopped early."""

    workflow_id: str
    request_id: str
    agent: str
    goal: str
    user: str
    status: RunStatus
    answer: str
    steps: list[StepRecord]
    earlier_steps: int = Field(
        default=0,
        description="Steps of a long run not listed in ``steps``: left behind at "
        "continue-as-new, counted in the usage and recorded in the earlier executions.",
    )
    usage: Usage
    usage_by_model: dict[str, Usage] = {}
    budget: Budget
    spec_hash: str = ""
    identity_verified: bool = False
    iterations: int
    replans: int
    approvals: list[ApprovalRequest] = []
    audit: list[AuditEntry] = []
    errors: list[str] = []
