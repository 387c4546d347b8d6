"""``UserLedger``: one long-lived entity workflow per user, holding their monthly spend.

Reservations arrive as updates, which Temporal runs one at a time in the workflow, so
concurrent runs of one user are counted exactly. Only a run (through its worker, which
signs what it sends) can reserve, settle or release its share, and only an operator
holding a key the workers know can correct a balance; anything else is refused (updates
by their validator, writing nothing) or audited and ignored (signals). A ledger started
by anyone but itself (a caller squatting the id with a forged balance) starts from zero.

A run that ends without settling (terminated, timed out) would hold its share forever:
while the ledger holds money it checks every ``sweep_every_s`` that the runs it holds it
for still run, and settles those that ended at the cost they last reported. The ledger
continues as new when its history grows, carrying only its balance.
"""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior

from durable_agents._domain import contract
from durable_agents._domain.user_ledger import (
    LedgerAdjustment,
    LedgerDecision,
    LedgerRelease,
    LedgerReservation,
    LedgerSettlement,
    LedgerTrust,
    UserSpend,
    period_of,
)
from durable_agents._workflows.ledger_checks import LedgerRefusedError, check_signed, parse_message
from durable_agents._workflows.versions import ledger_signed, ledger_sweep

OPERATIONS_PER_RUN = 500


