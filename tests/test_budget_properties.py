"""Property tests of the promise "a run cannot overspend, even with parallel calls and crashes".

A state machine drives a `BudgetLedger` through reservations, settlements (repeated ones
too, as after a crash), releases, extensions and crashes (a JSON round trip, as Temporal
does across worker restarts), and checks the hard limits and the soft alert after every
step. The remaining properties cover the bounds the ledger is fed with: the cost bound of
a model call and the rounding of money.
"""

import contextlib
import json
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from durable_agents._domain.budget import (
    Budget,
    BudgetExceededError,
    BudgetLedger,
    BudgetOverride,
    Dimension,
    Usage,
)
from durable_agents._domain.llm import MESSAGE_OVERHEAD_TOKENS, Message, PayloadRef, call_cost_bound
from durable_agents._domain.money import token_cost_micros, usd_to_micros
from durable_agents._domain.prices import ModelPrice

pytestmark = pytest.mark.unit


def maybe(limit: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A hard limit, or (less often) None: unlimited."""
    return st.one_of(limit, limit, st.none())


usd_limits = st.one_of(
    st.integers(0, 600_000).map(lambda m: m / 1_000_000),  # whole micro-dollars
    st.floats(0, 1, allow_nan=False),  # any float, rounded down by the ledger
)
budgets = st.builds(
    Budget,
    max_cost_usd=maybe(usd_limits),
    max_tokens=maybe(st.integers(0, 3_000)),
    max_llm_calls=maybe(st.integers(0, 8)),
    max_tool_calls=maybe(st.integers(0, 8)),
    # Two decimals, so the exact comparison below is never a float tie.
    soft_fraction=st.sampled_from([0.5, 0.8, 1.0]) | st.integers(1, 100).map(lambda p: p / 100),
)
small_bounds = st.builds(
    Usage,
    input_tokens=st.integers(0, 400),
    output_tokens=st.integers(0, 400),
    cost_micros=st.integers(0, 150_000),
    llm_calls=st.integers(0, 1),
    tool_calls=st.integers(0, 1),
)
bounds = small_bounds | st.builds(
    Usage,
    input_tokens=st.integers(0, 4_000),
    output_tokens=st.integers(0, 4_000),
    cost_micros=st.integers(0, 1_500_000),
    llm_calls=st.integers(0, 2),
    tool_calls=st.integers(0, 2),
)


def amount(usage: Usage, dim: Dimension) -> int:
    return {
        Dimension.COST: usage.cost_micros,
        Dimension.TOKENS: usage.tokens,
        Dimension.LLM_CALLS: usage.llm_calls,
        Dimension.TOOL_CALLS: usage.tool_calls,
    }[dim]


def limits(budget: Budget) -> dict[Dimension, int | None]:
    cost = budget.max_cost_usd
    return {
        Dimension.COST: None if cost is None else usd_to_micros(cost),
        Dimension.TOKENS: budget.max_tokens,
        Dimension.LLM_CALLS: budget.max_llm_calls,
        Dimension.TOOL_CALLS: budget.max_tool_calls,
    }


def total(usages: Any) -> Usage:
    out = Usage()
    for u in usages:
        out = out + u
    return out


def at_most(data: st.DataObject, bound: Usage) -> Usage:
    """What a provider may bill for a call reserved at ``bound``: never more."""
    if data.draw(st.booleans()):
        return bound  # billed in full
    fields = ("input_tokens", "output_tokens", "cost_micros", "llm_calls", "tool_calls")
    parts = data.draw(st.tuples(*(st.integers(0, getattr(bound, f)) for f in fields)))
    return Usage(cache_hits=1, **dict(zip(fields, parts, strict=True)))


class LedgerMachine(RuleBasedStateMachine):
    """The real ledger next to a plain model of what it must hold."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = BudgetLedger(budget=Budget())
        self.held: dict[str, Usage] = {}  # open reservations
        self.settled: dict[str, Usage] = {}  # settled keys and what they counted
        self.spent = Usage()
        self.armed = True  # the soft alert may still fire
        self.seq = 0
        self.initial = Budget()
        self.log: list[tuple[Any, ...]] = []  # every call, for replay

    @initialize(budget=budgets)
    def start(self, budget: Budget) -> None:
        self.initial = budget
        self.ledger = BudgetLedger(budget=budget)

    def _over_soft(self) -> bool:
        sf = Fraction(str(self.ledger.budget.soft_fraction))
        return any(
            limit and Fraction(amount(self.spent, dim), limit) >= sf
            for dim, limit in limits(self.ledger.budget).items()
        )

    @rule(bound=bounds)
    def reserve(self, bound: Usage) -> None:
        self._reserve(bound)

    def _reserve(self, bound: Usage) -> str | None:
        self.seq += 1
        key = f"g0-{self.seq}-llm"
        before = self.ledger.model_dump()
        committed = self.spent + total(self.held.values())
        expected_over = [
            dim
            for dim, limit in limits(self.ledger.budget).items()
            if limit is not None and amount(committed, dim) + amount(bound, dim) > limit
        ]
        self.log.append(("reserve", key, bound))
        try:
            self.ledger.reserve(key, bound)
        except BudgetExceededError as err:
            assert err.dimensions == expected_over
            assert str(err).startswith("budget exceeded: ")
            assert self.ledger.model_dump() == before, "a refused reservation changed state"
            return None
        assert not expected_over, f"reservation accepted past {expected_over}"
        self.held[key] = bound
        return key

    @rule(calls=st.lists(small_bounds, min_size=1, max_size=6), data=st.data())
    def parallel_calls(self, calls: list[Usage], data: st.DataObject) -> None:
        """Several calls in flight at once, then billed in some order."""
        keys = [k for k in map(self._reserve, calls) if k is not None]
        self.never_overspent()
        for key in data.draw(st.permutations(keys)):
            self._settle(key, data)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def reserve_replayed(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.held)))
        before = self.ledger.model_dump()
        self.log.append(("reserve", key, self.held[key]))
        self.ledger.reserve(key, self.held[key])
        assert self.ledger.model_dump() == before

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        self._settle(data.draw(st.sampled_from(sorted(self.held))), data)

    def _settle(self, key: str, data: st.DataObject) -> None:
        actual = at_most(data, self.held.pop(key))
        self.log.append(("settle", key, actual))
        alert = self.ledger.settle(key, actual)
        self.settled[key] = actual
        self.spent = self.spent + actual
        over = self._over_soft()
        assert not alert or over, "soft alert while under the soft fraction of every limit"
        assert alert == (self.armed and over)
        self.armed = self.armed and not alert
        if alert and data.draw(st.booleans()):  # a person answers the alert with more budget
            self.extend_generously(data.draw(st.integers(1, 3)))

    @precondition(lambda self: self.settled)
    @rule(data=st.data())
    def settle_again(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.settled)))
        actual = data.draw(st.sampled_from([self.settled[key], Usage(llm_calls=1)]))
        before = self.ledger.model_dump()
        self.log.append(("settle", key, actual))
        assert self.ledger.settle(key, actual) is False
        assert self.ledger.model_dump() == before, "a repeated settlement counted twice"

    @rule(actual=bounds)
    def settle_unknown(self, actual: Usage) -> None:
        before = self.ledger.model_dump()
        self.log.append(("settle", "never-reserved", actual))
        assert self.ledger.settle("never-reserved", actual) is False
        assert self.ledger.model_dump() == before

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.held)))
        del self.held[key]
        self.log.append(("release", key))
        self.ledger.release(key)
        assert self.ledger.settle(key, Usage(llm_calls=1)) is False  # released: not billable

    @rule(
        add_usd=st.sampled_from([0.0, 0.000001, 0.05, 1.0]) | st.floats(0, 2, allow_nan=False),
        add_tokens=st.integers(0, 5_000),
        add_llm=st.integers(0, 3),
        add_tool=st.integers(0, 3),
    )
    def extend(self, add_usd: float, add_tokens: int, add_llm: int, add_tool: int) -> None:
        old = limits(self.ledger.budget)
        self.log.append(("extend", add_usd, add_tokens, add_llm, add_tool))
        self.ledger.extend(add_usd, add_tokens, add_llm, add_tool)
        new = limits(self.ledger.budget)
        for dim, added in [
            (Dimension.TOKENS, add_tokens),
            (Dimension.LLM_CALLS, add_llm),
            (Dimension.TOOL_CALLS, add_tool),
        ]:
            before = old[dim]
            assert new[dim] == (None if before is None else before + added)
        old_cost, new_cost = old[Dimension.COST], new[Dimension.COST]
        if old_cost is None:
            assert new_cost is None
        else:
            assert new_cost is not None
            assert new_cost >= old_cost, "an extension lowered the cost limit"
            assert new_cost <= old_cost + math.ceil(Decimal(str(add_usd)) * 1_000_000) + 1
        self.armed = self.armed or not self._over_soft()

    @precondition(lambda self: (self.ledger.budget.max_cost_usd or 0) < 1_000)
    @rule(times=st.integers(1, 3))
    def extend_generously(self, times: int) -> None:
        """An approver grants a multiple of the current limits: the alert re-arms."""
        b = self.ledger.budget
        self.extend(
            times * (b.max_cost_usd or 0.0),
            times * (b.max_tokens or 0),
            times * (b.max_llm_calls or 0),
            times * (b.max_tool_calls or 0),
        )

    @rule()
    def crash(self) -> None:
        """A worker restart: state crosses a JSON payload and is rebuilt from it."""
        payload = json.loads(json.dumps(self.ledger.model_dump(mode="json")))
        rebuilt = BudgetLedger.model_validate(payload)
        assert rebuilt == self.ledger
        replayed = BudgetLedger(budget=self.initial)
        for op, *args in self.log:
            with contextlib.suppress(BudgetExceededError):
                getattr(replayed, op)(*args)
        assert replayed == rebuilt, "replaying the same calls gave another state"
        self.ledger = rebuilt

    @invariant()
    def never_overspent(self) -> None:
        committed = self.ledger.committed()
        for dim, limit in limits(self.ledger.budget).items():
            if limit is not None:
                assert amount(self.ledger.spent, dim) <= limit, f"{dim} spent past its limit"
                assert amount(committed, dim) <= limit, f"{dim} committed past its limit"

    @invariant()
    def matches_model(self) -> None:
        assert self.ledger.spent == self.spent
        assert self.ledger.reservations == self.held
        assert self.ledger.soft_alert_raised is not self.armed


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


