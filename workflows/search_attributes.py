"""Typed search-attribute keys built from the plain table in `domain`."""

from typing import Any

from temporalio.common import SearchAttributeKey

AGENT_NAME = SearchAttributeKey.for_keyword("AgentName")
AGENT_STATUS = SearchAttributeKey.for_keyword("AgentStatus")
AGENT_USER = SearchAttributeKey.for_keyword("AgentUser")
COST_USD = SearchAttributeKey.for_float("CostUsd")
TOKENS_USED = SearchAttributeKey.for_int("TokensUsed")
PENDING_APPROVAL = SearchAttributeKey.for_bool("PendingApproval")
ITERATION = SearchAttributeKey.for_int("Iteration")
BUDGET_ALERT = SearchAttributeKey.for_bool("BudgetAlert")
COST_LIMIT_USD = SearchAttributeKey.for_float("CostLimitUsd")

KEYS: dict[str, SearchAttributeKey[Any]] = {
    k.name: k
    for k in (
        AGENT_NAME,
        AGENT_STATUS,
        AGENT_USER,
        COST_USD,
        TOKENS_USED,
        PENDING_APPROVAL,
        ITERATION,
        BUDGET_ALERT,
        COST_LIMIT_USD,
    )
}
