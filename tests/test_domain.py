"""Unit tests of the pure domain: plans, permissions, schemas, approvals, evaluation,
summaries, prices and run requests."""

import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from durable_agents._domain import schema_check
from durable_agents._domain.approvals import ApprovalPolicy, Decision, args_digest
from durable_agents._domain.budget import Budget, BudgetOverride
from durable_agents._domain.evaluation import deterministic_check
from durable_agents._domain.permissions import Effect, PermissionMatrix, PermissionRule
from durable_agents._domain.plan import Plan, Task, TaskKind, find_cycle, ready_waves, validate_plan
from durable_agents._domain.prices import (
    DEFAULT_PRICES,
    ModelPrice,
    UnpricedModelError,
    resolve_prices,
)
from durable_agents._domain.prompts import running_summary
from durable_agents._domain.run import Outcome, RecordedRequest, RunCarry, RunRequest, StepRecord
from durable_agents._domain.spec import AgentSpec, ModelRouting
from durable_agents._domain.tools import ToolSpec
from durable_agents._domain.user_ledger import LedgerReservation, LedgerSettlement, UserSpend
from tests.support import test_agent

pytestmark = pytest.mark.unit


class Color(StrEnum):
    RED = "red"
    BLUE = "blue"


class Item(BaseModel):
    name: str = Field(min_length=1, max_length=5)
    qty: int = Field(ge=0, le=10)


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: str
    note: str | None = None
    color: Color = Color.RED
    items: list[Item] = []
    ship: Item | None = None
    weight: float = 0.0


ORDER = ToolSpec(name="order", description="Place an order.", args_schema=Order.model_json_schema())
DROP = ToolSpec(
    name="drop_index", description="Drop an index.", resource_arg="name", args_schema={}
)
TOOLS = {t.name: t for t in (ORDER, DROP)}
ALLOW = PermissionMatrix.allow_all()


def tool(tid: str, tool_name: str = "order", deps: tuple[str, ...] = (), **args: Any) -> Task:
    return Task(id=tid, tool=tool_name, args=args or {"customer": "c"}, depends_on=list(deps))


def problems(*tasks: Task, perms: PermissionMatrix = ALLOW, role: str = "agent") -> list[str]:
    return validate_plan(Plan(tasks=list(tasks)), TOOLS, perms, role)


ARGS_CASES: list[tuple[dict[str, Any], str | None]] = [
    ({"customer": "ana"}, None),
    ({"customer": "ana", "note": None}, None),
    ({"customer": "ana", "note": "x", "color": "blue", "weight": 2}, None),
    (
        {"customer": "ana", "items": [{"name": "a", "qty": 1}], "ship": {"name": "b", "qty": 0}},
        None,
    ),
    ({}, "missing required field 'customer'"),
    ({"customer": 7}, "$.customer: expected string, got int"),
    ({"customer": "a", "note": 3}, "$.note: matches none of the allowed forms"),
    ({"customer": "a", "color": "green"}, "$.color: 'green' is not one of ['red', 'blue']"),
    ({"customer": "a", "items": "x"}, "$.items: expected array"),
    ({"customer": "a", "items": [{"name": "a", "qty": 1}] * 2 + [{"qty": 1}]}, "$.items[2]"),
    ({"customer": "a", "items": [{"name": "", "qty": 1}]}, "$.items[0].name: shorter than 1"),
    ({"customer": "a", "items": [{"name": "abcdef", "qty": 1}]}, "longer than 5 characters"),
    ({"customer": "a", "items": [{"name": "a", "qty": 11}]}, "$.items[0].qty: 11 > maximum 10"),
    ({"customer": "a", "items": [{"name": "a", "qty": -1}]}, "-1 < minimum 0"),
    ({"customer": "a", "items": [{"name": "a", "qty": True}]}, "expected integer, got bool"),
    ({"customer": "a", "items": [{"name": "a", "qty": 1.5}]}, "expected integer, got float"),
    ({"customer": "a", "ship": {"name": "a"}}, "$.ship: matches none"),
    ({"customer": "a", "weight": True}, "$.weight: expected number, got bool"),
    ({"customer": "a", "extra": 1}, "unknown field 'extra' (known: color, customer, items"),
    ({"customer": "a", "ship": {"name": "a", "qty": 1, "free": 1}}, None),  # Item allows extras
]


