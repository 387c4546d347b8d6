"""A run's share of its user's monthly allowance, held and settled through its worker.

The worker signs what it tells the ledger, so only a run (never a caller) can reserve,
settle or release a share; the amounts come from the run's own resolved budget.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from durable_agents._domain import contract
from durable_agents._domain.admission import ShareRequest, ShareSettlement
from durable_agents._domain.user_ledger import LedgerDecision

SHARE_TIMEOUT = timedelta(seconds=60)
SHARE_RETRY = RetryPolicy(
    maximum_interval=timedelta(seconds=30), non_retryable_error_types=["LedgerRefused"]
)


async def reserve_share(user: str, amount_micros: int, limit_micros: int) -> LedgerDecision:
    """Hold ``amount_micros`` of ``user``'s allowance for this run (granted or refused)."""
    decision: LedgerDecision = await workflow.execute_activity(
        contract.RESERVE_USER_SHARE,
        ShareRequest(
            user=user,
            run_id=workflow.info().workflow_id,
            amount_micros=amount_micros,
            limit_micros=limit_micros,
        ),
        result_type=LedgerDecision,
        start_to_close_timeout=SHARE_TIMEOUT,
        retry_policy=SHARE_RETRY,
        summary=f"reserve from {user}'s monthly allowance",
    )
    return decision


async def settle_share(user: str, actual_micros: int) -> None:
    """Count what this run spent in ``user``'s ledger, releasing its reservation."""
    await workflow.execute_activity(
        contract.SETTLE_USER_SHARE,
        ShareSettlement(user=user, run_id=workflow.info().workflow_id, actual_micros=actual_micros),
        start_to_close_timeout=SHARE_TIMEOUT,
        retry_policy=SHARE_RETRY,
        summary=f"settle with {user}'s monthly allowance",
    )
