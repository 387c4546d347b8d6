"""Spec overrides of eval variants, pure: what they may change, how they merge, and the
one-line errors for what does not fit."""

import pytest

from durable_agents._domain.spec import AgentSpec, ModelRouting
from durable_agents._domain.spec_overrides import (
    apply_overrides,
    overridable_fields,
    override_problems,
)
from durable_agents._domain.tools import SideEffect, ToolSpec

pytestmark = pytest.mark.unit


def _spec() -> AgentSpec:
    return AgentSpec(
        name="tuner",
        system_prompt="You tune.",
        tools=[
            ToolSpec(name="explain", description="explain a query"),
            ToolSpec(name="create_index", description="index", side_effect=SideEffect.WRITE),
        ],
        models=ModelRouting.single("m1"),
    )


def test_objects_merge_field_by_field_and_values_replace() -> None:
    patched = apply_overrides(
        _spec(),
        {
            "system_prompt": "You tune, carefully.",
            "models": {"plan": {"model": "m2", "temperature": 0.5}},
            "limits": {"max_replans": 1},
            "budget": {"max_iterations": 4},
            "tools": {"create_index": {"requires_approval": True}},
        },
    )
    assert patched.system_prompt == "You tune, carefully."
    assert (patched.models.plan.model, patched.models.plan.temperature) == ("m2", 0.5)
    assert patched.models.plan.max_tokens == 1024  # the route's other fields kept
    assert patched.models.execute.model == "m1"  # other purposes untouched
    assert patched.limits.max_replans == 1 and patched.limits.max_repeats == 3
    assert patched.budget.max_iterations == 4 and patched.budget.max_cost_usd == 1.0
    index = patched.tool("create_index")
    assert index is not None and index.needs_approval and index.side_effect is SideEffect.WRITE
    assert _spec().tool("create_index") == ToolSpec(
        name="create_index", description="index", side_effect=SideEffect.WRITE
    )  # the original is not changed


def test_denied_tools_are_gone_and_the_rest_keep_their_order() -> None:
    patched = apply_overrides(_spec(), {"deny_tools": ["create_index"]})
    assert [t.name for t in patched.tools] == ["explain"]
    assert apply_overrides(_spec(), {}) == _spec()


def test_what_a_variant_may_not_change_is_named() -> None:
    assert "name" not in overridable_fields() and "mcp_servers" not in overridable_fields()
    (problem,) = override_problems("tuner", {"name": "other"})
    assert problem.startswith("'tuner' has no field 'name' a variant may override; the fields:")
    (problem,) = override_problems("tuner", {"models": {"plan": {"modle": "x"}}})
    assert problem == (
        "'tuner' has no field 'models.plan.modle'; the fields of models.plan: cache, "
        "fallbacks, max_tokens, model, structured_outputs, temperature"
    )
    (problem,) = override_problems("tuner", {"tools": {"explain": {"timeout": 3}}})
    assert "'tools.explain.timeout'" in problem and "timeout_s" in problem
    assert override_problems("tuner", {"deny_tools": "explain"}) == [
        "'tuner': deny_tools is a list of tool names"
    ]


@pytest.mark.parametrize(
    ("patch", "says"),
    [
        ({"deny_tools": ["drop"]}, "'tuner' has no tool drop; its tools: explain, create_index"),
        ({"tools": {"drop": {}}}, "'tuner' has no tool drop"),
        ({"limits": {"max_replans": -1}}, "'tuner' override: limits.max_replans: Input should"),
        ({"system_prompt": ""}, "'tuner' override: system_prompt: String should have at least"),
        ({"models": {"plan": "m2"}}, "'tuner' override: models.plan: Input should be"),
    ],
)
def test_a_patch_that_does_not_fit_is_refused_with_the_reason(
    patch: dict[str, object], says: str
) -> None:
    with pytest.raises(ValueError) as raised:
        apply_overrides(_spec(), patch)
    assert str(raised.value).startswith(says), raised.value
