"""Whether a tool's input schema from outside (an MCP server) is safe to check plans with.

The workflow checks every planned call against its tool's argument schema
(`schema_check.check`) inside the workflow task. A schema written by a server we do not
control must therefore be one that checker handles: JSON objects where schemas go,
patterns that compile, local references that resolve and do not loop, a bounded size and
depth. Anything else is refused here, when the run's tools are resolved, and the tool is
left out of the run with the reason.
"""

import json
import re
from typing import Any

MAX_DEPTH = 24
_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
_SCHEMA_LISTS = ("anyOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_NUMBERS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_LOCAL_REF = r"#/(\$defs|definitions)/[^/]+"
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems")


def schema_problems(schema: Any, max_bytes: int) -> list[str]:
    """Why ``schema`` cannot be a tool's argument schema (empty: it can)."""
    if not isinstance(schema, dict):
        return ["it is not a JSON object"]
    try:
        size = len(json.dumps(schema, allow_nan=False).encode())
    except (ValueError, TypeError, RecursionError) as err:
        return [f"it is not plain JSON ({err})"]
    if size > max_bytes:
        return [f"it is {size} bytes, over the limit of {max_bytes}"]
    if schema.get("type", "object") != "object":
        return [f"its root type is {schema.get('type')!r}, not 'object'"]
    problems: list[str] = []
    _walk(schema, "$", 0, problems)
    if not problems:
        problems += _ref_problems(schema)
    return problems


def _walk(node: Any, path: str, depth: int, problems: list[str]) -> None:
    if depth > MAX_DEPTH:
        problems.append(f"{path}: nested deeper than {MAX_DEPTH}")
        return
    if not isinstance(node, dict):
        problems.append(f"{path}: a schema must be an object, got {type(node).__name__}")
        return
    problems += _keyword_problems(node, path)
    for key in _SCHEMA_MAPS:
        members = node.get(key, {})
        if not isinstance(members, dict):
            problems.append(f"{path}.{key}: must map names to schemas")
            continue
        for name, sub in members.items():
            _walk(sub, f"{path}.{key}.{name}", depth + 1, problems)
    for key in _SCHEMA_LISTS:
        items = node.get(key, [])
        if not isinstance(items, list):
            problems.append(f"{path}.{key}: must be a list of schemas")
            continue
        for i, sub in enumerate(items):
            _walk(sub, f"{path}.{key}[{i}]", depth + 1, problems)
    for key in ("items", "additionalProperties"):
        sub = node.get(key)
        if sub is not None and not isinstance(sub, bool):
            _walk(sub, f"{path}.{key}", depth + 1, problems)


def _keyword_problems(node: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if not all(isinstance(k, str) and k in _TYPES for k in kinds):
        problems.append(f"{path}.type: {kind!r} is not a JSON type")
    required = node.get("required", [])
    if not (isinstance(required, list) and all(isinstance(r, str) for r in required)):
        problems.append(f"{path}.required: must be a list of names")
    if "enum" in node and not isinstance(node["enum"], list):
        problems.append(f"{path}.enum: must be a list")
    for key in _NUMBERS:
        value = node.get(key)
        if key in node and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append(f"{path}.{key}: must be a number")
    if isinstance(node.get("multipleOf"), int | float) and node["multipleOf"] <= 0:
        problems.append(f"{path}.multipleOf: must be positive")
    for key in _COUNTS:
        value = node.get(key)
        if key in node and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            problems.append(f"{path}.{key}: must be a count")
    if "pattern" in node:
        problems += _pattern_problems(node["pattern"], path)
    ref = node.get("$ref")
    if ref is not None and not (
        isinstance(ref, str) and re.fullmatch(r"#/(\$defs|definitions)/[^/]+", ref)
    ):
        problems.append(f"{path}.$ref: only local references to $defs are allowed")
    return problems


def _pattern_problems(pattern: Any, path: str) -> list[str]:
    if not isinstance(pattern, str) or len(pattern) > 256:
        return [f"{path}.pattern: must be a regular expression of at most 256 characters"]
    try:
        re.compile(pattern)
    except re.error as err:
        return [f"{path}.pattern: does not compile ({err})"]
    return []


def _ref_problems(schema: dict[str, Any]) -> list[str]:
    """References that point nowhere, or that loop (the checker would never end)."""
    defs: dict[str, Any] = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    edges = {name: _refs_in(sub) for name, sub in defs.items()}
    for name in _refs_in({k: v for k, v in schema.items() if k not in ("$defs", "definitions")}):
        if name not in defs:
            return [f"$ref to an unknown definition '{name}'"]
    for start in edges:
        stack, seen = [start], set()
        while stack:
            node = stack.pop()
            for target in edges.get(node, ()):
                if target not in defs:
                    return [f"$ref to an unknown definition '{target}'"]
                if target == start:
                    return [
                        f"definition '{start}' refers to itself (recursive schemas are refused)"
                    ]
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
    return []


def _refs_in(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_refs_in(v) for v in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found: set[str] = set()
    ref = node.get("$ref")
    if isinstance(ref, str):
        found.add(ref.rsplit("/", 1)[-1])
    for value in node.values():
        found |= _refs_in(value)
    return found
