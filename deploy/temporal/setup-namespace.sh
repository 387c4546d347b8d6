#!/bin/sh
# One-shot job (temporalio/admin-tools): create the namespace durable-agents runs in and
# register the search attributes its workflows keep current.
#
# Idempotent: an existing namespace or search attribute is left as it is, so `docker
# compose up` may run it on every start. The list below must equal
# domain/search_attributes.py (tests/test_compose.py checks it).
set -eu

ADDRESS="${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is required}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-72h}"
ATTEMPTS="${SETUP_ATTEMPTS:-90}"

# retry WHAT COMMAND...: run COMMAND every 2 s until it succeeds, at most ATTEMPTS times.
retry() {
  what="$1"
  shift
  n=1
  until "$@"; do
    if [ "$n" -ge "$ATTEMPTS" ]; then
      echo "temporal-setup: gave up waiting for $what" >&2
      return 1
    fi
    echo "temporal-setup: waiting for $what ($n/$ATTEMPTS)"
    n=$((n + 1))
    sleep 2
  done
}

ensure_namespace() {
  temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" \
    >/dev/null 2>&1 && return 0
  temporal operator namespace create --address "$ADDRESS" --namespace "$NAMESPACE" \
    --retention "$RETENTION"
}

# ensure_search_attribute NAME TYPE: register NAME unless the namespace already has it.
# (Adding an existing attribute is an error on SQL visibility, so look first.)
ensure_search_attribute() {
  if temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE" \
    | grep -Eq "(^|[[:space:]])$1([[:space:]]|\$)"; then
    echo "temporal-setup: search attribute $1 exists"
    return 0
  fi
  temporal operator search-attribute create --address "$ADDRESS" --namespace "$NAMESPACE" \
    --name "$1" --type "$2"
}

retry "the cluster at $ADDRESS" temporal operator cluster health --address "$ADDRESS"
retry "namespace $NAMESPACE" ensure_namespace

retry "search attribute AgentName" ensure_search_attribute AgentName Keyword
retry "search attribute AgentStatus" ensure_search_attribute AgentStatus Keyword
retry "search attribute AgentUser" ensure_search_attribute AgentUser Keyword
retry "search attribute CostUsd" ensure_search_attribute CostUsd Double
retry "search attribute TokensUsed" ensure_search_attribute TokensUsed Int
retry "search attribute Iteration" ensure_search_attribute Iteration Int
retry "search attribute PendingApproval" ensure_search_attribute PendingApproval Bool
retry "search attribute BudgetAlert" ensure_search_attribute BudgetAlert Bool
retry "search attribute CostLimitUsd" ensure_search_attribute CostLimitUsd Double

echo "temporal-setup: namespace $NAMESPACE ready"
