"""Budgets, usage and the reservation ledger that keeps a run from overspending.

The ledger is pure arithmetic kept in workflow state. Before a call the workflow
*reserves* an upper bound of what the call can cost; the call is refused if
``spent + reserved + bound`` would pass a hard limit. After the call it *settles* the
actual usage and releases the reservation. Because every in-flight call holds a
reservation, parallel calls cannot overspend together, and since settling an unknown key
is a no-op, a retried settlement after a crash cannot count twice.
"""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from durable_agents._domain.money import micros_to_usd, usd_to_micros


class Usage(BaseModel):
    """Counted consumption: tokens, cost and calls."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_micros: int = Field(default=0, ge=0)
    llm_calls: int = Field(default=0, ge=0)
    tool_calls: int = Field(default=0, ge=0)
    cache_hits: int = Field(default=0, ge=0)

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def cost_usd(self) -> float:
        """Cost in USD, for display."""
        return micros_to_usd(self.cost_micros)

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_micros=self.cost_micros + other.cost_micros,
            llm_calls=self.llm_calls + other.llm_calls,
            tool_calls=self.tool_calls + other.tool_calls,
            cache_hits=self.cache_hits + other.cache_hits,
        )


class Budget(BaseModel):
    """Hard limits of one run. ``None`` means unlimited in that dimension."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_cost_usd: float | None = Field(default=1.0, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    max_llm_calls: int | None = Field(default=None, ge=0)
    max_tool_calls: int | None = Field(default=None, ge=0)
    max_iterations: int = Field(default=10, ge=1)
    max_wall_time_s: float | None = Field(default=None, gt=0)
    soft_fraction: float = Field(default=0.8, gt=0, le=1)


