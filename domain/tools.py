"""Tool declarations: what a tool does to the world and how calls to it are run.

Retry policy, timeouts, criticality and the need for approval are declared here, per
tool, and never at call sites. The workflow turns a `ToolSpec` into activity options.
"""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from durable_agents._domain.llm import PayloadRef


class SideEffect(StrEnum):
    """What a tool call does to the world."""

    READ = "read"
    WRITE = "write"
    IRREVERSIBLE = "irreversible"


# A tool call heartbeats from its worker while the tool runs, whatever the tool does, so a
# call whose worker died is retried after this long rather than after its whole timeout.
DEFAULT_HEARTBEAT_TIMEOUT_S = 5.0


class RetrySpec(BaseModel):
    """Retry policy for transient failures (exponential backoff; Temporal adds jitter)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    initial_interval_s: float = Field(default=1.0, gt=0)
    backoff: float = Field(default=2.0, ge=1)
    max_interval_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)


class ToolSpec(BaseModel):
    """One tool an agent may call, as the workflow sees it (no code, only the contract)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    description: str
    args_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    side_effect: SideEffect = SideEffect.READ
    requires_approval: bool | None = Field(
        default=None, description="None: irreversible tools need approval, others do not."
    )
    critical: bool = Field(default=False, description="A failure halts or replans the run.")
    resource_arg: str | None = Field(
        default=None, description="Argument naming the resource, for the permission matrix."
    )
    timeout_s: float = Field(default=30.0, gt=0)
    heartbeat_timeout_s: float | None = Field(
        default=DEFAULT_HEARTBEAT_TIMEOUT_S,
        gt=0,
        description="A call whose worker stops heartbeating this long is retried elsewhere "
        "(the worker heartbeats for the tool). None: only timeout_s ends a lost call.",
    )
    retry: RetrySpec = RetrySpec()
    cost_usd: float = Field(default=0.0, ge=0, description="Fixed cost charged per call.")
    circuit_threshold: int = Field(
        default=5, ge=0, description="Consecutive failures that open the circuit (0: never)."
    )
    circuit_reset_s: float = Field(default=30.0, gt=0, description="How long it stays open.")
    task_queue: str | None = Field(
        default=None, description="Run on a dedicated queue (e.g. to rate-limit this tool)."
    )
    local: bool = Field(
        default=False,
        description="Cheap and quick: run as a local activity, in the worker that runs the "
        "workflow, with no server round trip. A call whose worker dies is retried when its "
        "workflow task times out (seconds), and one that completed but was not yet "
        "recorded runs again: the tool must be idempotent under its idempotency key. "
        "Not for tools that need approval or run on their own queue.",
    )

    @field_validator("description")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a tool needs a description the planner can read")
        return v

    @model_validator(mode="after")
    def _local_is_cheap(self) -> "ToolSpec":
        if self.local and (self.needs_approval or self.task_queue):
            raise ValueError(
                f"tool '{self.name}' cannot be local: a tool that needs approval or has its "
                "own task queue runs as a normal activity (set local=False)"
            )
        return self

    @property
    def needs_approval(self) -> bool:
        """Whether every call waits for a human (irreversible tools do by default)."""
        if self.requires_approval is not None:
            return self.requires_approval
        return self.side_effect is SideEffect.IRREVERSIBLE

    def resource_of(self, args: dict[str, Any]) -> str:
        """The resource a call touches, for permission rules ('*' when undeclared)."""
        if self.resource_arg is None:
            return "*"
        return str(args.get(self.resource_arg, "*"))

    def describe_call(self, args: dict[str, Any], limit: int = 80) -> str:
        """A short, readable form of a call: ``create_index(orders.customer_id)``."""
        shown = ", ".join(str(v) if not isinstance(v, dict | list) else "…" for v in args.values())
        if len(shown) > limit:
            shown = shown[: limit - 1] + "…"
        return f"{self.name}({shown})"


class ToolCall(BaseModel):
    """Input of the ``invoke_tool`` activity."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tool: str
    args: dict[str, Any] = {}


class ToolResult(BaseModel):
    """Output of ``invoke_tool``: small outputs inline, large ones by reference."""

    output: Any = None
    ref: PayloadRef | None = None
    preview: str = ""
    idempotency_key: str = ""
    attempt: int = 1
