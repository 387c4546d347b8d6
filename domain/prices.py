"""Model price table: USD per million input and output tokens.

The client resolves the prices of every model a spec can route to into the spec itself,
so a run's history records exactly what it was charged with. A model without a known
price is refused before the run starts: a run never has unaccounted spend.
"""

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field

from durable_agents._domain.money import token_cost_micros


class ModelPrice(BaseModel):
    """What one model costs, in USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)

    def cost_micros(self, input_tokens: int, output_tokens: int) -> int:
        """Cost of one call in micro-dollars, rounded up."""
        return token_cost_micros(input_tokens, self.input_per_million) + token_cost_micros(
            output_tokens, self.output_per_million
        )


DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    name: ModelPrice(input_per_million=i, output_per_million=o)
    for name, i, o in [
        ("gpt-4o", 2.50, 10.00),
        ("gpt-4o-mini", 0.15, 0.60),
        ("gpt-4.1", 2.00, 8.00),
        ("gpt-4.1-mini", 0.40, 1.60),
        ("gpt-4.1-nano", 0.10, 0.40),
        ("o4-mini", 1.10, 4.40),
        ("gpt-5", 1.25, 10.00),
        ("gpt-5-mini", 0.25, 2.00),
        ("gpt-5-nano", 0.05, 0.40),
        # The deterministic offline model runs in the worker and costs nothing.
        ("offline", 0.0, 0.0),
    ]
}


class UnpricedModelError(ValueError):
    """A spec routes to a model whose price is unknown."""

    def __init__(self, models: Iterable[str]) -> None:
        names = ", ".join(sorted(set(models)))
        super().__init__(
            f"no price known for model(s): {names}. Add them to a price file, e.g. "
            f'{{"{next(iter(sorted(set(models))))}": {{"input_per_million": 0.5, '
            '"output_per_million": 1.5}}, and point AGENT_PRICES_FILE at it '
            "(or pass prices= to start_run)."
        )
        self.models = sorted(set(models))


def resolve_prices(models: Iterable[str], table: Mapping[str, ModelPrice]) -> dict[str, ModelPrice]:
    """Return the prices of ``models`` from ``table``, or raise naming every unpriced one."""
    wanted = sorted(set(models))
    missing = [m for m in wanted if m not in table]
    if missing:
        raise UnpricedModelError(missing)
    return {m: table[m] for m in wanted}
