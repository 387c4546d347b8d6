"""The names Temporal records are defined once (``domain/contract.py``) and are exactly
what the worker registers.

A name written as a string literal somewhere else is a second definition: renaming it in
one place would leave the other talking to nothing (a signal nobody handles, an activity
no worker runs) while every test of the renamed side still passes.

The scan reads every Python file of the repository (tests and bench included) with `ast`
and looks at string constants only, docstrings excepted. A name that is no ordinary word
(``llm_complete``, ``CostUsd``, ``AgentRun``) may not appear at all, alone or as a word of
a longer string (a visibility query). A name that is also an ordinary word (``plan``,
``status``, ``approve``) is a contract name only where Temporal takes a name: as an
argument of a call that signals, updates, queries, starts a workflow or an activity, or
defines one (``name=``); elsewhere it is a purpose, a field or a CLI command.
"""

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHistory

from durable_agents._activities.catalog import Catalog
from durable_agents._activities.user_limits import UserLimits
from durable_agents._domain import contract
from durable_agents._domain import search_attributes as sa
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
SCANNED = (
    "domain",
    "infra",
    "workflows",
    "activities",
    "workers",
    "client",
    "cli",
    "devtools",
    "testing",
    "examples",
    "src",
    "scripts",
    "bench",
    "tests",
)
# The contract itself, and this test, whose planted literals are its fixtures.
EXEMPT = (ROOT / "domain" / "contract.py", Path(__file__).resolve())

NAMES: frozenset[str] = frozenset(
    {
        *(h.workflow for h in contract.WORKFLOWS),
        *(n for h in contract.WORKFLOWS for n in h.updates | h.signals | h.queries),
        *contract.ACTIVITIES,
        *contract.SEARCH_ATTRIBUTE_TYPES,
        *contract.STREAM_NAMES,  # registered by the SDK's WorkflowStream, not the class
    }
)
# No ordinary word: an underscore, or a capital inside (CamelCase).
DISTINCT = frozenset(n for n in NAMES if "_" in n or n[1:] != n[1:].lower())
WORD = re.compile(r"\b(" + "|".join(sorted(DISTINCT, key=len, reverse=True)) + r")\b")
# Calls that take a Temporal name among their arguments: the SDK's, the workflow's model
# calls (``ModelCaller.call(activity, ...)``) and the tests' wrappers of the official CLI
# (``tcli.signal(wid, name, ...)``).
NAMING_CALL = re.compile(r"signal|update|query|activit|workflow|defn|^for_|^call$")


