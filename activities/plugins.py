"""Agent plugins: how an agent brings its spec, its tools and its offline policy.

A plugin is a module with a ``PLUGIN`` attribute (an `AgentPlugin`). Workers load the
plugins named in ``AGENT_PLUGINS`` (comma-separated module paths) after the built-in
examples, register their tools, and hand their offline policies to the offline model.
The client loads the same modules to resolve an agent name into a full `AgentSpec`.
"""

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from activities.offline_model import OfflinePolicy
from activities.tool_api import ToolRegistry
from domain.spec import AgentSpec

DEFAULT_PLUGIN_MODULES = ("examples.db_tuner", "examples.file_editor")


@dataclass(frozen=True)
class AgentPlugin:
    """One agent: a spec factory, its tools, and how the offline model plays it."""

    name: str
    build_spec: Callable[[], AgentSpec]
    tools: ToolRegistry
    offline_policy: OfflinePolicy | None = None


class PluginError(ImportError):
    """A plugin module is missing or malformed."""


def plugin_modules(extra: str | None) -> list[str]:
    """The built-in plugin modules plus those in a comma-separated ``extra`` list."""
    names = list(DEFAULT_PLUGIN_MODULES)
    for name in (extra or "").split(","):
        if name.strip() and name.strip() not in names:
            names.append(name.strip())
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
