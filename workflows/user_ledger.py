"""``UserLedger``: one long-lived entity workflow per user, holding their monthly spend.

Reservations arrive as updates, which Temporal runs one at a time in the workflow, so
concurrent runs of one user are counted exactly. Settlements and releases are signals
(runs send them from their own workflow). A run that ends without settling (terminated,
timed out) would hold its share forever: while the ledger holds money it checks every
``sweep_every_s`` that the runs it holds it for still run, and settles those that ended
at the cost they last reported. The ledger continues as new when its history grows,
carrying only its balance.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from domain.user_ledger import (
    LedgerDecision,
    LedgerReservation,
    LedgerSettlement,
    UserSpend,
    period_of,
)
from workflows.versions import ledger_sweep

OPERATIONS_PER_RUN = 500


@workflow.defn(name="UserLedger")
class UserLedger:
    """A user's spending ledger."""

    @workflow.init
    def __init__(self, state: UserSpend) -> None:
        self._state = state

    @workflow.run
    async def run(self, state: UserSpend) -> None:
        """Live until the history should be compacted, then continue as new."""
        start_ops = self._state.operations

        def compact() -> bool:
            return (
                workflow.info().is_continue_as_new_suggested()
                or self._state.operations - start_ops >= OPERATIONS_PER_RUN
            )

        if not ledger_sweep():  # a ledger recorded before the sweep
            await workflow.wait_condition(compact)
        while not compact():
            if not self._state.reservations:
                await workflow.wait_condition(lambda: compact() or bool(self._state.reservations))
                continue
            try:
                every = timedelta(seconds=self._state.sweep_every_s)
                await workflow.wait_condition(compact, timeout=every)
            except TimeoutError:
                await self._sweep()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._state)

    async def _sweep(self) -> None:
        """Settle the reservations of runs that ended without settling."""
        stale = self._state.stale(workflow.now())
        if not stale:
            return
        ended = await workflow.execute_activity(
            "ended_runs",
            stale,
            result_type=list[LedgerSettlement],
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            summary=f"check {len(stale)} runs holding money",
        )
        for settlement in ended:  # a run that settled meanwhile is not counted twice
            self._state.settle(settlement)
            workflow.logger.warning(
                "a run ended without settling; counted at its last reported cost",
                extra={"run": settlement.run_id, "micros": settlement.actual_micros},
            )

    @workflow.update
    def reserve(self, reservation: LedgerReservation) -> LedgerDecision:
        """Hold part of the allowance for a run, or refuse with the balance."""
        self._state.roll(period_of(workflow.now()))
        return self._state.reserve(reservation, workflow.now())

    @workflow.signal
    def settle(self, settlement: LedgerSettlement) -> None:
        """A run ended; count its actual spend."""
        self._state.roll(period_of(workflow.now()))
        self._state.settle(settlement)

    @workflow.signal
    def release(self, run_id: str) -> None:
        """A reserved run never started."""
        self._state.release(run_id)

    @workflow.query
    def balance(self) -> UserSpend:
        """The current balance."""
        return self._state
