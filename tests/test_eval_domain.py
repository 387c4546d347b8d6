"""The pure parts of evaluations: datasets, answer checks, statistics and the gate."""

from datetime import UTC, datetime
from typing import Any

import pytest

from durable_agents._domain.approvals import ApprovalKind, ApprovalRequest, OnTimeout
from durable_agents._domain.budget import Budget, Usage
from durable_agents._domain.eval_cases import DatasetError, parse_dataset
from durable_agents._domain.eval_checks import check_answer
from durable_agents._domain.eval_regression import DifferenceKind, compare_runs
from durable_agents._domain.eval_report import (
    CaseResult,
    build_report,
    percentile,
    regressions,
    wilson,
)
from durable_agents._domain.plan import TaskKind
from durable_agents._domain.run import Outcome, RunReport, RunRequest, RunStatus, StepRecord

pytestmark = pytest.mark.unit


def test_wilson_matches_the_textbook_values() -> None:
    # 8 of 10 at 95%: 0.490 to 0.943 (Wilson 1927; Newcombe 1998, table I).
    i = wilson(8, 10)
    assert (round(i.low, 3), round(i.high, 3)) == (0.49, 0.943)
    assert wilson(10, 10).high == 1.0 and wilson(0, 10).low == 0.0
    assert wilson(0, 0).model_dump() == {"low": 0.0, "high": 1.0}


def test_percentiles_are_nearest_rank() -> None:
    walls = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(walls, 50) == 3.0 and percentile(walls, 95) == 5.0
    assert percentile([], 50) == 0.0


def _results(variant: str, passed: int, n: int) -> list[CaseResult]:
    return [CaseResult(case_id=f"c{i}", variant=variant, passed=i < passed) for i in range(n)]


def test_the_gate_holds_variants_against_the_first_or_the_baseline() -> None:
    report = build_report("d", ["a", "b"], _results("a", 9, 10) + _results("b", 8, 10))
    assert regressions(report, None, 0.1) == []
    (drop,) = regressions(report, None, 0.05)
    assert (drop.variant, drop.baseline) == ("b", "a")
    before = build_report("d", ["b"], _results("b", 10, 10))
    # "a" is not in the baseline: it is held against the baseline's first variant.
    assert [r.variant for r in regressions(report, before, 0.15)] == ["b"]
    assert [r.variant for r in regressions(report, before, 0.0)] == ["a", "b"]


def test_answer_checks_reuse_the_plan_checks() -> None:
    assert check_answer('{"index": "idx"}', ["has:index", "equals:index=idx"]) == []
    assert check_answer("plain", ["has:index"]) == ["output has no field 'index'"]
    assert check_answer("Made q1 fast", ["contains:Q1", "not_contains:error"]) == []
    assert check_answer("", ["non_empty", "max_len:3"]) == ["output is empty"]


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ('{"cases": []}', "cases: List should have at least 1 item"),
        (
            '{"cases": [{"id": "a", "agent": "x", "goal": "g"}, {"id": "a", "agent": "x", '
            '"goal": "g"}]}',
            "each case id must be unique; repeated: a",
        ),
        (
            '{"cases": [{"id": "a", "agent": "x", "goal": "g", '
            '"expect": {"answer": ["max_len"]}}]}',
            "needs a number: max_len:2000",
        ),
        ('{"cases": [{"id": "a", "agent": "x", "goal": "g", "spec": {}}]}', "cases.0.spec"),
    ],
)
def test_a_bad_dataset_names_each_problem(dataset: str, message: str) -> None:
    with pytest.raises(DatasetError, match="the dataset has problems") as caught:
        parse_dataset(dataset)
    assert message in str(caught.value)


def test_toml_datasets_load() -> None:
    ds = parse_dataset(
        'name = "t"\n[[cases]]\nid = "a"\nagent = "db-tuner"\ngoal = "go"\n'
        '[cases.expect]\ntools_called = ["explain_query"]\n',
        toml=True,
    )
    assert ds.cases[0].expect.tools_called == ["explain_query"]
    assert [v.name for v in ds.variants] == ["current"]


