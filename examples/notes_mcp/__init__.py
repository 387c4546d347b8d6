"""The notes agent: every tool comes from an MCP server the project ships (``server.py``).

The worker starts the server as a stdio child process, lists its tools when each run
starts, and calls them as the run's tools (approval for the destructive one).
``PLUGIN`` is what workers load (``AGENT_PLUGINS=examples.notes_mcp``).
"""

from durable_agents import AgentPlugin, ToolRegistry
from examples.notes_mcp.offline import offline_policy
from examples.notes_mcp.spec import build_spec

PLUGIN = AgentPlugin(
    name="notes-mcp", build_spec=build_spec, tools=ToolRegistry(), offline_policy=offline_policy
)

__all__ = ["PLUGIN"]
