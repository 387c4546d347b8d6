"""Typed search-attribute keys for the names and types in `domain.contract` (the SDK's
key types only: pure, safe in workflows, activities and clients)."""

from typing import Any

from temporalio.common import SearchAttributeKey

from durable_agents._domain import contract

AGENT_NAME = SearchAttributeKey.for_keyword(contract.AGENT_NAME)
AGENT_STATUS = SearchAttributeKey.for_keyword(contract.AGENT_STATUS)
AGENT_USER = SearchAttributeKey.for_keyword(contract.AGENT_USER)
COST_USD = SearchAttributeKey.for_float(contract.COST_USD)
TOKENS_USED = SearchAttributeKey.for_int(contract.TOKENS_USED)
PENDING_APPROVAL = SearchAttributeKey.for_bool(contract.PENDING_APPROVAL)
ITERATION = SearchAttributeKey.for_int(contract.ITERATION)
BUDGET_ALERT = SearchAttributeKey.for_bool(contract.BUDGET_ALERT)
COST_LIMIT_USD = SearchAttributeKey.for_float(contract.COST_LIMIT_USD)

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