@pytest.mark.parametrize(("args", "expected"), ARGS_CASES)
def test_args_are_checked_against_the_pydantic_schema(
    args: dict[str, Any], expected: str | None
) -> None:
    found = schema_check.check(args, ORDER.args_schema)
    if expected is None:
        assert found == []
    else:
        assert any(expected in p for p in found), found
    # The checker agrees with pydantic itself on JSON input.
    try:
        Order.model_validate_json(json.dumps(args), strict=True)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == (found == [])


def test_plan_args_problems_name_task_and_tool() -> None:
    assert problems(tool("t1", customer=3)) == [
        "task t1 (order): args.customer: expected string, got int"
    ]


class Gaps(BaseModel):
    tags: list[str] = Field(default=["a"], min_length=1, max_length=2)
    slug: str = Field(default="a", pattern=r"^[a-z_]+$")
    positive: int = Field(default=1, gt=0)
    fraction: float = Field(default=0.5, lt=1)
    step: int = Field(default=5, multiple_of=5)
    counts: dict[str, int] = {}
    pair: tuple[int, str] = (1, "a")


@pytest.mark.parametrize(
    "bad",
    [
        {"tags": []},
        {"tags": ["a", "b", "c"]},
        {"slug": "x; DROP TABLE t"},
        {"positive": 0},
        {"fraction": 1.0},
        {"step": 3},
        {"counts": {"a": "x"}},
        {"pair": ["a", "b"]},
    ],
)
def test_every_constraint_pydantic_emits_is_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Gaps.model_validate_json(json.dumps(bad), strict=True)
    assert schema_check.check(bad, Gaps.model_json_schema()) != []


class Titled(BaseModel):
    title: str  # a field called "title" is not a title
    properties: list[Item] = []


def test_schemas_travel_without_derived_titles_and_check_the_same() -> None:
    schema = schema_check.schema_of(Titled)
    assert "title" not in schema and "title" not in schema["$defs"]["Item"]
    assert schema["properties"]["title"] == {"type": "string"}
    assert set(schema["properties"]) == {"title", "properties"}
    assert schema["required"] == ["title"]
    for value in ({"title": "x"}, {"title": 1}, {"title": "x", "properties": [{"name": ""}]}):
        full = schema_check.check(value, Titled.model_json_schema())
        assert schema_check.check(value, schema) == full


def test_a_request_records_its_spec_without_defaults_and_decodes_to_the_same() -> None:
    spec = test_agent.build_spec()
    request = RecordedRequest(request_id="r1", goal="g", spec=spec)
    recorded = json.loads(request.model_dump_json())
    assert "critical" not in recorded["spec"]["tools"][0]  # at its default
    assert "user" not in recorded and "resume_state" not in recorded
    assert RecordedRequest.model_validate(recorded) == request


def test_a_recorded_request_splits_into_the_request_and_the_carry() -> None:
    recorded = RecordedRequest(
        request_id="r1", goal="g", agent="a", parent_workflow_id="run-p", depth=2
    )
    request, carry = recorded.split()
    assert request == RunRequest(request_id="r1", goal="g", agent="a")
    assert carry == RunCarry(parent_workflow_id="run-p", depth=2)
    assert RecordedRequest.joined(request, carry) == recorded
    with pytest.raises(ValidationError, match="parent_workflow_id"):  # a caller's request
        RunRequest(request_id="r1", goal="g", agent="a", parent_workflow_id="run-p")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("value", "schema", "ok"),
    [
        (1, {"type": "number"}, True),
        (1.5, {"type": "number"}, True),
        (True, {"type": "number"}, False),
        (False, {"type": "integer"}, False),
        (True, {"type": "boolean"}, True),
        (None, {"type": "null"}, True),
        (3, {"type": ["string", "integer"]}, True),
        (3.5, {"type": ["string", "integer"]}, False),
        ("b", {"const": "a"}, False),
        (5, {"minimum": 5, "maximum": 5}, True),
        ("abc", {"minLength": 3, "maxLength": 3}, True),
        ({"a": 1}, {"type": "object"}, True),
    ],
)
def test_schema_check_primitives(value: Any, schema: dict[str, Any], ok: bool) -> None:
    assert (schema_check.check(value, schema) == []) is ok


