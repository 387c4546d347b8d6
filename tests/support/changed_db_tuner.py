"""The db-tuner with one tool deliberately changed: ``create_index`` names its indexes
``ix_<table>_<columns>`` instead of ``idx_...``. Its spec (name, arguments, effects) is
unchanged: only what the tool does differs, as a careless refactoring would make it."""

from typing import Any

from durable_agents._activities.plugins import AgentPlugin
from durable_agents._activities.tool_api import ToolContext, ToolRegistry
from durable_agents._domain.tools import SideEffect
from examples.db_tuner import PLUGIN as ORIGINAL
from examples.db_tuner.args import CreateIndexArgs
from examples.db_tuner.tools import TOOLS

CHANGED = ToolRegistry(TOOLS.get(s.name) for s in TOOLS.specs() if s.name != "create_index")


@CHANGED.tool(side_effect=SideEffect.WRITE, resource_arg="table", timeout_s=120.0)
async def create_index(args: CreateIndexArgs, ctx: ToolContext) -> dict[str, Any]:
    """Create an index on table(columns), named ix_<table>_<columns> when unnamed."""
    name = args.name or f"ix_{args.table}_{'_'.join(args.columns)}"
    renamed = args.model_copy(update={"name": name})
    result: dict[str, Any] = await TOOLS.get("create_index").fn(renamed, ctx)
    return result


PLUGIN = AgentPlugin(
    name=ORIGINAL.name,
    build_spec=ORIGINAL.build_spec,
    tools=CHANGED,
    offline_policy=ORIGINAL.offline_policy,
    state_checks=ORIGINAL.state_checks,
)
