"""Resolving an agent name into a complete `AgentSpec` before a run starts.

The spec comes from the agent's plugin; prices come from the built-in table, overridden
by the JSON file named in ``AGENT_PRICES_FILE``. Every model the spec can route to must
have a price, or the run is refused here: a run never has unaccounted spend.
"""

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from activities.plugins import AgentPlugin, load_plugins, plugin_modules
from domain.prices import DEFAULT_PRICES, ModelPrice, resolve_prices
from domain.spec import AgentSpec

_PRICE_FILE = TypeAdapter(dict[str, ModelPrice])


class UnknownAgentError(LookupError):
    """The named agent is in no loaded plugin."""


def load_price_table(path: Path | None) -> dict[str, ModelPrice]:
    """The default prices updated with a user's JSON price file, if given."""
    table = dict(DEFAULT_PRICES)
    if path is not None:
        try:
            table.update(_PRICE_FILE.validate_json(path.read_bytes()))
        except (OSError, ValidationError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read price file {path}: {err}") from err
    return table


class Catalog:
    """The agents this client can start."""

    def __init__(self, plugins: Mapping[str, AgentPlugin], prices: Mapping[str, ModelPrice]):
        self._plugins = dict(plugins)
        self._prices = dict(prices)

    @classmethod
    def from_env(cls) -> "Catalog":
        """Plugins from ``AGENT_PLUGINS``, prices from ``AGENT_PRICES_FILE``."""
        price_file = os.environ.get("AGENT_PRICES_FILE")
        return cls(
            load_plugins(plugin_modules(os.environ.get("AGENT_PLUGINS"))),
            load_price_table(Path(price_file) if price_file else None),
        )

    def names(self) -> list[str]:
        """Agent names, sorted."""
        return sorted(self._plugins)

    def plugin(self, name: str) -> AgentPlugin:
        """The plugin of agent ``name``, or an error listing the known agents."""
        try:
            return self._plugins[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownAgentError(f"unknown agent '{name}'; known agents: {known}") from None

    def resolve(self, name: str, model: str | None = None) -> AgentSpec:
        """The full spec of agent ``name`` with the prices of every model it may call."""
        spec = self.plugin(name).build_spec()
        if model is not None:
            spec = spec.model_copy(update={"models": type(spec.models).single(model)})
        return self.priced(spec)

    def priced(self, spec: AgentSpec) -> AgentSpec:
        """``spec`` with prices filled in; raises `UnpricedModelError` for unknown models."""
        table = {**self._prices, **spec.prices}
        return spec.model_copy(update={"prices": resolve_prices(spec.models.all_models(), table)})
