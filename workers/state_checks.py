"""The state checks of the plugins a worker loads, for ``agentctl eval``.

State checks are plugin code (they read what an agent's tools changed), so the eval
loads the same plugins the workers do (``AGENT_PLUGINS``) to run them.
"""

from pathlib import Path

from durable_agents._activities.plugins import AgentPlugin, load_plugins, plugin_modules


class PluginStateChecks:
    """Runs ``NAME[:ARG]`` checks of an agent's plugin on a worker data directory."""

    def __init__(self, plugins: dict[str, AgentPlugin]) -> None:
        self._plugins = plugins

    @classmethod
    def load(cls, configured: str | None) -> "PluginStateChecks":
        """The checks of the plugins in ``configured`` (an ``AGENT_PLUGINS`` value)."""
        return cls(load_plugins(plugin_modules(configured)))

    def __call__(self, agent: str, check: str, data_dir: Path) -> list[str]:
        """The problems ``check`` finds; `LookupError` naming the checks there are."""
        name, _, arg = check.partition(":")
        plugin = self._plugins.get(agent)
        fn = plugin.state_checks.get(name) if plugin else None
        if fn is None:
            known = ", ".join(sorted(plugin.state_checks)) if plugin else ""
            raise LookupError(
                f"no state check '{name}' for agent '{agent}'; "
                + (f"its checks: {known}" if known else "its plugin provides none")
            )
        return fn(data_dir, arg)
