"""What became of the runs a user's ledger still holds money for (its periodic sweep)."""

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._domain import contract
from durable_agents._domain.money import usd_cost_to_micros
from durable_agents._domain.search_attributes import COST_USD
from durable_agents._domain.user_ledger import LedgerSettlement


@activity.defn(name=contract.ENDED_RUNS)
async def ended_runs(run_ids: list[str]) -> list[LedgerSettlement]:
    """Settlements for the runs among ``run_ids`` that are no longer running.

    A run that ended (terminated, timed out, or a bug that failed it before it could
    settle) is counted at the cost it last reported; one that never started at zero.
    Runs still running are left out.
    """
    client = activity.client()
    ended = []
    for run_id in run_ids:
        try:
            desc = await client.get_workflow_handle(run_id).describe()
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
            ended.append(LedgerSettlement(run_id=run_id, actual_micros=0))
            continue
        if desc.status is not WorkflowExecutionStatus.RUNNING:
            # The cost the run last reported (it keeps it current; see workflows/story.py).
            cost = desc.typed_search_attributes.get(COST_USD) or 0.0
            ended.append(LedgerSettlement(run_id=run_id, actual_micros=usd_cost_to_micros(cost)))
    return ended
