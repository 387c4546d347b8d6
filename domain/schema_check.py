"""A small, deterministic JSON-Schema checker for tool arguments.

Tool argument schemas are generated from pydantic models (``model_json_schema()``) by
the tool registry and travel inside the `AgentSpec`, so the workflow can validate a plan
without importing tool code. This checks the subset pydantic emits: types, properties,
required, additionalProperties, enum/const, bounds, lengths, items, anyOf and local $refs.
"""

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
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
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{path}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{path}: {value} > maximum {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{path}: longer than {schema['maxLength']} characters")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problems += _check(item, schema["items"], root, f"{path}[{i}]")
    if isinstance(value, dict):
        problems += _check_object(value, schema, root, path)
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
    return problems
