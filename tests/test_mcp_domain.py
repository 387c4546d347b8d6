"""How a listed MCP tool becomes a run's tool: annotations, overrides, names, schemas."""

from typing import Any

import pytest
from pydantic import ValidationError

from durable_agents._domain.mcp import (
    ONCE,
    McpListedTool,
    McpServerSpec,
    McpToolOverride,
    split_tool_name,
    tools_of,
)
from durable_agents._domain.mcp_schema import schema_problems
from durable_agents._domain.schema_check import check
from durable_agents._domain.tools import RetrySpec, SideEffect

pytestmark = pytest.mark.unit

SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


def _server(**fields: Any) -> McpServerSpec:
    return McpServerSpec(name="srv", command=["server"], **fields)


def _listed(name: str = "do", **hints: bool | None) -> McpListedTool:
    return McpListedTool(name=name, description=f"{name} things", input_schema=SCHEMA, **hints)


@pytest.mark.parametrize(
    ("hints", "effect", "approval"),
    [
        ({"read_only": True}, SideEffect.READ, False),
        ({"read_only": False, "destructive": False}, SideEffect.WRITE, False),
        ({"read_only": False, "destructive": True}, SideEffect.IRREVERSIBLE, True),
        ({}, SideEffect.IRREVERSIBLE, True),  # MCP's default: not read-only is destructive
    ],
)
def test_annotations_become_side_effects(
    hints: dict[str, bool], effect: SideEffect, approval: bool
) -> None:
    (spec,) = tools_of(_server(), [_listed("do", **hints)]).tools
    assert (spec.name, spec.side_effect, spec.needs_approval) == ("srv__do", effect, approval)
    assert spec.args_schema == SCHEMA


def test_only_safe_tools_are_retried_unless_the_server_honours_keys() -> None:
    tools = [
        _listed("r", read_only=True),
        _listed("i", destructive=False, idempotent=True),
        _listed("w", destructive=False),
    ]
    retries = {t.name: t.retry for t in tools_of(_server(), tools).tools}
    assert retries == {"srv__r": RetrySpec(), "srv__i": RetrySpec(), "srv__w": ONCE}
    keyed = tools_of(_server(honours_idempotency_key=True), tools).tools
    assert {t.retry for t in keyed} == {RetrySpec()}


def test_the_spec_overrides_win_over_the_server() -> None:
    server = _server(
        defaults=McpToolOverride(cost_usd=0.01, timeout_s=5.0),
        tools={
            "liar": McpToolOverride(side_effect=SideEffect.IRREVERSIBLE, task_queue="slow"),
            "gone": McpToolOverride(deny=True),
            "asks": McpToolOverride(requires_approval=True, timeout_s=60.0, description="mine"),
        },
    )
    found = tools_of(
        server, [_listed("liar", read_only=True), _listed("gone", read_only=True), _listed("asks")]
    )
    liar, asks = found.tools
    assert (liar.side_effect, liar.needs_approval, liar.task_queue) == (
        SideEffect.IRREVERSIBLE,
        True,
        "slow",
    )
    assert liar.retry == ONCE  # irreversible and not idempotent: one attempt
    assert (liar.cost_usd, liar.timeout_s, asks.timeout_s) == (0.01, 5.0, 60.0)
    assert asks.description == "mine" and asks.requires_approval is True
    assert found.left_out == []  # a denied tool is simply not offered


def test_names_that_cannot_be_tool_names_or_collide_are_left_out() -> None:
    found = tools_of(
        _server(),
        [_listed("Add-Note"), _listed("add_note"), _listed("x" * 70), _listed("ok.v2")],
    )
    assert [t.name for t in found.tools] == ["srv__add_note", "srv__ok_v2"]
    assert len(found.left_out) == 2
    assert "also called srv__add_note" in found.left_out[0]
    assert split_tool_name("srv__add_note") == ("srv", "add_note")
    assert split_tool_name("plain_tool") is None


