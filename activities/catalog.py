"""The agents a worker has loaded, and resolving a run's request into what it obeys.

The spec comes from the agent's plugin; prices come from the built-in table, overridden
by the JSON file named in ``AGENT_PRICES_FILE``. Every model the spec can route to must
have a price, or the run is refused here: a run never has unaccounted spend. A request's
overrides are checked against the spec's bounds. A worker without a model API key routes
every run to the offline model, priced at $0.
"""

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from durable_agents._activities.plugins import AgentPlugin, load_plugins, plugin_modules
from durable_agents._domain.budget import BudgetOverride
from durable_agents._domain.mcp import McpServerSpec
from durable_agents._domain.prices import DEFAULT_PRICES, ModelPrice, resolve_prices
from durable_agents._domain.spec import AgentSpec

_PRICE_FILE = TypeAdapter(dict[str, ModelPrice])


class UnknownAgentError(LookupError):
    """The named agent is in no loaded plugin."""


class RequestRefusedError(ValueError):
    """A run's request cannot be resolved; the message says why and how to fix it."""


def load_price_table(path: Path | None) -> dict[str, ModelPrice]:
    """The default prices updated with a user's JSON price file, if given."""
    table = dict(DEFAULT_PRICES)
    if path is not None:
        try:
            table.update(_PRICE_FILE.validate_json(path.read_bytes()))
        except (OSError, ValidationError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read price file {path}: {err}") from err
    return table


OFFLINE_MODEL = "offline"
_SPEC_FILE = TypeAdapter(list[AgentSpec])


def load_agent_specs(path: Path) -> list[AgentSpec]:
    """Agent specs from a JSON file (a list), for agents defined as data."""
    try:
        return _SPEC_FILE.validate_json(path.read_bytes())
    except (OSError, ValidationError) as err:
        raise ValueError(f"cannot read agents file {path}: {err}") from err


def write_agent_specs(path: Path, specs: list[AgentSpec]) -> None:
    """Write specs for a worker's ``AGENT_EXTRA_AGENTS_FILE``."""
    path.write_bytes(_SPEC_FILE.dump_json(specs))


class Catalog:
    """The agents this worker can run."""

    def __init__(
        self,
        plugins: Mapping[str, AgentPlugin],
        prices: Mapping[str, ModelPrice],
        *,
        offline: bool = False,
    ):
        self._plugins = dict(plugins)
        self._prices = dict(prices)
        self._extra: dict[str, AgentSpec] = {}
        self.offline = offline

    def add(self, spec: AgentSpec) -> str:
        """Load one more agent (a variant of a plugin's, say); returns its name.

        Its tools must be tools a loaded plugin provides, since the worker runs them.
        """
        known = {t.name for p in self._plugins.values() for t in p.tools.specs()}
        missing = sorted(t.name for t in spec.tools if t.name not in known)
        if missing:
            raise ValueError(f"no loaded plugin provides the tools: {', '.join(missing)}")
        for server in spec.mcp_servers:
            known_server = self.mcp_server(server.name, besides=spec.name)
            if known_server is not None and known_server != server:
                raise ValueError(
                    f"another agent of this worker defines MCP server '{server.name}' "
                    "differently; give this one another name"
                )
        self._extra[spec.name] = spec
        return spec.name

    @classmethod
    def from_env(cls) -> "Catalog":
        """Plugins from ``AGENT_PLUGINS``, prices from ``AGENT_PRICES_FILE``."""
        price_file = os.environ.get("AGENT_PRICES_FILE")
        return cls(
            load_plugins(plugin_modules(os.environ.get("AGENT_PLUGINS"))),
            load_price_table(Path(price_file) if price_file else None),
        )

    def mcp_server(self, name: str, besides: str = "") -> McpServerSpec | None:
        """The MCP server ``name`` as an agent of this worker defines it (not ``besides``).

        Runs call MCP tools by their names alone, so a server name means one server
        across the worker's agents (`add` refuses a second, different definition).
        """
        for agent in self.names():
            if agent == besides:
                continue
            for server in self.spec(agent).mcp_servers:
                if server.name == name:
                    return server
        return None

    def python_tools(self) -> dict[str, str]:
        """Every Python tool this worker runs -> the plugin (agent) that registers it."""
        owners: dict[str, str] = {}
        for name, plugin in sorted(self._plugins.items()):
            for tool in plugin.tools.specs():
                owners.setdefault(tool.name, name)
        return owners

    def names(self) -> list[str]:
        """Agent names, sorted."""
        return sorted({*self._plugins, *self._extra})

    def spec(self, name: str) -> AgentSpec:
        """The spec of agent ``name`` as loaded (before overrides and prices)."""
        if name in self._extra:
            return self._extra[name]
        return self.plugin(name).build_spec()

    def resolve_request(
        self, name: str, budget: BudgetOverride | None, model: str | None
    ) -> AgentSpec:
        """The priced spec a request for ``name`` runs with; `RequestRefusedError` says why."""
        try:
            spec = self.spec(name)
        except UnknownAgentError as err:
            raise RequestRefusedError(str(err)) from None
        problems = spec.bounds.problems(budget, model)
        if problems:
            raise RequestRefusedError("; ".join(problems))
        if model is not None:
            spec = spec.model_copy(update={"models": type(spec.models).single(model)})
        if self.offline:
            spec = spec.model_copy(update={"models": type(spec.models).single(OFFLINE_MODEL)})
        try:
            return self.priced(spec)
        except ValueError as err:
            raise RequestRefusedError(str(err)) from None

    def plugin(self, name: str) -> AgentPlugin:
        """The plugin of agent ``name``, or an error listing the known agents."""
        try:
            return self._plugins[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownAgentError(
                f"unknown agent '{name}'; this worker has loaded: {known}"
            ) from None

    def resolve(self, name: str, model: str | None = None) -> AgentSpec:
        """The full spec of agent ``name`` with the prices of every model it may call."""
        spec = self.spec(name)
        if model is not None:
            spec = spec.model_copy(update={"models": type(spec.models).single(model)})
        return self.priced(spec)

    def priced(self, spec: AgentSpec) -> AgentSpec:
        """``spec`` with prices filled in; raises `UnpricedModelError` for unknown models."""
        table = {**self._prices, **spec.prices}
        return spec.model_copy(update={"prices": resolve_prices(spec.models.all_models(), table)})
