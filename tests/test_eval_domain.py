"""The pure parts of evaluations: datasets, answer checks, statistics and the gate."""

import pytest

from durable_agents._domain.eval_cases import DatasetError, parse_dataset
from durable_agents._domain.eval_checks import check_answer
from durable_agents._domain.eval_report import (
    CaseResult,
    build_report,
    percentile,
    regressions,
    wilson,
)

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
