"""Pure types and policy of durable-agents: no I/O, no clocks, no randomness.

Everything here is safe to use inside workflows.
"""

from durable_agents._domain.approvals import (
    ApprovalKind,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalState,
    AuditEntry,
    BudgetExtension,
    Decision,
    OnTimeout,
    args_digest,
)
from durable_agents._domain.budget import (
    Budget,
    BudgetExceededError,
    BudgetLedger,
    BudgetOverride,
    Usage,
)
from durable_agents._domain.llm import LlmCall, LlmResult, Message, PayloadRef
from durable_agents._domain.permissions import Effect, PermissionMatrix, PermissionRule
from durable_agents._domain.plan import Plan, Task, TaskKind, validate_plan
from durable_agents._domain.prices import DEFAULT_PRICES, ModelPrice, UnpricedModelError
from durable_agents._domain.run import (
    DEFAULT_TASK_QUEUE,
    Outcome,
    Phase,
    RunReport,
    RunRequest,
    RunStatus,
    RunView,
    StepRecord,
    workflow_id_for,
)
from durable_agents._domain.spec import AgentSpec, LoopLimits, ModelRoute, ModelRouting, Purpose
from durable_agents._domain.tools import RetrySpec, SideEffect, ToolSpec

__all__ = [
    "DEFAULT_PRICES",
    "DEFAULT_TASK_QUEUE",
    "AgentSpec",
    "ApprovalKind",
    "ApprovalPolicy",
    "ApprovalRequest",
    "ApprovalState",
    "AuditEntry",
    "Budget",
    "BudgetExceededError",
    "BudgetExtension",
    "BudgetLedger",
    "BudgetOverride",
    "Decision",
    "Effect",
    "LlmCall",
    "LlmResult",
    "LoopLimits",
    "Message",
    "ModelPrice",
    "ModelRoute",
    "ModelRouting",
    "OnTimeout",
    "Outcome",
    "PayloadRef",
    "PermissionMatrix",
    "PermissionRule",
    "Phase",
    "Plan",
    "Purpose",
    "RetrySpec",
    "RunReport",
    "RunRequest",
    "RunStatus",
    "RunView",
    "SideEffect",
    "StepRecord",
    "Task",
    "TaskKind",
    "ToolSpec",
    "UnpricedModelError",
    "Usage",
    "args_digest",
    "validate_plan",
    "workflow_id_for",
]
