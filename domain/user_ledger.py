"""Per-user spending across runs: a monthly allowance that runs reserve from and settle to.

Pure arithmetic, kept by one ``UserLedger`` entity workflow per user. Reservations are
keyed by the run's workflow id, so a repeated request reserves once and a repeated
settlement counts once. A new month starts a fresh period; reservations of runs still
in flight carry over, since their spend will land in the new period. A run that ends
without settling (terminated, timed out, or never started) is found by the ledger's
sweep once its reservation is older than ``sweep_every_s``.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from durable_agents._domain import contract
from durable_agents._domain.money import micros_to_usd


def period_of(moment: datetime) -> str:
    """The accounting period (calendar month, UTC) a moment belongs to."""
    return f"{moment.year:04d}-{moment.month:02d}"


def ledger_workflow_id(user: str) -> str:
    """The id of a user's ledger workflow."""
    return f"{contract.LEDGER_ID_PREFIX}{user}"


# How often a ledger holding money checks that the runs it holds it for still run.
SWEEP_EVERY_S = 600.0


class Signed(BaseModel):
    """A ledger message signed by a worker (or, for adjustments, an operator).

    ``issued_at`` bounds how long a copy of the message can be replayed.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    issued_at: datetime | None = None
    signature: str | None = Field(default=None, max_length=200)

    def message(self, op: str, ledger_id: str) -> dict[str, Any]:
        """What is signed: the operation, the ledger, and every field but the signature."""
        fields = self.model_dump(mode="json", exclude={"signature"})
        return {"v": 1, "op": op, "ledger": ledger_id, **fields}


class LedgerReservation(Signed):
    """A run asks to hold up to ``amount_micros`` of its user's allowance."""

    run_id: str = Field(max_length=300)
    amount_micros: int = Field(ge=0)
    limit_micros: int = Field(ge=0)


class LedgerSettlement(Signed):
    """A run reports what it really spent; its reservation is released."""

    run_id: str = Field(max_length=300)
    actual_micros: int = Field(ge=0)


class LedgerRelease(Signed):
    """A reservation whose run never started is dropped."""

    run_id: str = Field(max_length=300)


class LedgerAdjustment(Signed):
    """An operator's correction of a user's spend in the current period, signed."""

    operator: str = Field(min_length=1, max_length=200)
    delta_micros: int = Field(ge=-(10**15), le=10**15)
    reason: str = Field(min_length=1, max_length=2000)


class LedgerTrust(BaseModel):
    """Who may sign for ledgers: the workers' public keys and the operators' keys."""

    worker_keys: list[str]
    operator_keys: dict[str, str] = {}
    sweep_every_s: float = Field(default=SWEEP_EVERY_S, gt=0)


class LedgerAuditEntry(BaseModel):
    """One line of a ledger's audit trail: an operation taken or refused."""

    at: datetime
    op: str
    accepted: bool
    by: str = ""
    detail: str = ""


# A signed ledger message older than this is refused (a copy cannot be replayed later).
MESSAGE_TTL_S = 900.0
AUDIT_KEPT = 50
SETTLED_KEPT = 500


class LedgerDecision(BaseModel):
    """The answer to a reservation, and the balance it was decided on."""

    granted: bool
    user: str
    ledger_id: str = ""
    period: str
    spent_micros: int
    reserved_micros: int
    limit_micros: int
    message: str = ""


class UserSpend(BaseModel):
    """A user's spending in the current period."""

    user: str
    period: str = ""
    spent_micros: int = 0
    reservations: dict[str, int] = {}
    # When each reservation was made (absent for ledgers from before the sweep: old).
    reserved_at: dict[str, datetime] = {}
    operations: int = 0
    sweep_every_s: float = Field(default=SWEEP_EVERY_S, gt=0)
    # Who may sign (resolved from the worker's configuration when the ledger starts).
    worker_keys: list[str] = []
    operator_keys: dict[str, str] = {}
    audit: list[LedgerAuditEntry] = []
    # Runs settled lately: a replayed reservation for one of them is refused.
    settled: list[str] = []

    def record(self, entry: LedgerAuditEntry) -> None:
        """Append to the audit trail, keeping the most recent entries."""
        self.audit = [*self.audit, entry][-AUDIT_KEPT:]

    def accepted(self, op: str, by: str, detail: str, at: datetime) -> None:
        """Audit an operation the ledger took."""
        self.record(LedgerAuditEntry(at=at, op=op, accepted=True, by=by, detail=detail[:300]))

    def record_refusal(self, op: str, why: str, by: str, at: datetime) -> None:
        """Audit a message the ledger refused."""
        self.record(LedgerAuditEntry(at=at, op=op, accepted=False, by=by, detail=why[:300]))

    def roll(self, period: str) -> None:
        """Enter ``period``; spending restarts at zero in a new month."""
        if period != self.period:
            self.period = period
            self.spent_micros = 0

    def reserved(self) -> int:
        """Everything held for runs in flight."""
        return sum(self.reservations.values())

    def decision(self, granted: bool, limit: int, message: str = "") -> LedgerDecision:
        """The current balance as a decision."""
        return LedgerDecision(
            granted=granted,
            user=self.user,
            period=self.period,
            spent_micros=self.spent_micros,
            reserved_micros=self.reserved(),
            limit_micros=limit,
            message=message,
        )

    def reserve(self, r: LedgerReservation, now: datetime | None = None) -> LedgerDecision:
        """Hold the amount if spent + reserved + amount stays within the limit."""
        self.operations += 1
        if r.run_id in self.reservations:
            return self.decision(True, r.limit_micros, "already reserved for this run")
        if self.spent_micros + self.reserved() + r.amount_micros > r.limit_micros:
            return self.decision(
                False,
                r.limit_micros,
                f"user '{self.user}' has spent ${micros_to_usd(self.spent_micros):.4f} and "
                f"holds ${micros_to_usd(self.reserved()):.4f} for runs in flight in "
                f"{self.period}, of a ${micros_to_usd(r.limit_micros):.2f} limit; this run "
                f"needs up to ${micros_to_usd(r.amount_micros):.4f}. Lower the run's budget "
                "(--budget-usd) or raise the user's limit (AGENT_USER_LIMITS_FILE).",
            )
        self.reservations[r.run_id] = r.amount_micros
        if now is not None:
            self.reserved_at[r.run_id] = now
        return self.decision(True, r.limit_micros)

    def settle(self, s: LedgerSettlement) -> None:
        """Count what a run spent; a settlement without a reservation is ignored."""
        self.operations += 1
        self.reserved_at.pop(s.run_id, None)
        if self.reservations.pop(s.run_id, None) is not None:
            self.spent_micros += s.actual_micros
            self.settled = [*self.settled, s.run_id][-SETTLED_KEPT:]

    def adjust(self, a: LedgerAdjustment) -> None:
        """Apply an operator's correction (spend never goes below zero)."""
        self.operations += 1
        self.spent_micros = max(0, self.spent_micros + a.delta_micros)

    def release(self, run_id: str) -> None:
        """Drop a reservation whose run never started."""
        self.operations += 1
        self.reservations.pop(run_id, None)
        self.reserved_at.pop(run_id, None)

    def stale(self, now: datetime) -> list[str]:
        """Runs whose reservation is older than a sweep period: check that they still run.

        Younger ones are left alone (a run is started just after its reservation).
        """
        old = datetime.min.replace(tzinfo=UTC)
        period = timedelta(seconds=self.sweep_every_s)
        return sorted(r for r in self.reservations if now - self.reserved_at.get(r, old) >= period)
