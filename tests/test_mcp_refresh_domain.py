"""`apply_refresh`: a refreshed MCP list replaces the run's MCP tools and nothing else.
Also: a plan that does not ask for a refresh dumps as plans did before."""

from durable_agents._domain.mcp import McpServerSpec
from durable_agents._domain.mcp_refresh import McpToolList, apply_refresh
from durable_agents._domain.plan import Plan, Task
from durable_agents._domain.spec import AgentSpec
from durable_agents._domain.structured import plan_json_schema, strict_problems
from durable_agents._domain.tools import SideEffect, ToolSpec
from tests.support import test_agent


def _tool(name: str, side_effect: SideEffect = SideEffect.READ) -> ToolSpec:
    return ToolSpec(name=name, description=f"the {name} tool", side_effect=side_effect)


def _spec(*tools: ToolSpec, max_tools: int = 64) -> AgentSpec:
    server = McpServerSpec(name="t", command=["true"], max_tools=max_tools)
    return test_agent.build_spec().model_copy(
        update={"tools": list(tools), "mcp_servers": [server]}
    )


def test_own_tools_stay_and_mcp_tools_are_replaced() -> None:
    own = _tool("t__own", SideEffect.IRREVERSIBLE)  # a Python tool with an MCP-like name
    spec = _spec(own, _tool("t__old"))
    listed = McpToolList(tools=[_tool("t__new"), _tool("t__own", SideEffect.READ)])
    refreshed = apply_refresh(spec, ["t__old"], listed)
    assert [t.name for t in refreshed.spec.tools] == ["t__own", "t__new"]
    assert refreshed.spec.tool("t__own") == own  # never changed by a server's listing
    assert (refreshed.added, refreshed.removed) == (["t__new"], ["t__old"])
    assert refreshed.mcp_tools == ["t__new"]
    assert refreshed.summary() == "added: t__new; removed: t__old"


def test_tools_of_other_servers_or_none_are_ignored() -> None:
    spec = _spec()
    listed = McpToolList(tools=[_tool("other__x"), _tool("plain"), _tool("t__ok"), _tool("t__ok")])
    refreshed = apply_refresh(spec, [], listed)
    assert [t.name for t in refreshed.spec.tools] == ["t__ok"]


def test_a_server_gets_max_tools_at_most() -> None:
    spec = _spec(max_tools=2)
    listed = McpToolList(tools=[_tool(f"t__n{i}") for i in range(5)])
    assert apply_refresh(spec, [], listed).mcp_tools == ["t__n0", "t__n1"]


def test_a_plan_without_refresh_dumps_as_before() -> None:
    plan = Plan(tasks=[Task(id="a", tool="x")], rationale="r")
    assert "refresh_tools" not in plan.model_dump(mode="json")
    assert "refresh_tools" not in plan.model_dump_json()
    asked = plan.model_copy(update={"refresh_tools": True})
    assert asked.model_dump(mode="json")["refresh_tools"] is True
    assert Plan.model_validate_json(asked.model_dump_json()).refresh_tools


def test_the_strict_plan_schema_of_an_mcp_agent_can_ask_for_a_refresh() -> None:
    args = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    tool = _tool("t__a").model_copy(update={"args_schema": args})
    plain = plan_json_schema([tool])
    refreshable = plan_json_schema([tool], refreshable=True)
    assert plain is not None and refreshable is not None
    assert "refresh_tools" not in plain["schema"]["properties"]
    schema = refreshable["schema"]
    assert schema["properties"]["refresh_tools"] == {"type": "boolean"}
    assert "refresh_tools" in schema["required"] and strict_problems(schema) == []