@settings(max_examples=200, deadline=None)
@given(budget=budgets, calls=st.lists(bounds, min_size=1, max_size=30))
def test_parallel_calls_billed_in_full_never_overspend(budget: Budget, calls: list[Usage]) -> None:
    """Every call in flight at once, then each billed its whole bound."""
    ledger = BudgetLedger(budget=budget)
    admitted = []
    for i, bound in enumerate(calls):
        try:
            ledger.reserve(f"c{i}", bound)
            admitted.append((f"c{i}", bound))
        except BudgetExceededError:
            pass
    for key, bound in admitted:
        ledger.settle(key, bound)
        ledger.settle(key, bound)  # the retry after a crash
    assert ledger.spent == total(b for _, b in admitted)
    for dim, limit in limits(budget).items():
        if limit is not None:
            assert amount(ledger.spent, dim) <= limit


prices = st.builds(
    ModelPrice,
    input_per_million=st.floats(0, 100, allow_nan=False),
    output_per_million=st.floats(0, 100, allow_nan=False),
)
messages = st.lists(
    st.builds(
        lambda role, text, atts: (role, text, atts),
        st.sampled_from(["system", "user", "assistant"]),
        st.text(max_size=60),
        st.lists(st.text(max_size=30), max_size=3),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(raw=messages, max_tokens=st.integers(1, 8_000), price=prices, data=st.data())
def test_call_cost_bound_covers_every_possible_bill(
    raw: list[tuple[str, str, list[str]]], max_tokens: int, price: ModelPrice, data: st.DataObject
) -> None:
    msgs = [
        Message(
            role=role,
            text=text,
            attachments=[
                PayloadRef(key=f"p{i}", size_bytes=len(a.encode())) for i, a in enumerate(atts)
            ],
        )
        for role, text, atts in raw
    ]
    bound = call_cost_bound(msgs, max_tokens, price)
    # The activity renders text and attachments joined by newlines; a token is >= 1 byte.
    rendered = sum(len("\n".join([t, *atts]).encode()) for _, t, atts in raw)
    assert bound.input_tokens >= rendered + MESSAGE_OVERHEAD_TOKENS * len(raw)
    assert bound.output_tokens == max_tokens
    assert bound.llm_calls == 1
    input_tokens = data.draw(st.integers(0, bound.input_tokens))
    output_tokens = data.draw(st.integers(0, max_tokens))
    assert price.cost_micros(input_tokens, output_tokens) <= bound.cost_micros
    assert price.cost_micros(bound.input_tokens, max_tokens) == bound.cost_micros


@settings(max_examples=200, deadline=None)
@given(usd=st.floats(0, 1e9, allow_nan=False) | st.integers(0, 10**8).map(lambda m: m / 1e6))
def test_a_limit_is_never_rounded_up(usd: float) -> None:
    exact = Decimal(str(usd)) * 1_000_000  # the amount the person wrote
    micros = usd_to_micros(usd)
    assert micros <= exact < micros + 1


@settings(max_examples=200, deadline=None)
@given(a=st.floats(0, 1e6, allow_nan=False), b=st.floats(0, 1e6, allow_nan=False))
def test_a_larger_limit_never_converts_smaller(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert usd_to_micros(lo) <= usd_to_micros(hi)


@settings(max_examples=200, deadline=None)
@given(tokens=st.integers(0, 10**9), price=st.floats(0, 1_000, allow_nan=False))
def test_a_cost_is_never_rounded_down(tokens: int, price: float) -> None:
    exact = Decimal(tokens) * Decimal(str(price))
    cost = token_cost_micros(tokens, price)
    assert cost - 1 < exact <= cost
    assert token_cost_micros(tokens + 1, price) >= cost  # more tokens never cost less


@pytest.mark.parametrize(
    ("usd", "micros"),
    [(0.1, 100_000), (0.3, 300_000), (1.0, 1_000_000), (0.0000019, 1), (2.675, 2_675_000)],
)
def test_usd_to_micros_examples(usd: float, micros: int) -> None:
    assert usd_to_micros(usd) == micros


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_non_finite_money_is_refused(value: float) -> None:
    """An infinite limit once made every reservation raise OverflowError (a stuck run)."""
    with pytest.raises(ValueError):
        Budget(max_cost_usd=value)
    with pytest.raises(ValueError):
        BudgetOverride(max_cost_usd=value)
    with pytest.raises(ValueError):
        ModelPrice(input_per_million=value, output_per_million=0)
