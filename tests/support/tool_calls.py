"""Calling an example's tools directly, the way the ``invoke_tool`` activity calls them."""

from pathlib import Path
from typing import Any

from durable_agents._activities.tool_api import ToolContext, ToolRegistry


def tool_context(data_dir: Path, key: str = "wf/1") -> ToolContext:
    """The context of one tool call under idempotency key ``key``."""
    workflow_id = key.split("/", 1)[0]
    return ToolContext(idempotency_key=key, workflow_id=workflow_id, attempt=1, data_dir=data_dir)


async def call_tool(
    registry: ToolRegistry, name: str, data_dir: Path, key: str = "wf/1", /, **args: Any
) -> Any:
    """Validate ``args`` with the tool's own model and run it, as the activity would."""
    tool = registry.get(name)
    return await tool.fn(tool.args_model.model_validate(args), tool_context(data_dir, key))
