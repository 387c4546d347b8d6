"""The names Temporal records: workflow types, messages, activities, search attributes.

Each is written in histories and visibility, so renaming one breaks every run in flight,
every recorded history and every client that names it. They are defined here once;
everything else refers to them, through the SDK's typed references where one fits
(``handle.execute_update(AgentRun.approve, ...)``) and through these constants where
none does: the decorators that register them, activities (which must not import the
workflow modules), visibility queries, and tests that attack with the official CLI.
``tests/test_contract.py`` fails when one is written as a string literal anywhere else,
or when a name here is not exactly what the worker registers.

Plain strings only (no temporalio import): safe in workflows and anywhere else.
"""

from dataclasses import dataclass
from typing import Final

# -- workflow types and ids ------------------------------------------------------------

AGENT_RUN: Final = "AgentRun"
USER_LEDGER: Final = "UserLedger"
AGENT_CATALOG: Final = "AgentCatalog"  # asks a worker which agents it serves
CATALOG_ID_PREFIX: Final = "agent-catalog-"
RUN_ID_PREFIX: Final = "run-"
LEDGER_ID_PREFIX: Final = "user-ledger-"

# -- AgentRun's messages -------------------------------------------------------------------

ADMISSION: Final = "admission"  # update: the worker's admission (or refusal) of the run
APPROVE: Final = "approve"  # update, and a signal for older clients
REJECT: Final = "reject"  # update, and a signal for older clients
EXTEND_BUDGET: Final = "extend_budget"  # update, and a signal for older clients
STATUS: Final = "status"  # query: the live `RunView`

# -- AgentRun's event stream (``temporalio.contrib.workflow_streams``) ------------------------
# The stream's handlers are registered by the SDK's `WorkflowStream` under its own names
# (``tests/test_run_events.py`` checks these are them). The run replaces the publish
# signal's handler with one that refuses everything: model activities send their tokens
# with the ``stream_tokens`` update instead, which the run validates (a refused update
# writes nothing; signals are capped at 64 per execution by the server's configuration).

STREAM_TOKENS: Final = "stream_tokens"  # update: a model call's `TokenBatch`

STREAM_PUBLISH: Final = "__temporal_workflow_stream_publish"  # signal
STREAM_POLL: Final = "__temporal_workflow_stream_poll"  # update, and a query
STREAM_OFFSET: Final = "__temporal_workflow_stream_offset"  # query
EVENTS_TOPIC: Final = "run_events"  # what clients read: `RunEvent`s the run published
STREAM_NAMES: Final = frozenset({STREAM_PUBLISH, STREAM_POLL, STREAM_OFFSET})

# -- UserLedger's messages -----------------------------------------------------------------
# Also the operations a worker (or operator) signs: a signature names the message it is for.

RESERVE: Final = "reserve"  # update
SETTLE: Final = "settle"  # update, and a signal for runs recorded before updates
ADJUST: Final = "adjust"  # update: an operator's signed correction
RELEASE: Final = "release"  # signal: a reserved run never started
BALANCE: Final = "balance"  # query: the `UserSpend`

# -- activities ------------------------------------------------------------------------

PLAN: Final = "plan"
LLM_COMPLETE: Final = "llm_complete"
EVALUATE: Final = "evaluate"
INVOKE_TOOL: Final = "invoke_tool"
NOTIFY: Final = "notify"
RESOLVE_AGENT: Final = "resolve_agent"  # local
DESCRIBE_AGENTS: Final = "describe_agents"  # local
# Lists a run's MCP servers' tools again, mid-run (recorded: the next plan uses them).
REFRESH_MCP_TOOLS: Final = "refresh_mcp_tools"
LEDGER_TRUST: Final = "ledger_trust"  # local
RESERVE_USER_SHARE: Final = "reserve_user_share"
SETTLE_USER_SHARE: Final = "settle_user_share"
ENDED_RUNS: Final = "ended_runs"

# -- search attributes (registered on the namespace with these types) -----------------------

AGENT_NAME: Final = "AgentName"
AGENT_STATUS: Final = "AgentStatus"
AGENT_USER: Final = "AgentUser"
COST_USD: Final = "CostUsd"
COST_LIMIT_USD: Final = "CostLimitUsd"
TOKENS_USED: Final = "TokensUsed"
ITERATION: Final = "Iteration"
PENDING_APPROVAL: Final = "PendingApproval"
BUDGET_ALERT: Final = "BudgetAlert"

SEARCH_ATTRIBUTE_TYPES: Final[dict[str, str]] = {
    AGENT_NAME: "Keyword",
    AGENT_STATUS: "Keyword",
    COST_USD: "Double",
    TOKENS_USED: "Int",
    PENDING_APPROVAL: "Bool",
    ITERATION: "Int",
    AGENT_USER: "Keyword",
    BUDGET_ALERT: "Bool",
    COST_LIMIT_USD: "Double",
}
"""Every search attribute and its type, as the dev server and a cluster register them."""

# Temporal's own (not ours to register): the Worker Deployment version a run is pinned
# to, as ``<deployment>:<build id>`` (``agentctl rollout``).
WORKER_DEPLOYMENT_VERSION: Final = "TemporalWorkerDeploymentVersion"

# -- what each workflow answers to, and what the worker runs -------------------------------


@dataclass(frozen=True)
class Handlers:
    """The messages one workflow type takes (each set exactly as the worker registers it)."""

    workflow: str
    updates: frozenset[str]
    signals: frozenset[str]
    queries: frozenset[str]


WORKFLOWS: Final = (
    Handlers(
        AGENT_RUN,
        updates=frozenset({ADMISSION, APPROVE, REJECT, EXTEND_BUDGET, STREAM_TOKENS}),
        signals=frozenset({APPROVE, REJECT, EXTEND_BUDGET}),
        queries=frozenset({STATUS}),
    ),
    Handlers(
        USER_LEDGER,
        updates=frozenset({RESERVE, SETTLE, ADJUST}),
        signals=frozenset({SETTLE, RELEASE}),
        queries=frozenset({BALANCE}),
    ),
    Handlers(AGENT_CATALOG, updates=frozenset(), signals=frozenset(), queries=frozenset()),
)
# The activities that call a model (and stream its text as heartbeats).
MODEL_ACTIVITIES: Final = frozenset({PLAN, LLM_COMPLETE, EVALUATE})
ACTIVITIES: Final = frozenset(
    {
        PLAN,
        LLM_COMPLETE,
        EVALUATE,
        INVOKE_TOOL,
        NOTIFY,
        RESOLVE_AGENT,
        DESCRIBE_AGENTS,
        REFRESH_MCP_TOOLS,
        LEDGER_TRUST,
        RESERVE_USER_SHARE,
        SETTLE_USER_SHARE,
        ENDED_RUNS,
    }
)