def test_a_server_needs_exactly_one_transport_and_no_header_twice() -> None:
    with pytest.raises(ValidationError, match="either command"):
        McpServerSpec(name="a", command=["x"], url="http://127.0.0.1:1/mcp")
    with pytest.raises(ValidationError, match="either command"):
        McpServerSpec(name="a")
    with pytest.raises(ValidationError, match="headers set twice"):
        McpServerSpec(
            name="a",
            url="http://127.0.0.1:1/mcp",
            headers={"Authorization": "x"},
            secret_headers={"authorization": "TOKEN"},
        )
    with pytest.raises(ValidationError):
        McpServerSpec(name="has_underscore", command=["x"])  # it separates server and tool


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ([], "not a JSON object"),
        ({"type": "string"}, "root type"),
        ({"type": "object", "properties": {"q": True}}, "a schema must be an object"),
        ({"type": "object", "properties": {"q": {"type": "str"}}}, "is not a JSON type"),
        ({"type": "object", "properties": {"q": {"pattern": "("}}}, "does not compile"),
        ({"type": "object", "properties": {"q": {"pattern": "a" * 300}}}, "at most 256"),
        ({"type": "object", "properties": {"q": {"minLength": -1}}}, "must be a count"),
        ({"type": "object", "properties": {"q": {"maximum": "9"}}}, "must be a number"),
        ({"type": "object", "properties": {"q": {"$ref": "http://x/y"}}}, "only local"),
        ({"type": "object", "properties": {"q": {"$ref": "#/$defs/nope"}}}, "unknown definition"),
        (
            {"type": "object", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}},
            "refers to itself",
        ),
        ({"type": "object", "required": "q"}, "list of names"),
    ],
)
def test_unsafe_schemas_are_refused(schema: Any, problem: str) -> None:
    problems = schema_problems(schema, 16_384)
    assert problems and problem in problems[0]


def test_deep_and_huge_schemas_are_refused_and_accepted_ones_check_plans() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(40):
        deep = {"type": "object", "properties": {"n": deep}}
    assert "nested deeper" in schema_problems(deep, 1_000_000)[0]
    big = {"type": "object", "description": "x" * 20_000}
    assert "over the limit of 16384" in schema_problems(big, 16_384)[0]
    defs = {"type": "object", "$defs": {"A": {"type": "integer"}}, "properties": {}}
    defs["properties"] = {"n": {"$ref": "#/$defs/A"}, "s": {"anyOf": [{"type": "null"}]}}
    assert schema_problems(defs, 16_384) == []
    assert check({"n": "x"}, defs) == ["$.n: expected integer, got str"]


def test_a_server_name_means_one_server_across_a_workers_agents() -> None:
    from durable_agents._activities.catalog import Catalog
    from durable_agents._domain.spec import AgentSpec, ModelRouting

    def agent(name: str, server: McpServerSpec) -> AgentSpec:
        return AgentSpec(
            name=name, system_prompt="p", models=ModelRouting.single("m"), mcp_servers=[server]
        )

    catalog = Catalog({}, {})
    catalog.add(agent("one", _server()))
    catalog.add(agent("two", _server()))  # the same definition: shared
    with pytest.raises(ValueError, match="defines MCP server 'srv' differently"):
        catalog.add(agent("three", McpServerSpec(name="srv", command=["other"])))
    assert catalog.mcp_server("srv") == _server() and catalog.mcp_server("nope") is None


def test_a_runaway_output_is_cut_and_non_text_content_is_named() -> None:
    from mcp.types import CallToolResult, ImageContent, TextContent

    from durable_agents._activities.mcp_toolbox import MAX_OUTPUT_CHARS, observation_of

    huge = CallToolResult(content=[TextContent(type="text", text="z" * (MAX_OUTPUT_CHARS + 5))])
    text = observation_of(huge)
    assert len(text) < MAX_OUTPUT_CHARS + 50 and text.endswith("characters]")
    mixed = CallToolResult(
        content=[
            TextContent(type="text", text="caption"),
            ImageContent(type="image", data="aGk=", mime_type="image/png"),
        ]
    )
    assert observation_of(mixed) == "caption\n[image omitted]"
