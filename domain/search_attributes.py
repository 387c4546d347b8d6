"""Search attributes every run keeps current, so the Web UI can filter runs.

Plain data only (no temporalio import): the dev-server manager registers them, the
workflow builds typed keys from them, and `agentctl list` builds queries over them.
"""

SEARCH_ATTRIBUTE_TYPES: dict[str, str] = {
    "AgentName": "Keyword",
    "AgentStatus": "Keyword",
    "CostUsd": "Double",
    "TokensUsed": "Int",
    "PendingApproval": "Bool",
    "Iteration": "Int",
    "AgentUser": "Keyword",
    "BudgetAlert": "Bool",
    "CostLimitUsd": "Double",
}