@workflow.defn(name=contract.USER_LEDGER)
class UserLedger:
    """A user's spending ledger."""

    @workflow.init
    def __init__(self, state: Any) -> None:
        self._signed = ledger_signed()
        self._trusted = not self._signed  # ledgers recorded before signing took unsigned ops
        if not self._signed:
            self._state = UserSpend.model_validate(state)
        else:
            self._state = _own_state(state)

    @workflow.run
    async def run(self, state: Any) -> None:
        """Live until the history should be compacted, then continue as new."""
        start_ops = self._state.operations
        # Decided before the local activity below (see AgentRun.run): a patch first asked
        # after an activity may fall in another workflow task on replay.
        sweeps = ledger_sweep()
        if self._signed:  # who may sign, as the workers are configured now
            trust = await workflow.execute_local_activity(
                contract.LEDGER_TRUST,
                result_type=LedgerTrust,
                start_to_close_timeout=timedelta(seconds=30),
                summary="who may sign for this ledger",
            )
            self._state.worker_keys = trust.worker_keys
            self._state.operator_keys = trust.operator_keys
            self._state.sweep_every_s = trust.sweep_every_s
        self._trusted = True

        def compact() -> bool:
            return (
                workflow.info().is_continue_as_new_suggested()
                or self._state.operations - start_ops >= OPERATIONS_PER_RUN
            )

        if not sweeps:  # a ledger recorded before the sweep
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
            contract.ENDED_RUNS,
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

    # -- messages ---------------------------------------------------------------------

    def _check(self, op: str, raw: Any, model: type[Any]) -> Any:
        """The message in ``raw`` if this ledger takes it, else `LedgerRefusedError`."""
        message = parse_message(model, raw)
        if self._signed:
            check_signed(self._state, op, _ledger_id(), message, workflow.now())
        return message

    def _refused(self, op: str, why: str, by: str = "") -> None:
        self._state.record_refusal(op, why, by, workflow.now())

    @workflow.update(name=contract.RESERVE)
    async def reserve(self, raw: Any) -> LedgerDecision:
        """Hold part of the allowance for a run, or refuse with the balance."""
        if not self._trusted:
            await workflow.wait_condition(lambda: self._trusted)
        try:
            r: LedgerReservation = self._check(contract.RESERVE, raw, LedgerReservation)
        except LedgerRefusedError as err:
            self._refused(contract.RESERVE, err.message)
            raise
        self._state.roll(period_of(workflow.now()))
        if r.run_id in self._state.settled:
            self._refused(contract.RESERVE, f"{r.run_id} has already settled", r.run_id)
            raise LedgerRefusedError(f"{r.run_id} has already settled")
        decision = self._state.reserve(r, workflow.now())
        self._state.accepted(
            contract.RESERVE, r.run_id, f"{r.amount_micros} micros", workflow.now()
        )
        return decision.model_copy(update={"ledger_id": _ledger_id()})

    @reserve.validator
    def _validate_reserve(self, raw: Any) -> None:
        if self._trusted:
            self._check(contract.RESERVE, raw, LedgerReservation)

    @workflow.update(name=contract.SETTLE)
    async def settle(self, raw: Any) -> LedgerDecision:
        """A run ended; count its actual spend (answered with the new balance)."""
        if not self._trusted:
            await workflow.wait_condition(lambda: self._trusted)
        s: LedgerSettlement = self._check(contract.SETTLE, raw, LedgerSettlement)
        self._settle(s)
        return self._state.decision(True, 0).model_copy(update={"ledger_id": _ledger_id()})

    @settle.validator
    def _validate_settle(self, raw: Any) -> None:
        if self._trusted:
            self._check(contract.SETTLE, raw, LedgerSettlement)

    def _settle(self, s: LedgerSettlement) -> None:
        self._state.roll(period_of(workflow.now()))
        self._state.settle(s)
        self._state.accepted(contract.SETTLE, s.run_id, f"{s.actual_micros} micros", workflow.now())

    @workflow.update(name=contract.ADJUST)
    async def adjust(self, raw: Any) -> LedgerDecision:
        """An operator's signed correction of the user's spend this period."""
        if not self._trusted:
            await workflow.wait_condition(lambda: self._trusted)
        a: LedgerAdjustment = self._check(contract.ADJUST, raw, LedgerAdjustment)
        self._state.roll(period_of(workflow.now()))
        self._state.adjust(a)
        detail = f"{a.delta_micros:+d} micros: {a.reason}"
        self._state.accepted(contract.ADJUST, a.operator, detail, workflow.now())
        return self._state.decision(True, 0).model_copy(update={"ledger_id": _ledger_id()})

    @adjust.validator
    def _validate_adjust(self, raw: Any) -> None:
        if not self._signed:
            raise LedgerRefusedError("this ledger predates signed adjustments")
        if self._trusted:
            self._check(contract.ADJUST, raw, LedgerAdjustment)

    @workflow.signal(name=contract.SETTLE)
    def settle_signal(self, *args: Any) -> None:
        """Older runs' settlement signal: taken if signed (or recorded before signing)."""
        self._signal(contract.SETTLE, args, LedgerSettlement)

    @workflow.signal(name=contract.RELEASE)
    def release(self, *args: Any) -> None:
        """A reserved run never started: its hold is dropped (signed by its worker)."""
        self._signal(contract.RELEASE, args, LedgerRelease)

    def _signal(self, op: str, args: tuple[Any, ...], model: type[Any]) -> None:
        if not self._signed:  # recorded before signing: the old shapes, taken as sent
            if op == contract.SETTLE:
                self._settle(LedgerSettlement.model_validate(args[0]))
            else:
                self._state.release(str(args[0]))
            return
        try:
            if len(args) != 1:
                raise LedgerRefusedError(f"expected one payload, got {len(args)}")
            if not self._trusted:
                raise LedgerRefusedError("the ledger is starting")
            message = self._check(op, args[0], model)
        except LedgerRefusedError as err:
            self._refused(op, err.message)
            return
        if op == contract.SETTLE:
            self._settle(message)
        else:
            self._state.release(message.run_id)
            self._state.accepted(contract.RELEASE, message.run_id, "", workflow.now())

    @workflow.query(name=contract.BALANCE)
    def balance(self) -> UserSpend:
        """The current balance."""
        return self._state


def _ledger_id() -> str:
    return workflow.info().workflow_id


def _own_state(raw: Any) -> UserSpend:
    """The carried balance of this ledger's own continuation; otherwise a fresh one.

    Anyone can start a workflow with this id and any input, so the input is trusted only
    when this execution continues the ledger itself.
    """
    info = workflow.info()
    user = info.workflow_id.removeprefix(contract.LEDGER_ID_PREFIX)
    if info.continued_run_id is not None:
        try:
            return UserSpend.model_validate(raw)
        except ValueError:
            pass
    return UserSpend(user=user)


@workflow.defn(name=contract.USER_LEDGER, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class AutoUpgradingUserLedger(UserLedger):
    """`UserLedger` as versioned workers run it (``AGENT_DEPLOYMENT``): a ledger lives for
    a month, so it moves to the current version rather than staying pinned to one that
    may be retired (its code keeps older histories replaying with ``workflow.patched``).
    Unversioned workers must not declare a behaviour at all (the server refuses it)."""

    @workflow.run
    async def run(self, state: Any) -> None:
        """As `UserLedger.run`."""
        await super().run(state)
