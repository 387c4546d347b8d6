"""Per-user spending across runs: a monthly allowance that runs reserve from and settle to.

Pure arithmetic, kept by one ``UserLedger`` entity workflow per user. Reservations are
keyed by the run's workflow id, so a repeated request reserves once and a repeated
settlement counts once. A new month starts a fresh period; reservations of runs still
in flight carry over, since their spend will land in the new period. A run that ends
without settling (terminated, timed out, or never started) is found by the ledger's
sweep once its reservation is older than ``sweep_every_s``.
"""

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from domain.money import micros_to_usd


def period_of(moment: datetime) -> str:
    """The accounting period (calendar month, UTC) a moment belongs to."""
    return f"{moment.year:04d}-{moment.month:02d}"


def ledger_workflow_id(user: str) -> str:
    """The id of a user's ledger workflow."""
    return f"user-ledger-{user}"


class LedgerReservation(BaseModel):
    """A run asks to hold up to ``amount_micros`` of its user's allowance."""

    run_id: str
    amount_micros: int = Field(ge=0)
    limit_micros: int = Field(ge=0)


class LedgerSettlement(BaseModel):
    """A run reports what it really spent; its reservation is released."""

    run_id: str
    actual_micros: int = Field(ge=0)


class LedgerDecision(BaseModel):
    """The answer to a reservation, and the balance it was decided on."""

    granted: bool
    user: str
    period: str
    spent_micros: int
    reserved_micros: int
    limit_micros: int
    message: str = ""


# How often a ledger holding money checks that the runs it holds it for still run.
SWEEP_EVERY_S = 600.0


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
