"""The agent specification: everything a run obeys, resolved by the worker.

The worker resolves a whole `AgentSpec` (prompts, tools, models, prices, budget and its
caps, approval policy, permissions) from the agents it has loaded when a run starts and
records it, with its hash, in the run's history: each history shows exactly what the run
ran with, a later change to the catalog never alters a run in flight, and no caller can
hand a run a spec of its own. A request only names the agent and the overrides the spec
allows (`RequestBounds`).
"""

import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from durable_agents._domain.approvals import ApprovalPolicy
from durable_agents._domain.budget import Budget, BudgetOverride
from durable_agents._domain.mcp import McpServerSpec
from durable_agents._domain.permissions import PermissionMatrix
from durable_agents._domain.prices import ModelPrice
from durable_agents._domain.tools import RetrySpec, ToolSpec


class Purpose(StrEnum):
    """Why a model is called; each purpose routes to its own model."""

    PLAN = "plan"
    EXECUTE = "execute"
    EVALUATE = "evaluate"
    SUMMARIZE = "summarize"


class ModelRoute(BaseModel):
    """A model for one purpose, with the fallbacks tried on permanent model errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    model: str = Field(min_length=1)
    fallbacks: list[str] = []
    max_tokens: int = Field(default=1024, ge=1, le=200_000)
    temperature: float = Field(default=0.0, ge=0, le=2)
    cache: bool = Field(
        default=False, description="Serve repeated identical calls (temperature 0) from cache."
    )
    structured_outputs: bool = Field(
        default=False,
        description="The endpoint of this route's models takes JSON-schema structured "
        "outputs (response_format json_schema, strict): plan and evaluation calls send "
        "their schema instead of asking for any JSON object.",
    )

    @property
    def cacheable(self) -> bool:
        """Whether calls on this route may be answered from the response cache."""
        return self.cache and self.temperature == 0

    @property
    def chain(self) -> list[str]:
        """The model then its fallbacks, in order."""
        return [self.model, *self.fallbacks]


class ModelRouting(BaseModel):
    """Models per purpose, plus cheaper models tried when the budget is tight."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    plan: ModelRoute
    execute: ModelRoute
    evaluate: ModelRoute
    summarize: ModelRoute
    cheaper: list[str] = Field(default_factory=list, description="Cheapest last.")

    @classmethod
    def single(cls, model: str, max_tokens: int = 1024) -> "ModelRouting":
        """Route every purpose to one model."""
        route = ModelRoute(model=model, max_tokens=max_tokens)
        return cls(plan=route, execute=route, evaluate=route, summarize=route)

    def route(self, purpose: Purpose) -> ModelRoute:
        """The route for ``purpose``."""
        route: ModelRoute = getattr(self, purpose.value)
        return route

    def all_models(self) -> set[str]:
        """Every model a run of this spec may call."""
        models = set(self.cheaper)
        for purpose in Purpose:
            models.update(self.route(purpose).chain)
        return models