class BudgetOverride(BaseModel):
    """Per-request overrides of the spec's default budget (only the fields given)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_cost_usd: float | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    max_llm_calls: int | None = Field(default=None, ge=0)
    max_tool_calls: int | None = Field(default=None, ge=0)
    max_iterations: int | None = Field(default=None, ge=1)
    max_wall_time_s: float | None = Field(default=None, gt=0)

    def apply(self, budget: Budget) -> Budget:
        """Return ``budget`` with the fields this override sets replaced."""
        return budget.model_copy(update=self.model_dump(exclude_none=True))


class Dimension(StrEnum):
    """A budget dimension the ledger enforces."""

    COST = "cost_usd"
    TOKENS = "tokens"
    LLM_CALLS = "llm_calls"
    TOOL_CALLS = "tool_calls"


class BudgetExceededError(Exception):
    """A reservation would pass a hard limit. ``dimensions`` names which."""

    def __init__(self, dimensions: list[Dimension], detail: str) -> None:
        super().__init__(detail)
        self.dimensions = dimensions


class BudgetLedger(BaseModel):
    """Spent and reserved usage against a budget. Pure: safe inside workflows."""

    budget: Budget
    spent: Usage = Usage()
    reservations: dict[str, Usage] = {}
    soft_alert_raised: bool = False

    def committed(self) -> Usage:
        """Spent plus everything currently reserved."""
        total = self.spent
        for bound in self.reservations.values():
            total = total + bound
        return total

    def _limits(self) -> dict[Dimension, int | None]:
        b = self.budget
        return {
            Dimension.COST: None if b.max_cost_usd is None else usd_to_micros(b.max_cost_usd),
            Dimension.TOKENS: b.max_tokens,
            Dimension.LLM_CALLS: b.max_llm_calls,
            Dimension.TOOL_CALLS: b.max_tool_calls,
        }

    @staticmethod
    def _amount(usage: Usage, dim: Dimension) -> int:
        return {
            Dimension.COST: usage.cost_micros,
            Dimension.TOKENS: usage.tokens,
            Dimension.LLM_CALLS: usage.llm_calls,
            Dimension.TOOL_CALLS: usage.tool_calls,
        }[dim]

    def overflow(self, bound: Usage) -> list[Dimension]:
        """Dimensions in which reserving ``bound`` now would pass a hard limit."""
        committed = self.committed()
        return [
            dim
            for dim, limit in self._limits().items()
            if limit is not None and self._amount(committed, dim) + self._amount(bound, dim) > limit
        ]

    def reserve(self, key: str, bound: Usage) -> None:
        """Hold ``bound`` under ``key``, or raise `BudgetExceededError` leaving state unchanged."""
        if key in self.reservations:
            return  # a replayed or retried reservation holds once
        over = self.overflow(bound)
        if over:
            raise BudgetExceededError(over, self.describe_overflow(over, bound))
        self.reservations[key] = bound

    def settle(self, key: str, actual: Usage) -> bool:
        """Record ``actual`` for ``key`` and release its reservation.

        Returns True exactly once per run: when this settlement makes spending cross the
        soft fraction of a limit. Settling a key that holds no reservation is ignored, so a
        settlement repeated after a crash never counts twice.
        """
        if self.reservations.pop(key, None) is None:
            return False
        self.spent = self.spent + actual
        if not self.soft_alert_raised and self.soft_fraction_used() >= self.budget.soft_fraction:
            self.soft_alert_raised = True
            return True
        return False

    def release(self, key: str) -> None:
        """Drop a reservation whose call never happened (refused, denied, cancelled)."""
        self.reservations.pop(key, None)

    def soft_fraction_used(self) -> float:
        """The largest fraction of any hard limit that is already spent."""
        fractions = [
            self._amount(self.spent, dim) / limit for dim, limit in self._limits().items() if limit
        ]
        return max(fractions, default=0.0)

    def extend(
        self,
        add_usd: float = 0.0,
        add_tokens: int = 0,
        add_llm_calls: int = 0,
        add_tool_calls: int = 0,
    ) -> None:
        """Raise limits after a human approved an extension."""
        b = self.budget
        update: dict[str, float | int | None] = {}
        if add_usd and b.max_cost_usd is not None:
            update["max_cost_usd"] = round(b.max_cost_usd + add_usd, 6)
        if add_tokens and b.max_tokens is not None:
            update["max_tokens"] = b.max_tokens + add_tokens
        if add_llm_calls and b.max_llm_calls is not None:
            update["max_llm_calls"] = b.max_llm_calls + add_llm_calls
        if add_tool_calls and b.max_tool_calls is not None:
            update["max_tool_calls"] = b.max_tool_calls + add_tool_calls
        self.budget = b.model_copy(update=update)
        if self.soft_fraction_used() < self.budget.soft_fraction:
            self.soft_alert_raised = False

    def carve(self, share: float) -> "Carve":
        """A slice of what is left, for a sub-agent: its budget and what to hold for it."""
        committed = self.committed()
        b = self.budget

        def left(limit: int | None, used: int) -> int | None:
            return None if limit is None else max(0, int((limit - used) * share))

        limits = self._limits()
        cost = left(limits[Dimension.COST], committed.cost_micros)
        tokens = left(limits[Dimension.TOKENS], committed.tokens)
        llm_calls = left(limits[Dimension.LLM_CALLS], committed.llm_calls)
        tool_calls = left(limits[Dimension.TOOL_CALLS], committed.tool_calls)
        override = BudgetOverride(
            max_cost_usd=None if cost is None else micros_to_usd(cost),
            max_tokens=tokens,
            max_llm_calls=llm_calls,
            max_tool_calls=tool_calls,
            max_iterations=b.max_iterations,
        )
        reservation = Usage(
            input_tokens=tokens or 0,
            cost_micros=cost or 0,
            llm_calls=llm_calls or 0,
            tool_calls=tool_calls or 0,
        )
        return Carve(override=override, reservation=reservation)

    def describe_overflow(self, dims: list[Dimension], bound: Usage) -> str:
        """A sentence a person can act on."""
        c = self.committed()
        parts = []
        for dim in dims:
            limit = self._limits()[dim]
            if dim is Dimension.COST and limit is not None:
                parts.append(
                    f"cost: spent+reserved ${micros_to_usd(c.cost_micros):.6f} + this call "
                    f"up to ${micros_to_usd(bound.cost_micros):.6f} > limit "
                    f"${micros_to_usd(limit):.6f}"
                )
            else:
                parts.append(
                    f"{dim.value}: {self._amount(c, dim)} + {self._amount(bound, dim)} > {limit}"
                )
        return "budget exceeded: " + "; ".join(parts)


class Carve(BaseModel):
    """A sub-agent's share: the budget it runs with and what the parent holds for it."""

    override: BudgetOverride
    reservation: Usage
