"""The layers import downwards only: a test fails on an import that would make them loop.

domain (pure) <- infra (connection, codec, telemetry, logs) <- workflows, activities
<- workers, client <- cli, devtools, testing. ``client`` and ``workers`` never import each
other; ``workflows`` never imports ``activities`` (nor back); ``domain`` imports nothing
above it. ``cli`` reaches ``workers``, ``devtools`` and ``testing`` only inside the
commands that need them (``agentctl dev``, ``replay-check``, ``eval --from-runs``), so
``agentctl`` loads no worker or tool code.
"""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent
PREFIX = "durable_agents._"

# layer -> the layers its modules may import at module level
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "infra": {"domain"},
    "workflows": {"domain"},
    "activities": {"domain", "infra"},
    "workers": {"domain", "infra", "workflows", "activities"},
    "client": {"domain", "infra", "workflows"},
    "cli": {"domain", "infra", "client"},
    "devtools": {"domain", "infra", "workflows", "activities", "workers", "client"},
    "testing": {"domain", "infra", "workflows", "activities", "workers", "client", "devtools"},
}
# ... and, inside a function only, these as well
# (``testing``: `agentctl eval --from-runs` replays recorded replies with its scripted model.)
LAZY: dict[str, set[str]] = {"cli": {"workers", "devtools", "testing"}}


def imported_layers(path: Path) -> list[tuple[str, bool, int]]:
    """(layer, at module level, line) of every durable_agents import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested = {
        id(n)
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for n in ast.walk(fn)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        names = [a.name for a in node.names]
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module}.{n}" for n in names]
        for name in names:
            if name.startswith(PREFIX):
                layer = name.removeprefix(PREFIX).split(".")[0]
                found.append((layer, id(node) not in nested, node.lineno))
            elif name == "durable_agents.testing" or name.startswith("durable_agents.testing."):
                found.append(("testing", id(node) not in nested, node.lineno))
    return found


def violations(layer: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for target, top_level, line in imported_layers(path):
            allowed = ALLOWED[layer] | {layer} | (set() if top_level else LAZY.get(layer, set()))
            if target not in allowed:
                where = "" if top_level else " (inside a function)"
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target}{where}")
    return bad


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_the_layer_imports_only_below_it(layer: str) -> None:
    assert violations(layer) == []


def test_the_rules_catch_an_import_upwards(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        "from durable_agents._client.api import AgentsClient\n"
        "def f():\n    from durable_agents._devtools import demo\n"
    )
    found = imported_layers(planted)
    assert ("client", True, 1) in found and ("devtools", False, 3) in found
    assert "client" not in ALLOWED["workers"] and "workers" not in ALLOWED["client"]
    assert "activities" not in ALLOWED["workflows"] and "workflows" not in ALLOWED["activities"]
