"""Helpers that script the planner's replies."""

from typing import Any

from durable_agents.testing.scripted_model import Reply


def tool_task(
    task_id: str,
    tool: str,
    depends_on: list[str] | None = None,
    critical: bool = False,
    **args: Any,
) -> dict[str, Any]:
    """One tool task in the planner's JSON format."""
    return {
        "id": task_id,
        "kind": "tool",
        "tool": tool,
        "args": args,
        "depends_on": depends_on or [],
        "critical": critical,
    }


def plan_reply(*tasks: dict[str, Any], done: bool = True, rationale: str = "test") -> Reply:
    """A planner reply proposing ``tasks``."""
    return Reply.json({"rationale": rationale, "done": done, "tasks": list(tasks)})
