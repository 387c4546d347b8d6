"""Agent plugins: how an agent brings its spec, its tools and its offline policy.

A plugin is a module with a ``PLUGIN`` attribute (an `AgentPlugin`). Workers load the
plugins named in ``AGENT_PLUGINS`` (comma-separated module paths), and nothing else: the
examples in the repository's ``examples/`` are plugins like any other and are loaded only
when named. Workers register the plugins' tools and hand their offline policies to the
offline model. A plugin may also bring state checks for evaluations (`StateCheck`).
"""

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from durable_agents._activities.offline_model import OfflinePolicy
from durable_agents._activities.tool_api import ToolRegistry
from durable_agents._domain.spec import AgentSpec

StateCheck = Callable[[Path, str], list[str]]
"""A check of the state an agent's runs leave behind (``agentctl eval``): given the
worker's data directory and the argument after ``NAME:`` in the dataset, the problems
found (empty: it holds)."""

EXAMPLE_PLUGINS = "examples.db_tuner,examples.file_editor"


@dataclass(frozen=True)
class AgentPlugin:
    """One agent: a spec factory, its tools, and how the offline model plays it."""

    name: str
    build_spec: Callable[[], AgentSpec]
    tools: ToolRegistry
    offline_policy: OfflinePolicy | None = None
    state_checks: Mapping[str, StateCheck] = field(default_factory=dict)


class PluginError(ImportError):
    """A plugin module is missing or malformed."""


def plugin_modules(configured: str | None) -> list[str]:
    """The plugin modules of a comma-separated ``AGENT_PLUGINS`` value; none is an error."""
    names: list[str] = []
    for name in (configured or "").split(","):
        if name.strip() and name.strip() not in names:
            names.append(name.strip())
    if not names:
        raise PluginError(
            "no agent plugins configured: set AGENT_PLUGINS to your plugin modules, "
            f"comma-separated (the repository's examples: AGENT_PLUGINS={EXAMPLE_PLUGINS})"
        )
    return names


def load_plugins(modules: Iterable[str]) -> dict[str, AgentPlugin]:
    """Import each module and collect its ``PLUGIN``; errors name the module and the fix."""
    plugins: dict[str, AgentPlugin] = {}
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise PluginError(
                f"cannot import agent plugin '{module_name}': {err}. Check AGENT_PLUGINS."
            ) from err
        plugin = getattr(module, "PLUGIN", None)
        if not isinstance(plugin, AgentPlugin):
            raise PluginError(f"module '{module_name}' has no PLUGIN = AgentPlugin(...)")
        if plugin.name in plugins:
            raise PluginError(f"two plugins define the agent '{plugin.name}'")
        plugins[plugin.name] = plugin
    return plugins


def merged_tools(plugins: Iterable[AgentPlugin]) -> ToolRegistry:
    """One registry with the tools of every plugin (a tool shared by name counts once)."""
    registry = ToolRegistry()
    for plugin in plugins:
        for spec in plugin.tools.specs():
            if spec.name not in registry:
                registry.add(plugin.tools.get(spec.name))
    return registry
