"""A plugin whose Python tool is named like an MCP tool (``t__look``), for the tests that
check the worker refuses an MCP tool named like a Python tool of another plugin."""

from pydantic import BaseModel

from durable_agents._activities.plugins import AgentPlugin
from durable_agents._activities.tool_api import ToolContext, ToolRegistry
from durable_agents._domain.spec import AgentSpec
from durable_agents._domain.tools import SideEffect
from tests.support import test_agent

TOOLS = ToolRegistry()
CALLED: list[str] = []  # what the Python tool was asked (in this process)


class LookArgs(BaseModel):
    q: str = ""


@TOOLS.tool(side_effect=SideEffect.READ)
async def t__look(args: LookArgs, ctx: ToolContext) -> dict[str, str]:
    """Answers with what it was asked (and remembers it)."""
    CALLED.append(args.q)
    return {"python": args.q}


def build_spec() -> AgentSpec:
    return test_agent.build_spec().model_copy(
        update={"name": "clash-agent", "tools": TOOLS.specs()}
    )


PLUGIN = AgentPlugin(name="clash-agent", build_spec=build_spec, tools=TOOLS)
