"""What a worker resolves when a run starts: the agent, its hash, approver keys, limits.

A run asks a worker on its queue (an activity) to resolve the agent it names; the answer is
recorded in the run's history, so replay, reports and ``replay-check`` see exactly what
the run obeyed, and a later change to the worker's catalog never alters a run in flight.
"""

from pydantic import BaseModel, ConfigDict, Field

from durable_agents._domain.budget import BudgetOverride
from durable_agents._domain.mcp_refresh import McpServerSummary
from durable_agents._domain.spec import AgentSpec


class ResolveAgent(BaseModel):
    """The part of a request the worker resolves."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    agent: str
    user: str
    budget: BudgetOverride | None = None
    model: str | None = None


class AgentSummary(BaseModel):
    """One agent a worker serves, as ``agentctl agents`` lists it."""

    name: str
    description: str
    tools: list[str]
    models: list[str]
    spec_hash: str
    mcp_servers: list[McpServerSummary] = []


class ResolvedAgent(BaseModel):
    """The agent a run obeys, as the worker resolved it."""

    spec: AgentSpec
    spec_hash: str
    approver_keys: dict[str, str] = Field(
        default_factory=dict, description="Approvers' Ed25519 public keys (base64)."
    )
    user_limit_micros: int | None = Field(
        default=None, description="The user's monthly limit, when the worker sets one."
    )
    ui_base_url: str | None = Field(
        default=None,
        description="The Web UI notifications link to (the worker's, not the caller's).",
    )
    mcp_tools: list[str] | None = Field(
        default=None,
        description="Which of the spec's tools came from its MCP servers (None: a worker "
        "from before tool lists were refreshed mid-run; such a run keeps its list).",
    )


class ShareRequest(BaseModel):
    """A run asks its worker to hold its cost limit in its user's monthly allowance."""

    user: str
    run_id: str
    amount_micros: int = Field(ge=0)
    limit_micros: int = Field(ge=0)


class ShareSettlement(BaseModel):
    """A run asks its worker to settle what it spent with its user's ledger."""

    user: str
    run_id: str
    actual_micros: int = Field(ge=0)