def test_unknown_tool_lists_the_known_ones() -> None:
    assert problems(Task(id="t", tool="nope")) == [
        "task t: unknown tool 'nope'; known tools: drop_index, order"
    ]
    assert validate_plan(Plan(tasks=[Task(id="t")]), {}, ALLOW, "agent") == [
        "task t: unknown tool 'None'; known tools: none"
    ]


def test_duplicate_ids_and_unknown_dependencies() -> None:
    found = problems(tool("a"), tool("a"), tool("b", deps=("zz",)))
    assert "task ids must be unique; repeated: a" in found
    assert "task b: depends on unknown task 'zz'" in found


@pytest.mark.parametrize(
    ("deps", "cycle"),
    [
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"a": ["a"]}, ["a", "a"]),
        ({"a": ["b"], "b": ["c"], "c": ["d"], "d": ["b"]}, ["b", "c", "d", "b"]),
        ({"a": [], "b": ["a"], "c": ["a", "b"]}, []),
        ({"a": ["ghost"]}, []),
    ],
)
def test_find_cycle(deps: dict[str, list[str]], cycle: list[str]) -> None:
    tasks = [tool(t, deps=tuple(d)) for t, d in deps.items()]
    assert find_cycle(tasks) == cycle
    found = [p for p in problems(*tasks) if "cycle" in p]
    assert found == ([f"dependencies form a cycle: {' -> '.join(cycle)}"] if cycle else [])


def test_ready_waves_keep_plan_order_and_stop_at_a_cycle() -> None:
    tasks = [tool("d", deps=("b", "c")), tool("b", deps=("a",)), tool("a"), tool("c", deps=("a",))]
    assert [[t.id for t in w] for w in ready_waves(tasks)] == [["a"], ["b", "c"], ["d"]]
    assert ready_waves([tool("x", deps=("y",)), tool("y", deps=("x",)), tool("z")])[0][0].id == "z"
    assert ready_waves([]) == []


def test_permission_denied_and_prompts_for_model_tasks() -> None:
    deny = PermissionMatrix(
        rules=[PermissionRule(effect=Effect.ALLOW), PermissionRule(tool="drop_*", effect="deny")]
    )
    found = problems(tool("t", "drop_index", name="idx_a"), perms=deny, role="ops")
    assert found == ["task t: permission denied for role 'ops' to call drop_index(idx_a)"]
    for kind in (TaskKind.LLM, TaskKind.SUBAGENT):
        assert problems(Task(id="m", kind=kind, prompt="  ")) == [
            f"task m: a {kind.value} task needs a prompt"
        ]
        assert problems(Task(id="m", kind=kind, prompt="sum up")) == []


RULES = PermissionMatrix(
    rules=[
        PermissionRule(role="*", tool="*", effect=Effect.ALLOW),
        PermissionRule(role="intern", tool="*", effect=Effect.ASK),
        PermissionRule(tool="drop_*", resource="prod_*", effect=Effect.DENY),
        PermissionRule(role="admin", tool="drop_*", effect=Effect.ALLOW),
        PermissionRule(role="bot-*", tool="create_index", resource="tmp_?", effect=Effect.ASK),
    ]
)


@pytest.mark.parametrize(
    ("matrix", "call", "effect"),
    [
        (PermissionMatrix(), ("agent", "any", "*"), Effect.DENY),
        (PermissionMatrix(default=Effect.ASK), ("agent", "any", "*"), Effect.ASK),
        (RULES, ("agent", "list_tables", "*"), Effect.ALLOW),
        (RULES, ("intern", "list_tables", "*"), Effect.ASK),
        (RULES, ("admin", "drop_index", "prod_orders"), Effect.DENY),
        (RULES, ("admin", "drop_index", "dev_orders"), Effect.ALLOW),
        (RULES, ("intern", "drop_index", "prod_x"), Effect.DENY),
        (RULES, ("bot-1", "create_index", "tmp_a"), Effect.ASK),
        (RULES, ("bot-1", "create_index", "tmp_ab"), Effect.ALLOW),
        (RULES, ("Agent", "DROP_INDEX", "prod_x"), Effect.ALLOW),  # case-sensitive
    ],
)
def test_permissions_strictest_matching_rule_wins(
    matrix: PermissionMatrix, call: tuple[str, str, str], effect: Effect
) -> None:
    assert matrix.decide(*call) is effect


