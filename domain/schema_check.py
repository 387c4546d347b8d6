"""A small, deterministic JSON-Schema checker for tool arguments.

Tool argument schemas are generated from pydantic models (``model_json_schema()``) by
the tool registry and travel inside the `AgentSpec`, so the workflow can validate a plan
without importing tool code. This checks the subset pydantic emits: types, properties,
required, additionalProperties, enum/const, bounds, lengths, items, anyOf and local $refs.
"""

import re
from typing import Any

from pydantic import BaseModel

# Keywords whose value maps names to schemas (a property may be called "title").
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema without the titles pydantic derives from names.

    The schema travels with every run's spec; a title only repeats a field's name.
    """
    schema: dict[str, Any] = _without_titles(model.model_json_schema())
    return schema


def _without_titles(node: Any, names: bool = False) -> Any:
    if isinstance(node, list):
        return [_without_titles(v) for v in node]
    if not isinstance(node, dict):
        return node
    if names:  # {name: schema}
        return {k: _without_titles(v) for k, v in node.items()}
    return {
        k: _without_titles(v, names=k in _SCHEMA_MAPS)
        for k, v in node.items()
        if not (k == "title" and isinstance(v, str))
    }


def check(value: Any, schema: dict[str, Any], *, path: str = "$") -> list[str]:
    """Return human-readable problems of ``value`` against ``schema`` (empty when valid)."""
    return _check(value, schema, schema, path)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _type_ok(value: Any, expected: str) -> bool:
    if isinstance(value, bool) and expected in ("integer", "number"):
        return False  # bool is an int subclass in Python, never in JSON
    return isinstance(value, _TYPES.get(expected, (object,)))


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> list[str]:
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        options = [_check(value, s, root, path) for s in schema["anyOf"]]
        if all(options):
            return [f"{path}: matches none of the allowed forms ({options[0][0]})"]
        return []
    expected = schema.get("type")
    if isinstance(expected, list):
        if not any(_type_ok(value, t) for t in expected):
            return [f"{path}: expected one of {expected}, got {type(value).__name__}"]
    elif isinstance(expected, str) and not _type_ok(value, expected):
        return [f"{path}: expected {expected}, got {type(value).__name__}"]
    problems: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: must be {schema['const']!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        problems += _number_problems(value, schema, path)
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{path}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{path}: {value!r} does not match {schema['pattern']!r}")
    if isinstance(value, list):
        problems += _array_problems(value, schema, root, path)
    if isinstance(value, dict):
        problems += _check_object(value, schema, root, path)
    return problems


def _number_problems(value: float, schema: dict[str, Any], path: str) -> list[str]:
    problems = []
    if "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{path}: {value} < minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        problems.append(f"{path}: {value} > maximum {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        problems.append(f"{path}: {value} must be > {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        problems.append(f"{path}: {value} must be < {schema['exclusiveMaximum']}")
    step = schema.get("multipleOf")
    if step and abs(value / step - round(value / step)) > 1e-9:
        problems.append(f"{path}: {value} is not a multiple of {step}")
    return problems


def _array_problems(
    value: list[Any], schema: dict[str, Any], root: dict[str, Any], path: str
) -> list[str]:
    problems = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        problems.append(f"{path}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        problems.append(f"{path}: more than {schema['maxItems']} items")
    prefix: list[dict[str, Any]] = schema.get("prefixItems", [])
    for i, (item, item_schema) in enumerate(zip(value, prefix, strict=False)):
        problems += _check(item, item_schema, root, f"{path}[{i}]")
    rest = schema.get("items")
    if isinstance(rest, dict):
        for i, item in enumerate(value[len(prefix) :], start=len(prefix)):
            problems += _check(item, rest, root, f"{path}[{i}]")
    elif rest is False and len(value) > len(prefix):
        problems.append(f"{path}: at most {len(prefix)} items")
    return problems


def _check_object(
    value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], path: str
) -> list[str]:
    props: dict[str, Any] = schema.get("properties", {})
    problems = [
        f"{path}: missing required field '{k}'"
        for k in schema.get("required", [])
        if k not in value
    ]
    for key, item in value.items():
        if key in props:
            problems += _check(item, props[key], root, f"{path}.{key}")
        elif schema.get("additionalProperties") is False:
            known = ", ".join(sorted(props)) or "none"
            problems.append(f"{path}: unknown field '{key}' (known: {known})")
        elif isinstance(schema.get("additionalProperties"), dict):
            problems += _check(item, schema["additionalProperties"], root, f"{path}.{key}")
    return problems
