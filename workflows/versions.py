"""Workflow changes guarded for runs already in flight.

A change that alters the commands a run issues (more or fewer upserts, a new local
activity, a different state carried across continue-as-new) is taken only by runs that
reach the guard on new code; a run recorded before it replays the old way. When no
run from before a change can remain (retention passed), the old branch can go, after
``workflow.deprecate_patch``.
"""

from temporalio import workflow

# Search attributes upserted once per iteration, static prompt parts stashed by
# reference, only a window of steps carried across continue-as-new.
COMPACT_HISTORY = "compact-history-1"


def compact_history() -> bool:
    """True for runs on the compact-history code path (every run started after it)."""
    return workflow.patched(COMPACT_HISTORY)


# The user ledger checks, while it holds money, whether the runs it holds it for ended
# without settling (a timer and an activity in its history).
LEDGER_SWEEP = "ledger-sweep-1"


def ledger_sweep() -> bool:
    """True for ledgers on the sweeping code path (every ledger started after it)."""
    return workflow.patched(LEDGER_SWEEP)


# The worker resolves the agent a run names (a local activity recorded at start), the
# run reserves its user's share itself (an activity), decisions arrive as validated
# updates, and a run that ends closes its pending approvals.
WORKER_OWNS_AGENT = "worker-owns-agent-1"


def worker_owns_agent() -> bool:
    """True for runs started after the trust boundary moved to the worker."""
    return workflow.patched(WORKER_OWNS_AGENT)


# Ledger messages are signed by workers (operators, for adjustments) and checked.
LEDGER_SIGNED = "ledger-signed-1"


def ledger_signed() -> bool:
    """True for ledgers started after ledger messages were signed."""
    return workflow.patched(LEDGER_SIGNED)


# A run's input is the caller's `RunRequest` and, from the run itself only, a `RunCarry`
# (its state when it continues as new, its parent and depth for a sub-agent): two
# payloads instead of one object holding both. Decided when the run starts (the same
# answer, memoised, where it continues as new or starts a sub-agent).
SPLIT_INPUT = "split-input-1"


def split_input() -> bool:
    """True for runs that pass on a separate `RunCarry`."""
    return workflow.patched(SPLIT_INPUT)


# Fewer round trips per step: tools declared `local` run as local activities, and every
# tool call carries its spec's heartbeat timeout (by default seconds; before, only tools
# that declared one had it). Decided when the run starts, before its first local activity.
LEAN_STEPS = "lean-steps-1"


def lean_steps() -> bool:
    """True for runs on the lean-steps code path (every run started after it)."""
    return workflow.patched(LEAN_STEPS)


# The run resolves its agent with an ordinary activity instead of a local activity. A
# local activity's marker can be recorded in one workflow task while the code after it
# runs only in the next (a query reaching the worker as it completes): the next task
# then accepts an update (``admission``) before the run's first commands, and replay,
# which resumes the run in the marker's task, issues them before the acceptance. An
# activity's result is an event of its own, so the task that resumes the run is the same
# on replay. Decided when the run starts, before anything it awaits.
RESOLVE_BY_ACTIVITY = "resolve-by-activity-1"


def resolve_by_activity() -> bool:
    """True for runs that resolve their agent with an ordinary activity."""
    return workflow.patched(RESOLVE_BY_ACTIVITY)


# The run streams its events: each model call gets a key for its activity's token batches
# (in its input), and the stream's last events travel across continue-as-new (in the
# carry). Decided when the run starts, with the others.
STREAM_EVENTS = "stream-events-1"


def stream_events() -> bool:
    """True for runs whose model calls stream their tokens to the run's event stream."""
    return workflow.patched(STREAM_EVENTS)


# A run whose MCP tool disappeared (or whose planner asks) lists its MCP servers' tools
# again with the ``refresh_mcp_tools`` activity before its next plan. Decided when the
# run starts, with the others.
MCP_REFRESH = "mcp-refresh-1"


def mcp_refresh() -> bool:
    """True for runs that may read their MCP tool list again mid-run."""
    return workflow.patched(MCP_REFRESH)