def test_an_allow_rule_cannot_undo_a_deny_in_any_order() -> None:
    rules = [PermissionRule(effect=Effect.DENY), PermissionRule(effect=Effect.ALLOW)]
    assert PermissionMatrix(rules=rules).decide("r", "t") is Effect.DENY
    assert PermissionMatrix(rules=rules[::-1]).decide("r", "t") is Effect.DENY


@pytest.mark.parametrize(
    ("args", "resource"),
    [({"name": "idx_a"}, "idx_a"), ({}, "*"), ({"name": 7}, "7"), ({"other": "x"}, "*")],
)
def test_resource_of(args: dict[str, Any], resource: str) -> None:
    assert DROP.resource_of(args) == resource
    assert ORDER.resource_of(args) == "*"  # no resource_arg declared


POLICY = ApprovalPolicy(approvers=["ana", "bo"], tool_approvers={"drop_index": ["dba"]})


@pytest.mark.parametrize(
    ("policy", "approver", "tool_name", "allowed"),
    [
        (ApprovalPolicy(), "anyone", None, True),
        (ApprovalPolicy(), "anyone", "drop_index", True),
        (POLICY, "ana", None, True),
        (POLICY, "eve", None, False),
        (POLICY, "bo", "create_index", True),
        (POLICY, "ana", "drop_index", False),
        (POLICY, "dba", "drop_index", True),
        (POLICY, "dba", None, False),
    ],
)
def test_who_may_approve(
    policy: ApprovalPolicy, approver: str, tool_name: str | None, allowed: bool
) -> None:
    assert policy.allows(approver, tool_name) is allowed


def test_args_digest_is_canonical() -> None:
    a = {"table": "orders", "cols": ["a", "b"], "opts": {"x": 1, "y": None}}
    b = {"opts": {"y": None, "x": 1}, "cols": ["a", "b"], "table": "orders"}
    assert args_digest(a) == args_digest(b)
    assert len(args_digest(a)) == 64
    variants: list[dict[str, Any]] = [
        {**a, "table": "orders2"},
        {**a, "cols": ["b", "a"]},
        {**a, "opts": {"x": 2, "y": None}},
        {**a, "opts": {"x": 1.0, "y": None}},
        {**a, "opts": {"x": True, "y": None}},
        {**a, "extra": None},
    ]
    assert len({args_digest(v) for v in [a, *variants]}) == len(variants) + 1


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"approver": " ana "}, True),
        ({"approver": "   "}, False),
        ({"approver": ""}, False),
        ({"approver": "ana", "args_digest": "a" * 64}, True),
        ({"approver": "ana", "args_digest": "A" * 64}, False),
        ({"approver": "ana", "args_digest": "a" * 63}, False),
        ({"approver": "ana", "args_digest": "g" * 64}, False),
        ({"approver": "ana", "request_id": ""}, False),
        ({"approver": "ana", "surprise": 1}, False),
    ],
)
def test_decision_validation(fields: dict[str, Any], ok: bool) -> None:
    payload = {"request_id": "r1", **fields}
    if ok:
        assert Decision.model_validate(payload).approver == "ana"
    else:
        with pytest.raises(ValidationError):
            Decision.model_validate(payload)


EMPTIES: list[Any] = [None, "", [], {}]


