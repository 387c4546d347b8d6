"""Error classes of durable-agents, by the name they travel under.

Activities raise ``ApplicationError(type=<one of these>)``; the workflow decides what to
do from the type alone. The names are persisted in histories: renaming one breaks runs
in flight.
"""

from enum import StrEnum


class ErrorType(StrEnum):
    """``ApplicationError.type`` values and what each one means to the workflow."""

    # Transient: retried by Temporal with backoff (honouring Retry-After).
    MODEL_RATE_LIMITED = "ModelRateLimited"
    MODEL_UNAVAILABLE = "ModelUnavailable"
    TOOL_UNAVAILABLE = "ToolUnavailable"
    CIRCUIT_OPEN = "CircuitOpen"
    # Permanent: one attempt, then the model's fallback chain (or fail fast).
    MODEL_REJECTED = "ModelRejected"
    # Semantic: no blind retry; the failure goes back to the planner.
    MODEL_REPLY_INVALID = "ModelReplyInvalid"
    TOOL_INPUT = "ToolInputError"
    UNKNOWN_TOOL = "UnknownTool"
    PERMISSION_DENIED = "PermissionDenied"
    # The tool itself reported that the goal cannot be reached this way.
    TOOL_FAILED = "ToolFailed"
    # A prompt referenced text the payload store does not hold (a store not shared by
    # every worker, or lost): the workflow resends the prompt inline, once.
    PAYLOAD_MISSING = "PayloadMissing"
    # An MCP server an agent names could not be reached to list its tools as a run
    # started: retried, then the run is refused naming the server.
    MCP_UNAVAILABLE = "McpUnavailable"
    # A run called an MCP tool its server no longer offers: the planner is told, and the
    # run reads the server's tool list again before its next plan.
    MCP_TOOL_GONE = "McpToolGone"
    # A refreshed MCP tool list cannot join the run's tools (a name taken, a list that is
    # not MCP): the run keeps the list it had.
    MCP_REFRESH_REFUSED = "McpRefreshRefused"


TRANSIENT = frozenset(
    {
        ErrorType.MODEL_RATE_LIMITED,
        ErrorType.MODEL_UNAVAILABLE,
        ErrorType.TOOL_UNAVAILABLE,
        ErrorType.CIRCUIT_OPEN,
    }
)
# What each kind of activity can raise that no retry can fix (each retry policy lists
# only its own kind's: the list is recorded with every scheduled activity).
MODEL_NON_RETRYABLE = frozenset(
    {ErrorType.MODEL_REJECTED, ErrorType.MODEL_REPLY_INVALID, ErrorType.PAYLOAD_MISSING}
)
TOOL_NON_RETRYABLE = frozenset(
    {
        ErrorType.TOOL_INPUT,
        ErrorType.UNKNOWN_TOOL,
        ErrorType.PERMISSION_DENIED,
        ErrorType.TOOL_FAILED,
    }
)
# Raised non-retryable by the activity itself (kept out of the recorded retry policies).
RAISED_NON_RETRYABLE = frozenset({ErrorType.MCP_TOOL_GONE})
NON_RETRYABLE = MODEL_NON_RETRYABLE | TOOL_NON_RETRYABLE | RAISED_NON_RETRYABLE
