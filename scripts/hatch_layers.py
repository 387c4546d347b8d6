"""Hatch build hook: maps the repository's layer folders into the one package.

The repository keeps a folder per layer at its top (domain/, workflows/, ...); installed,
they are private subpackages of ``durable_agents`` (``durable_agents._domain``, ...).
``src/durable_agents`` links the same names for the checkout and the editable install,
so a regular wheel copies each folder under its package name and an editable one only
puts ``src/`` on the path (no stale copies in site-packages).
"""

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# folder in the repository -> path inside the wheel
LAYERS = {
    "domain": "durable_agents/_domain",
    "infra": "durable_agents/_infra",
    "workflows": "durable_agents/_workflows",
    "activities": "durable_agents/_activities",
    "workers": "durable_agents/_workers",
    "client": "durable_agents/_client",
    "cli": "durable_agents/_cli",
    "devtools": "durable_agents/_devtools",
    "testing": "durable_agents/testing",
}


class LayersHook(BuildHookInterface):  # type: ignore[type-arg]
    """Adds the layer folders to a standard wheel; an editable one links them in src/."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "standard":
            build_data["force_include"].update(LAYERS)