class LoopLimits(BaseModel):
    """Bounds of the plan-execute-evaluate loop."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    max_replans: int = Field(default=3, ge=0)
    max_invalid_plans: int = Field(default=3, ge=1)
    observation_window: int = Field(default=8, ge=1)
    max_repeats: int = Field(default=3, ge=2, description="Same call attempted K times.")
    continue_as_new_every: int = Field(default=200, ge=1, description="Iterations per run.")
    max_subagent_depth: int = Field(default=2, ge=0, description="Nesting of sub-agents.")
    token_batches_per_execution: int = Field(
        default=1000,
        ge=0,
        description=(
            "Only for runs recorded when model text came as token-batch updates (replayed "
            "alike): the token batches an execution took. Model text now travels as "
            "heartbeats, which take no update; kept so stored specs stay valid."
        ),
    )
    subagent_budget_share: float = Field(
        default=0.5, gt=0, le=1, description="Share of the remaining budget a sub-agent gets."
    )


class LlmPolicy(BaseModel):
    """How LLM activities are run (tools declare their own policy in `ToolSpec`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    timeout_s: float = Field(
        default=120.0, gt=0, description="Start-to-close timeout of one model call attempt."
    )
    heartbeat_timeout_s: float | None = Field(
        default=10.0,
        gt=0,
        description="A call whose worker died is retried elsewhere after this long, not "
        "after timeout_s (the activity heartbeats while it waits for the model).",
    )
    retry: RetrySpec = Field(
        default=RetrySpec(initial_interval_s=1.0, backoff=2.0, max_interval_s=60.0, max_attempts=6),
        description="Backoff for transient model errors (429, 5xx, timeouts).",
    )


class RequestBounds(BaseModel):
    """What a request may change in a spec, and how far.

    A budget override may not pass ``budget_caps`` in any dimension the caps limit; a
    model override must be one of ``models``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    budget_caps: BudgetOverride = Field(
        default=BudgetOverride(
            max_cost_usd=10.0,
            max_tokens=2_000_000,
            max_llm_calls=500,
            max_tool_calls=500,
            max_iterations=200,
            max_wall_time_s=7 * 24 * 3600.0,
        ),
        description="The highest value a request may set in each budget dimension.",
    )
    models: list[str] = Field(
        default_factory=list, description="Models a request may route every purpose to."
    )

    def problems(self, budget: BudgetOverride | None, model: str | None) -> list[str]:
        """Why a request's overrides are refused (empty: within bounds)."""
        found: list[str] = []
        if budget is not None:
            caps = self.budget_caps.model_dump(exclude_none=True)
            for field, value in budget.model_dump(exclude_none=True).items():
                cap = caps.get(field)
                if cap is not None and value > cap:
                    found.append(f"budget {field}={value} is over this agent's cap of {cap}")
        if model is not None and model not in self.models:
            allowed = ", ".join(self.models) or "none"
            found.append(f"model '{model}' is not one this agent may use; allowed: {allowed}")
        return found


class AgentSpec(BaseModel):
    """A fully resolved agent."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")
    description: str = ""
    system_prompt: str = Field(min_length=1)
    role: str = "agent"
    tools: list[ToolSpec] = []
    models: ModelRouting
    prices: dict[str, ModelPrice] = {}
    budget: Budget = Budget()
    bounds: RequestBounds = RequestBounds()
    approvals: ApprovalPolicy = ApprovalPolicy()
    permissions: PermissionMatrix = PermissionMatrix.allow_all()
    limits: LoopLimits = LoopLimits()
    llm: LlmPolicy = LlmPolicy()
    sensitive_fields: list[str] = Field(
        default_factory=list, description="Argument names redacted in logs and notifications."
    )
    mcp_servers: list[McpServerSpec] = Field(
        default_factory=list,
        description="MCP servers whose tools the worker adds to each run when it starts "
        "(recorded with the spec; see `McpServerSpec`).",
    )

    @model_validator(mode="after")
    def _check(self) -> "AgentSpec":
        names = [t.name for t in self.tools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tool names must be unique; repeated: {', '.join(dupes)}")
        servers = [s.name for s in self.mcp_servers]
        twice = sorted({n for n in servers if servers.count(n) > 1})
        if twice:
            raise ValueError(f"MCP server names must be unique; repeated: {', '.join(twice)}")
        return self

    def tool(self, name: str) -> ToolSpec | None:
        """The tool named ``name``, if the agent has it."""
        return next((t for t in self.tools if t.name == name), None)

    def tool_map(self) -> dict[str, ToolSpec]:
        """Tools by name."""
        return {t.name: t for t in self.tools}

    def unpriced_models(self) -> list[str]:
        """Models the spec may call that have no price in ``prices``."""
        return sorted(m for m in self.models.all_models() if m not in self.prices)


def spec_hash(spec: AgentSpec) -> str:
    """SHA-256 of the spec's canonical JSON: two runs with one hash ran the same agent."""
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()