@pytest.mark.parametrize(
    ("output", "criteria", "failures", "judgement"),
    [
        ("x", ["non_empty"], 0, []),
        (0, ["non_empty"], 0, []),
        *[(empty, ["non_empty"], 1, []) for empty in EMPTIES],
        ({"a": 1}, ["has:a", "has:b"], 1, []),
        ("text", ["has:a"], 1, []),
        ({"n": 3}, ["equals:n=3", "equals:n=4"], 1, []),
        ({"ok": True}, [" equals:ok=True "], 0, []),
        ("abcd", ["max_len:4", "max_len:3"], 1, []),
        ("abcd", ["max_len:x", "is polite", "haz:a"], 0, ["max_len:x", "is polite", "haz:a"]),
    ],
)
def test_deterministic_check(
    output: Any, criteria: list[str], failures: int, judgement: list[str]
) -> None:
    verdict = deterministic_check(output, criteria)
    assert len(verdict.failures) == failures, verdict.failures
    assert verdict.needs_judgement == judgement


def test_deterministic_check_messages() -> None:
    verdict = deterministic_check({"n": 3}, ["has:m", "equals:n=4"])
    assert verdict.failures == ["output has no field 'm'", "field 'n' is 3, expected '4'"]


def step(i: int, outcome: Outcome) -> StepRecord:
    return StepRecord(
        iteration=1, task_id=f"t{i}", kind=TaskKind.TOOL, label=f"c{i}", outcome=outcome
    )


def test_running_summary() -> None:
    steps = [step(i, Outcome.HARD if i % 3 == 0 else Outcome.OK) for i in range(20)]
    assert running_summary([], 8) == ""
    assert running_summary(steps[:8], 8) == ""
    assert running_summary(steps[:9], 8) == "1 earlier steps (1 hard). Failed before: c0=hard"
    assert running_summary(steps[1:10], 8) == "1 earlier steps (1 ok)."
    summary = running_summary(steps, 4)
    assert summary == (
        "16 earlier steps (6 hard, 10 ok). "
        "Failed before: c0=hard; c3=hard; c6=hard; c9=hard; c12=hard; c15=hard"
    )
    # Steps left behind at continue-as-new count too, and their failures stay named.
    carried = running_summary(steps[-6:], 4, {"ok": 40, "hard": 1}, ["c-1=hard"])
    assert carried == "43 earlier steps (2 hard, 41 ok). Failed before: c-1=hard; c15=hard"


def test_prices() -> None:
    assert resolve_prices(["gpt-4o", "gpt-4o"], DEFAULT_PRICES) == {
        "gpt-4o": DEFAULT_PRICES["gpt-4o"]
    }
    with pytest.raises(UnpricedModelError, match=r"mystery-9.*AGENT_PRICES_FILE") as err:
        resolve_prices(["gpt-4o", "mystery-9", "alpha-x"], DEFAULT_PRICES)
    assert err.value.models == ["alpha-x", "mystery-9"]
    assert "alpha-x, mystery-9" in str(err.value)


@pytest.mark.parametrize(
    ("price", "tokens", "micros"),
    [
        (ModelPrice(input_per_million=0.15, output_per_million=0.6), (1000, 0), 150),
        (ModelPrice(input_per_million=0.15, output_per_million=0.6), (0, 1000), 600),
        (ModelPrice(input_per_million=0.1, output_per_million=0.3), (10, 10), 1 + 3),
        (ModelPrice(input_per_million=2.5, output_per_million=10), (1, 1), 3 + 10),
        (ModelPrice(input_per_million=0.05, output_per_million=0.4), (1, 0), 1),  # rounds up
        (DEFAULT_PRICES["offline"], (10**6, 10**6), 0),
    ],
)
def test_model_price_is_exact(price: ModelPrice, tokens: tuple[int, int], micros: int) -> None:
    assert price.cost_micros(*tokens) == micros


SPEC = AgentSpec(
    name="demo",
    system_prompt="x",
    models=ModelRouting.single("offline"),
    budget=Budget(max_cost_usd=0.5, max_tokens=1000, max_iterations=4),
)


@pytest.mark.parametrize("goal", ["", "   ", "\n\t"])
def test_empty_goal_is_refused(goal: str) -> None:
    with pytest.raises(ValidationError, match="goal is empty"):
        RunRequest(request_id="r1", goal=goal, agent="a")


@pytest.mark.parametrize("rid", ["a", "A1_b.c:d-e", "9" * 128])
def test_good_request_ids(rid: str) -> None:
    assert RunRequest(request_id=rid, goal=" tune ", agent="a").goal == "tune"


