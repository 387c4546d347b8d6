"""Activity options derived from declarations, never written at call sites (the SDK's
typed `ActivityConfig`, each call's id and summary included).

Tools declare timeouts, retries and queues in their `ToolSpec`; model calls take theirs
from the spec's `LlmPolicy`. Non-retryable error types are listed here so a semantic or
permanent failure is attempted exactly once whatever the policy says.
"""

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityConfig, LocalActivityConfig

from durable_agents._domain.errors import MODEL_NON_RETRYABLE, NON_RETRYABLE, TOOL_NON_RETRYABLE
from durable_agents._domain.spec import LlmPolicy
from durable_agents._domain.tools import RetrySpec, ToolSpec


def retry_policy(spec: RetrySpec, never: frozenset[str] = NON_RETRYABLE) -> RetryPolicy:
    """Exponential backoff (Temporal adds jitter) that never retries ``never`` errors."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=spec.initial_interval_s),
        backoff_coefficient=spec.backoff,
        maximum_interval=timedelta(seconds=spec.max_interval_s),
        maximum_attempts=spec.max_attempts,
        non_retryable_error_types=sorted(never),
    )


def tool_options(
    tool: ToolSpec, *, activity_id: str, summary: str, lean: bool = True
) -> ActivityConfig:
    """``execute_activity``'s options for a call of ``tool`` (all but its name and input).

    ``lean`` False: a run recorded before the lean-steps patch, where a heartbeat timeout
    came only from a spec that set one (the field had no default then).
    """
    options: ActivityConfig = {
        "activity_id": activity_id,
        "summary": summary,
        "start_to_close_timeout": timedelta(seconds=tool.timeout_s),
        "retry_policy": retry_policy(tool.retry, TOOL_NON_RETRYABLE),
    }
    heartbeat = tool.heartbeat_timeout_s
    if not lean and "heartbeat_timeout_s" not in tool.model_fields_set:
        heartbeat = None
    if heartbeat:
        options["heartbeat_timeout"] = timedelta(seconds=heartbeat)
    if tool.task_queue:
        options["task_queue"] = tool.task_queue
    return options


def local_tool_options(tool: ToolSpec, *, activity_id: str, summary: str) -> LocalActivityConfig:
    """``execute_local_activity``'s options for a call of a ``local`` tool."""
    return {
        "activity_id": activity_id,
        "summary": summary,
        "start_to_close_timeout": timedelta(seconds=tool.timeout_s),
        "retry_policy": retry_policy(tool.retry, TOOL_NON_RETRYABLE),
    }


def llm_options(policy: LlmPolicy, *, activity_id: str, summary: str) -> ActivityConfig:
    """``execute_activity``'s options for a model call (all but its name and input)."""
    options: ActivityConfig = {
        "activity_id": activity_id,
        "summary": summary,
        "start_to_close_timeout": timedelta(seconds=policy.timeout_s),
        "retry_policy": retry_policy(policy.retry, MODEL_NON_RETRYABLE),
    }
    if policy.heartbeat_timeout_s:
        options["heartbeat_timeout"] = timedelta(seconds=policy.heartbeat_timeout_s)
    return options
