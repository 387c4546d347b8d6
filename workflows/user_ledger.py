"""``UserLedger``: one long-lived entity workflow per user, holding their monthly spend.

Reservations arrive as updates, which Temporal runs one at a time in the workflow, so
concurrent runs of one user are counted exactly. Settlements and releases are signals
(runs send them from their own workflow). The ledger continues as new when its history
grows, carrying only its balance.
"""

from temporalio import workflow

from domain.user_ledger import (
    LedgerDecision,
    LedgerReservation,
    LedgerSettlement,
    UserSpend,
    period_of,
)

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
        await workflow.wait_condition(
            lambda: (
                workflow.info().is_continue_as_new_suggested()
                or self._state.operations - start_ops >= OPERATIONS_PER_RUN
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._state)

    @workflow.update
    def reserve(self, reservation: LedgerReservation) -> LedgerDecision:
        """Hold part of the allowance for a run, or refuse with the balance."""
        self._state.roll(period_of(workflow.now()))
        return self._state.reserve(reservation)

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