@pytest.mark.parametrize("rid", ["", "-a", "_a", "a b", "a/b", "é", "9" * 129, "a\nb"])
def test_bad_request_ids(rid: str) -> None:
    with pytest.raises(ValidationError, match="request_id"):
        RunRequest(request_id=rid, goal="g", agent="a")


def test_request_id_with_trailing_newline_is_refused() -> None:
    with pytest.raises(ValidationError, match="request_id"):
        RunRequest(request_id="abc\n", goal="g", agent="a")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (None, SPEC.budget),
        (BudgetOverride(), SPEC.budget),
        (BudgetOverride(max_cost_usd=2), SPEC.budget.model_copy(update={"max_cost_usd": 2.0})),
        (
            BudgetOverride(max_iterations=9, max_llm_calls=3),
            SPEC.budget.model_copy(update={"max_iterations": 9, "max_llm_calls": 3}),
        ),
        (BudgetOverride(max_cost_usd=0), SPEC.budget.model_copy(update={"max_cost_usd": 0.0})),
    ],
)
def test_effective_budget_overrides_only_given_fields(
    override: BudgetOverride | None, expected: Budget
) -> None:
    request = RunRequest(request_id="r1", goal="g", agent=SPEC.name, budget=override)
    assert request.budget_of(SPEC) == expected


def test_a_ledger_checks_only_reservations_older_than_a_sweep_period() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    spend = UserSpend(user="u", sweep_every_s=600)
    for run, age in (("old", 601), ("young", 30)):
        reservation = LedgerReservation(run_id=run, amount_micros=10, limit_micros=100)
        assert spend.reserve(reservation, now - timedelta(seconds=age)).granted
    spend.reservations["carried"] = 5  # from a ledger recorded before reservation times
    assert spend.stale(now) == ["carried", "old"]
    spend.settle(LedgerSettlement(run_id="old", actual_micros=7))
    spend.release("carried")
    assert spend.stale(now) == [] and spend.reserved_at == {"young": now - timedelta(seconds=30)}
    assert spend.spent_micros == 7


@pytest.mark.parametrize(
    ("usd", "shown"),
    [(0.002, "$0.002"), (0.5, "$0.50"), (0.0123, "$0.0123"), (0, "$0.00"), (1e-6, "$0.000001")],
)
def test_money_shows_cents_and_every_decimal_the_amount_needs(usd: float, shown: str) -> None:
    from durable_agents._domain.money import format_usd

    assert format_usd(usd) == shown


def test_local_tools_are_cheap_ones_and_every_tool_heartbeats_by_default() -> None:
    from durable_agents._domain.tools import DEFAULT_HEARTBEAT_TIMEOUT_S, SideEffect
    from durable_agents._workflows.activity_options import local_tool_options, tool_options

    quick = ToolSpec(name="quick", description="A cheap read.", local=True)
    assert quick.heartbeat_timeout_s == DEFAULT_HEARTBEAT_TIMEOUT_S
    ids: dict[str, Any] = {"activity_id": "t1", "summary": "tool: quick"}
    assert "heartbeat_timeout" not in local_tool_options(quick, **ids)
    assert tool_options(quick, **ids)["heartbeat_timeout"] == timedelta(seconds=5)
    for refused in (
        {"side_effect": SideEffect.IRREVERSIBLE},  # needs approval by default
        {"requires_approval": True},
        {"task_queue": "rate-limited"},
    ):
        with pytest.raises(ValidationError, match="cannot be local"):
            ToolSpec(name="quick", description="A cheap read.", local=True, **refused)
    # Runs recorded before the lean-steps patch: a heartbeat timeout only where the spec
    # recorded one (the field had no default then).
    recorded = ToolSpec.model_validate({"name": "old", "description": "Recorded."})
    assert "heartbeat_timeout" not in tool_options(recorded, **ids, lean=False)
    explicit = ToolSpec.model_validate(
        {"name": "old", "description": "Recorded.", "heartbeat_timeout_s": 2.0}
    )
    assert tool_options(explicit, **ids, lean=False)["heartbeat_timeout"] == timedelta(seconds=2)
