"""JSON schemas for structured outputs: the plan and the evaluation, in strict form.

Where a model's route says its endpoint supports structured outputs
(`ModelRoute.structured_outputs`), plan and evaluation calls send
``response_format={"type": "json_schema", "json_schema": {..., "strict": true}}``, so the
endpoint itself holds the reply to the schema and a malformed plan costs no replan.
Strict mode has rules of its own (OpenAI's): every object lists all its properties as
required and forbids others, optional ones become nullable, and free-form objects are not
allowed. A tool whose argument schema cannot be put in that form (free-form arguments)
makes the plan call fall back to ``json_object``, as before; the plan is still validated
in the workflow either way. Replies under a strict schema carry ``null`` for the optional
arguments left out; the ``plan`` activity drops them (`drop_nulls`).
"""

import copy
from typing import Any

from durable_agents._domain.evaluation import Judgement
from durable_agents._domain.plan import TaskKind
from durable_agents._domain.tools import ToolSpec

PLAN_SCHEMA_NAME = "plan"
EVALUATION_SCHEMA_NAME = "evaluation"
_EMPTY_ARGS = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}


class NotStrict(ValueError):  # noqa: N818 - a reason, raised and caught here
    """A schema strict mode cannot express."""


def evaluation_json_schema() -> dict[str, Any]:
    """The ``json_schema`` object of an evaluation call."""
    schema = _object(
        {
            "judgement": {"type": "string", "enum": [j.value for j in Judgement]},
            "reason": {"type": "string"},
        }
    )
    return {"name": EVALUATION_SCHEMA_NAME, "schema": schema, "strict": True}


def plan_json_schema(tools: list[ToolSpec], refreshable: bool = False) -> dict[str, Any] | None:
    """The ``json_schema`` object of a plan call for ``tools``; None when one of their
    argument schemas cannot be strict (the call then asks for ``json_object``).
    ``refreshable``: the plan may ask for the MCP tool list again (``refresh_tools``)."""
    defs: dict[str, Any] = {}
    try:
        args = [_hoisted(tool, defs) for tool in tools]
    except NotStrict:
        return None
    names = [t.name for t in tools]
    task = _object(
        {
            "id": {"type": "string"},
            "kind": {"type": "string", "enum": [k.value for k in TaskKind]},
            "tool": {"anyOf": [{"type": "string", "enum": names}, {"type": "null"}]}
            if names
            else {"type": "null"},
            "args": {"anyOf": [*args, _EMPTY_ARGS]},
            "prompt": {"type": ["string", "null"]},
            "depends_on": {"type": "array", "items": {"type": "string"}},
            "critical": {"type": "boolean"},
            "success_criteria": {"type": "array", "items": {"type": "string"}},
            "confidence": {"type": "number"},
        }
    )
    schema = _object(
        {
            "rationale": {"type": "string"},
            "done": {"type": "boolean"},
            "tasks": {"type": "array", "items": task},
            **({"refresh_tools": {"type": "boolean"}} if refreshable else {}),
        }
    )
    if defs:
        schema["$defs"] = defs
    return {"name": PLAN_SCHEMA_NAME, "schema": schema, "strict": True}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _hoisted(tool: ToolSpec, defs: dict[str, Any]) -> dict[str, Any]:
    """``tool``'s argument schema in strict form, its definitions moved to ``defs``."""
    schema = copy.deepcopy(tool.args_schema)
    local = {**schema.pop("definitions", {}), **schema.pop("$defs", {})}
    prefix = f"{tool.name}__"
    _rename_refs(schema, prefix)
    for name, sub in local.items():
        _rename_refs(sub, prefix)
        defs[prefix + name] = strict(sub)
    return strict(schema)


def _rename_refs(node: Any, prefix: str) -> None:
    if isinstance(node, list):
        for item in node:
            _rename_refs(item, prefix)
    elif isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            node["$ref"] = "#/$defs/" + prefix + ref.rsplit("/", 1)[-1]
        for value in node.values():
            _rename_refs(value, prefix)


def strict(node: Any) -> dict[str, Any]:
    """``node`` in strict form, or `NotStrict`."""
    if not isinstance(node, dict):
        raise NotStrict("a schema must be an object")
    out = {k: v for k, v in node.items() if k not in ("default", "title")}
    if "anyOf" in out:
        out["anyOf"] = [strict(s) for s in out["anyOf"]]
    kind = out.get("type")
    if kind == "object" or "properties" in out:
        return _strict_object(out)
    if kind == "array":
        if not isinstance(out.get("items"), dict):
            raise NotStrict("an array needs one item schema")
        out["items"] = strict(out["items"])
    if kind is None and "$ref" not in out and "anyOf" not in out and "enum" not in out:
        raise NotStrict("a value of any type")
    return out


def _strict_object(out: dict[str, Any]) -> dict[str, Any]:
    props = out.get("properties")
    if not isinstance(props, dict) or out.get("additionalProperties") not in (None, False):
        raise NotStrict("a free-form object")
    if "patternProperties" in out:
        raise NotStrict("pattern properties")
    required = set(out.get("required", []))
    converted = {}
    for name, sub in props.items():
        schema = strict(sub)
        converted[name] = schema if name in required else _nullable(schema)
    out.update(
        type="object", properties=converted, required=list(props), additionalProperties=False
    )
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str) and "enum" not in schema:
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def strict_problems(schema: Any, path: str = "$") -> list[str]:
    """Where ``schema`` breaks strict mode's rules (what a strict endpoint refuses)."""
    if not isinstance(schema, dict):
        return [f"{path}: not a schema"]
    problems: list[str] = []
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            problems.append(f"{path}: additionalProperties must be false")
        if set(schema.get("required", [])) != set(props):
            problems.append(f"{path}: every property must be required")
        for name, sub in props.items():
            problems += strict_problems(sub, f"{path}.{name}")
    for i, sub in enumerate(schema.get("anyOf", [])):
        problems += strict_problems(sub, f"{path}.anyOf[{i}]")
    if isinstance(schema.get("items"), dict):
        problems += strict_problems(schema["items"], f"{path}.items")
    for name, sub in schema.get("$defs", {}).items():
        problems += strict_problems(sub, f"{path}.$defs.{name}")
    if "default" in schema:
        problems.append(f"{path}: 'default' is not allowed")
    return problems


def drop_nulls(args: dict[str, Any]) -> dict[str, Any]:
    """``args`` without the ``null`` values strict mode sends for optional arguments."""
    return {
        k: drop_nulls(v) if isinstance(v, dict) else v for k, v in args.items() if v is not None
    }