def _report(steps: list[StepRecord], **fields: Any) -> RunReport:
    base: dict[str, Any] = {
        "workflow_id": "run-x",
        "request_id": "x",
        "agent": "db-tuner",
        "goal": "g",
        "user": "u",
        "status": RunStatus.COMPLETED,
        "answer": "done",
        "steps": steps,
        "usage": Usage(cost_micros=100),
        "budget": Budget(),
        "iterations": 1,
        "replans": 0,
    }
    return RunReport.model_validate({**base, **fields})


def _step(
    task_id: str, label: str, outcome: Outcome = Outcome.OK, output: Any = None
) -> StepRecord:
    return StepRecord(
        iteration=1,
        task_id=task_id,
        kind=TaskKind.TOOL,
        label=label,
        outcome=outcome,
        attempts=1,
        output=output,
    )


def _request(what: str) -> ApprovalRequest:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return ApprovalRequest(
        id="a1",
        kind=ApprovalKind.TOOL,
        tool="drop_index",
        args_digest="d",
        what=what,
        why="irreversible",
        risk="irreversible",
        requested_at=now,
        deadline=now,
        on_timeout=OnTimeout.DENY,
    )


def test_a_rerun_that_does_the_same_shows_no_difference() -> None:
    steps = [_step("b", "analyze()", output={"ok": 1}), _step("a", "explain_query(q)")]
    # Tasks of one wave finish in any order: steps are matched by iteration and task id.
    assert compare_runs(_report(steps), _report(list(reversed(steps))), {"analyze"}) == []


def test_each_kind_of_difference_is_named() -> None:
    before = _report(
        [
            _step("a", "create_index(orders, …)", output={"index": "idx_a"}),
            _step("b", "time_query(q)", output={"ms": 1}),
            _step("c", "analyze()"),
            _step("d", "explain_query(q)"),
        ],
        approvals=[_request("drop_index(idx_old)")],
    )
    after = _report(
        [
            _step("a", "create_index(orders, …)", output={"index": "ix_a"}),
            _step("b", "time_query(q)", output={"ms": 9}),  # a read: its output may differ
            _step("c", "analyze()", Outcome.HARD),
            _step("d", "explain_query(other)"),
            _step("e", "drop_index(idx_x)"),
        ],
        status=RunStatus.FAILED,
        answer="another",
        usage=Usage(cost_micros=200),
        approvals=[_request("drop_index(idx_x)")],
    )
    found: dict[DifferenceKind, list[str]] = {}
    for d in compare_runs(before, after, {"create_index", "analyze"}):
        found.setdefault(d.kind, []).append(d.detail)
    assert set(found) == set(DifferenceKind)
    (effect,) = found[DifferenceKind.EFFECT]  # the read's different output is no difference
    assert effect.startswith("create_index(orders, …) returned {'index': 'ix_a'}")
    assert found[DifferenceKind.TOOL_OUTCOME] == ["analyze() ended hard, was ok"]
    assert found[DifferenceKind.TOOL_CALL] == [
        "called explain_query(other) where it called explain_query(q)",
        "now calls drop_index(idx_x)",
    ]
    assert found[DifferenceKind.APPROVAL] == [
        "asks for approval of drop_index(idx_x) (new)",
        "no longer asks approval of drop_index(idx_old)",
    ]
    assert found[DifferenceKind.STATUS] == ["ended failed, was completed"]
    assert found[DifferenceKind.COST] == ["cost $0.000200, was $0.000100"]
    assert found[DifferenceKind.ANSWER] == ["answered 'another', was 'done'"]


def test_long_names_never_share_a_request_id() -> None:
    from durable_agents._client.evals import EvalRunner
    from durable_agents._domain.eval_cases import EvalCase, Variant

    runner = EvalRunner(None, "q")  # type: ignore[arg-type]  # no call reaches Temporal
    variant = Variant(name="v" * 64)
    ids = {
        runner.request_id(variant, EvalCase(id="c" * 60 + suffix, agent="a", goal="g"))
        for suffix in ("1", "2")
    }
    assert len(ids) == 2 and all(len(i) <= 128 for i in ids)
    assert all(RunRequest(request_id=i, goal="g") for i in ids)  # valid request ids
