"""A deliberately small reader of the SQL a slow-query log holds.

It is not a SQL parser. It recognises ``FROM t [AS] a`` and ``JOIN t [AS] a`` (to map
aliases back to tables, since EXPLAIN QUERY PLAN reports aliases) and comparisons of the
form ``[a.]column OP ...`` (to find the columns a query filters or joins on). That is
enough for single-SELECT queries, and when it is not, the only cost is a missed index:
every index it suggests is still validated against the real schema by ``create_index``.
"""

import re
from dataclasses import dataclass

# Words that can follow a table name but are not aliases.
# fmt: off
_NOT_ALIASES = frozenset({
    "where", "join", "inner", "left", "right", "full", "outer", "cross", "natural", "on",
    "using", "group", "order", "limit", "having", "union", "except", "intersect", "window",
    "as", "set", "values", "select",
})
# fmt: on
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_SOURCE = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_]\w*)(?:\s+(?:AS\s+)?([A-Za-z_]\w*))?", re.I)
_OPERAND = r"(?:([A-Za-z_]\w*)\.)?([A-Za-z_]\w*)"
_COMPARISON = re.compile(
    _OPERAND + r"\s*(==|=|<>|!=|>=|<=|>|<|\bIN\b|\bLIKE\b|\bBETWEEN\b)\s*(?:" + _OPERAND + r")?",
    re.I,
)
_OPERATOR_KIND = {"=": "eq", "==": "eq", "in": "in", "like": "like"}
# How useful an index on a filtered column is: equality first, join keys last.
KIND_RANK = {"eq": 0, "in": 1, "range": 2, "like": 3, "join": 4}


@dataclass(frozen=True)
class Filter:
    """A column a query compares: its table (None if unknown) and how it is compared."""

    table: str | None
    column: str
    kind: str


def mask_literals(sql: str) -> str:
    """``sql`` with string literals replaced by ``?``, so their contents never match."""
    return _LITERAL.sub("?", sql)


def sources(sql: str) -> dict[str, str]:
    """Tables a query reads, by lower-cased alias and by name: ``{"o": "orders", ...}``."""
    found: dict[str, str] = {}
    for table, alias in _SOURCE.findall(mask_literals(sql)):
        if table.lower() in _NOT_ALIASES:
            continue
        found[table.lower()] = table
        if alias and alias.lower() not in _NOT_ALIASES:
            found[alias.lower()] = table
    return found


def _resolve(qualifier: str, aliases: dict[str, str]) -> str | None:
    if qualifier:
        return aliases.get(qualifier.lower())
    tables = set(aliases.values())
    return next(iter(tables)) if len(tables) == 1 else None  # unambiguous only


def filters(sql: str) -> list[Filter]:
    """Columns compared after the first FROM (the select list is skipped), in order."""
    masked = mask_literals(sql)
    start = re.search(r"\bFROM\b", masked, re.I)
    body = masked[start.start() :] if start else masked
    aliases = sources(sql)
    found: list[Filter] = []
    for left_q, left_col, op, right_q, right_col in _COMPARISON.findall(body):
        if left_col.lower() in _NOT_ALIASES or left_col.lower() in ("and", "or", "not"):
            continue
        right_is_column = bool(right_q) and right_q.lower() in aliases
        kind = "join" if right_is_column else _OPERATOR_KIND.get(op.lower(), "range")
        found.append(Filter(_resolve(left_q, aliases), left_col, kind))
        if right_is_column:
            found.append(Filter(_resolve(right_q, aliases), right_col, "join"))
    return found


def index_columns(sql: str, table: str) -> list[str]:
    """Columns of ``table`` worth indexing for ``sql``, most useful first, no repeats."""
    ranked = sorted(
        (KIND_RANK[f.kind], i, f.column)
        for i, f in enumerate(filters(sql))
        if f.table is not None and f.table.lower() == table.lower()
    )
    ordered: list[str] = []
    for _, _, column in ranked:
        if column not in ordered:
            ordered.append(column)
    return ordered
