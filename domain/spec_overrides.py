"""Spec overrides of an eval variant: an agent's spec changed for the variant's runs alone.

A request can never carry a spec (what a run obeys comes from the worker), so a variant
that changes a prompt, a model route, the tools or the limits is run by a worker of the
eval's own, whose catalog holds the changed spec; the variant's runs go to that worker's
private task queue. An override is a JSON merge patch of the agent's spec, per agent::

    {"db-tuner": {"system_prompt": "You are terse.",
                  "models": {"plan": {"model": "gpt-4o", "temperature": 0.2}},
                  "limits": {"max_replans": 1}, "budget": {"max_iterations": 4},
                  "tools": {"create_index": {"requires_approval": true}},
                  "deny_tools": ["drop_index"]}}

Objects merge field by field, anything else replaces the value; ``tools`` patches the
named tools and ``deny_tools`` takes tools away (the planner never sees them). Field
names are checked when the dataset loads (`override_problems`); values, agent and tool
names when the eval applies the patch to the worker's spec (`apply_overrides`), before
any run starts.
"""

from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from durable_agents._domain.spec import AgentSpec
from durable_agents._domain.tools import ToolSpec

DENY_TOOLS = "deny_tools"
TOOLS = "tools"
# The agent's identity (its runs name it) and its MCP servers (processes the worker
# starts) are not a variant's to change.
FIXED_FIELDS = frozenset({"name", "mcp_servers"})
SpecPatch = dict[str, Any]


def overridable_fields() -> list[str]:
    """The top-level keys an agent's override may hold, sorted."""
    fields = set(AgentSpec.model_fields) - FIXED_FIELDS
    return sorted({*fields, DENY_TOOLS})


def override_problems(agent: str, patch: SpecPatch) -> list[str]:
    """Unknown fields of ``patch`` (one line each, naming the valid ones); empty: none."""
    found: list[str] = []
    for key, value in patch.items():
        if key not in overridable_fields():
            found.append(
                f"'{agent}' has no field '{key}' a variant may override; "
                f"the fields: {', '.join(overridable_fields())}"
            )
        elif key == DENY_TOOLS:
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                found.append(f"'{agent}': {DENY_TOOLS} is a list of tool names")
        elif key == TOOLS:
            found += _tool_problems(agent, value)
        else:
            found += _nested_problems(agent, key, AgentSpec.model_fields[key].annotation, value)
    return found


def _tool_problems(agent: str, value: Any) -> list[str]:
    if not isinstance(value, dict):
        return [f"'{agent}': {TOOLS} maps tool names to the fields to change: {{NAME: {{...}}}}"]
    found: list[str] = []
    for tool, patch in value.items():
        found += _nested_problems(agent, f"{TOOLS}.{tool}", ToolSpec, patch)
    return found


def _nested_problems(agent: str, path: str, annotation: Any, value: Any) -> list[str]:
    model = _model_of(annotation)
    if model is None or not isinstance(value, dict):
        return []  # a plain value: AgentSpec checks it when the patch is applied
    found: list[str] = []
    for key, inner in value.items():
        if key not in model.model_fields:
            found.append(
                f"'{agent}' has no field '{path}.{key}'; the fields of {path}: "
                + ", ".join(sorted(model.model_fields))
            )
        else:
            found += _nested_problems(
                agent, f"{path}.{key}", model.model_fields[key].annotation, inner
            )
    return found


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (through ``X | None``), if any."""
    if get_origin(annotation) in (Union, UnionType):
        models = [m for m in map(_model_of, get_args(annotation)) if m is not None]
        return models[0] if len(models) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def apply_overrides(spec: AgentSpec, patch: SpecPatch) -> AgentSpec:
    """``spec`` with ``patch`` merged in; `ValueError` names what does not fit."""
    problems = override_problems(spec.name, patch)
    if problems:
        raise ValueError(problems[0])
    tools = spec.tool_map()
    named = [*patch.get(DENY_TOOLS, []), *patch.get(TOOLS, {})]
    unknown = sorted({t for t in named if t not in tools})
    if unknown:
        raise ValueError(
            f"'{spec.name}' has no tool {', '.join(unknown)}; its tools: {', '.join(tools)}"
        )
    merged = _merge(spec.model_dump(mode="json"), _spec_fields(patch))
    merged[TOOLS] = [
        _merge(tool.model_dump(mode="json"), patch.get(TOOLS, {}).get(name, {}))
        for name, tool in tools.items()
        if name not in patch.get(DENY_TOOLS, [])
    ]
    try:
        return AgentSpec.model_validate(merged)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        raise ValueError(f"'{spec.name}' override: {where}: {first['msg']}") from None


def _spec_fields(patch: SpecPatch) -> SpecPatch:
    return {k: v for k, v in patch.items() if k not in (TOOLS, DENY_TOOLS)}


def _merge(base: Any, patch: Any) -> Any:
    """JSON merge: objects field by field, anything else replaced."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return patch
    merged = dict(base)
    for key, value in patch.items():
        merged[key] = _merge(base.get(key), value)
    return merged
