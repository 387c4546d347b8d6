"""The public API: what ``durable_agents`` exports, and only that, cheaply and without drift."""

import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

import durable_agents
import durable_agents.testing
from durable_agents import ToolContext, ToolOptions, ToolRegistry, ToolSpec

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent
# ToolSpec fields the decorator derives from the function instead of taking as options.
DERIVED = {"description", "args_schema"}


def test_every_export_resolves_and_all_lists_exactly_them() -> None:
    assert sorted(durable_agents.__all__) == sorted(durable_agents._EXPORTS)
    for name in durable_agents.__all__:
        assert getattr(durable_agents, name) is not None, name
    for name in durable_agents.testing.__all__:
        assert getattr(durable_agents.testing, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'Workflow'"):
        _ = durable_agents.Workflow


def test_importing_the_package_loads_no_client_worker_or_tool_code() -> None:
    # The workflow sandbox imports the package of every workflow module: it must stay small.
    code = (
        "import sys, durable_agents\n"
        "heavy = [m for m in sys.modules if m.startswith(('durable_agents._', 'openai', "
        "'temporalio'))]\n"
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def test_the_tool_decorator_takes_exactly_the_fields_of_tool_spec() -> None:
    options = set(typing.get_type_hints(ToolOptions))
    assert options == set(ToolSpec.model_fields) - DERIVED
    for name in options:  # same types, so the two cannot drift apart silently either
        assert typing.get_type_hints(ToolOptions)[name] == ToolSpec.model_fields[name].annotation


def test_every_tool_spec_option_reaches_the_spec() -> None:
    class Args(BaseModel):
        x: int

    registry = ToolRegistry()

    @registry.tool(name="queued", task_queue="slow-tools", heartbeat_timeout_s=5, cost_usd=0.01)
    async def fn(args: Args, ctx: ToolContext) -> int:
        """Doubles x."""
        return args.x * 2

    spec = registry.get("queued").spec
    assert (spec.task_queue, spec.heartbeat_timeout_s, spec.cost_usd) == ("slow-tools", 5, 0.01)


def test_an_unknown_tool_option_is_an_error_naming_the_known_ones() -> None:
    class Args(BaseModel):
        x: int

    registry = ToolRegistry()
    with pytest.raises(TypeError, match=r"unknown option queue;.*task_queue"):

        @registry.tool(queue="slow")  # type: ignore[call-arg]
        async def fn(args: Args, ctx: ToolContext) -> int:
            """Doubles x."""
            return args.x * 2