def _callee(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _named(node: ast.AST) -> list[ast.expr]:
    """The arguments of ``node`` that Temporal takes as a name, if it is such a call."""
    if not isinstance(node, ast.Call):
        return []
    if NAMING_CALL.search(_callee(node)):
        return [*node.args, *(k.value for k in node.keywords)]
    return [k.value for k in node.keywords if k.arg == "name"]


def _docstrings(tree: ast.AST) -> set[int]:
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def literal_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) for each contract name written as a literal in ``source``."""
    tree = ast.parse(source)
    prose = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        for arg in _named(node):
            if isinstance(arg, ast.Constant) and arg.value in NAMES - DISTINCT:
                assert isinstance(node, ast.Call)
                found.append((arg.lineno, f"{arg.value!r} given to {_callee(node)}()"))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            if node.value in DISTINCT:
                found.append((node.lineno, repr(node.value)))
            elif match := WORD.search(node.value):
                found.append((node.lineno, f"{match.group()!r} in {node.value[:60]!r}"))
    return found


def _sources() -> Iterator[Path]:
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path not in EXEMPT:
                yield path


def test_each_name_is_written_once() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in _sources()
        for line, what in literal_uses(path.read_text(encoding="utf-8"))
    ]
    assert not found, (
        "Temporal names written as literals; use a typed reference (AgentRun.approve) or "
        "durable_agents._domain.contract:\n  " + "\n  ".join(found)
    )


def test_the_scan_reads_every_folder() -> None:
    assert {p.relative_to(ROOT).parts[0] for p in _sources()} == set(SCANNED)


PLANTED = [
    ('await handle.signal("approve", decision)', "'approve' given to signal()"),
    ('await tcli.update(wid, "reject", [])', "'reject' given to update()"),
    ('h.query("status", result_type=RunView)', "'status' given to query()"),
    ('await workflow.execute_activity("notify", n)', "'notify' given to execute_activity()"),
    ("@activity.defn(name='plan')\nasync def p(): ...", "'plan' given to defn()"),
    ("@workflow.update(name='settle')\ndef s(self): ...", "'settle' given to update()"),
    ('KEY = "llm_complete"', "'llm_complete'"),
    ('run = ("x", {"type": "AgentRun"})', "'AgentRun'"),
    ("q = f\"AgentUser = '{user}'\"", "'AgentUser' in \"AgentUser = '\""),
    ('raise ValueError("no CostUsd yet")', "'CostUsd' in 'no CostUsd yet'"),
]


@pytest.mark.parametrize(("source", "reported"), PLANTED)
def test_a_planted_literal_is_caught(source: str, reported: str) -> None:
    assert [what for _, what in literal_uses(source)] == [reported]


def test_a_planted_literal_fails_the_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "client").mkdir()
    (tmp_path / "client" / "api.py").write_text('h.signal("approve", d)\n', encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    monkeypatch.setattr(f"{__name__}.SCANNED", ("client",))
    with pytest.raises(AssertionError, match=r"client/api.py:1: 'approve' given to signal\(\)"):
        test_each_name_is_written_once()


@pytest.mark.parametrize(
    "source",
    [
        '"""The ``llm_complete`` activity, filtered by CostUsd."""',
        'class Purpose(StrEnum):\n    PLAN = "plan"\n    EVALUATE = "evaluate"',
        'app.command("status")(show)',
        'out = {"status": report.status.value}',
        'h.signal(contract.APPROVE, "approve it")',
        'name = "plan_b"',
    ],
)
def test_ordinary_words_and_prose_are_not_names(source: str) -> None:
    assert literal_uses(source) == []


# -- the contract is what the worker registers, and what histories hold --------------------


async def test_the_worker_registers_exactly_the_contract(
    client: Client, worker_settings: WorkerSettings, catalog: Catalog, user_limits: UserLimits
) -> None:
    config = build_worker(client, worker_settings, catalog=catalog, limits=user_limits).config()
    registered = {
        d.name: d for d in map(workflow._Definition.must_from_class, config.get("workflows", []))
    }
    assert set(registered) == {h.workflow for h in contract.WORKFLOWS}
    for handlers in contract.WORKFLOWS:
        defn = registered[handlers.workflow]
        assert set(defn.updates) == handlers.updates, handlers.workflow
        assert set(defn.signals) == handlers.signals, handlers.workflow
        assert set(defn.queries) == handlers.queries, handlers.workflow
    activities = [
        activity._Definition.must_from_callable(fn).name for fn in config.get("activities", [])
    ]
    assert sorted(map(str, activities)) == sorted(contract.ACTIVITIES)


def test_every_search_attribute_has_its_typed_key() -> None:
    kinds = {name: key.indexed_value_type.name for name, key in sa.KEYS.items()}
    assert kinds == {name: t.upper() for name, t in contract.SEARCH_ATTRIBUTE_TYPES.items()}


def _recorded(history: WorkflowHistory) -> set[str]:
    """The Temporal names a history holds (system search attributes aside)."""
    names: set[str] = set()
    for event in history.events:
        kind = event.WhichOneof("attributes")
        if kind is None:
            continue
        a = getattr(event, kind)
        if kind == "workflow_execution_started_event_attributes":
            names |= {a.workflow_type.name, *a.search_attributes.indexed_fields}
        elif kind == "activity_task_scheduled_event_attributes":
            names.add(a.activity_type.name)
        elif kind == "workflow_execution_signaled_event_attributes":
            names.add(a.signal_name)
        elif kind == "workflow_execution_update_accepted_event_attributes":
            names.add(a.accepted_request.input.name)
        elif kind == "upsert_workflow_search_attributes_event_attributes":
            names |= set(a.search_attributes.indexed_fields)
        elif kind == "marker_recorded_event_attributes" and a.marker_name == "core_local_activity":
            names.add(json.loads(a.details["data"].payloads[0].data)["activity_type"])
    return {n for n in names if not n.startswith("Temporal")}


def test_recorded_histories_hold_only_contract_names() -> None:
    recorded: set[str] = set()
    for path in sorted((ROOT / "tests" / "histories").glob("*.json")):
        names = _recorded(WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8")))
        assert names <= NAMES, f"{path.name} holds names the contract lost: {names - NAMES}"
        recorded |= names
    # Each kind of name is among them, so the check above is not vacuous.
    assert {contract.AGENT_RUN, contract.USER_LEDGER, contract.APPROVE} <= recorded
    assert {contract.RESOLVE_AGENT, contract.LLM_COMPLETE, contract.COST_USD} <= recorded
