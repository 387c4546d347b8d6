"""What an evaluation found: each case's result, each variant's figures, the CI gate.

Success rates carry a Wilson score interval (95%): with ten cases, 9/10 is "somewhere
between 60% and 98%", and a report that said 90% would claim more than it knows. Wall
times are nearest-rank percentiles of the measured runs.
"""

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from durable_agents._domain.eval_checks import CheckFailure
from durable_agents._domain.run import RunStatus

Z_95 = 1.959964


class CaseResult(BaseModel):
    """One case run under one variant."""

    case_id: str
    variant: str
    workflow_id: str = ""
    status: RunStatus | None = Field(default=None, description="None: the run never ended.")
    passed: bool
    failures: list[CheckFailure] = []
    cost_usd: float = 0.0
    tokens: int = 0
    steps: int = 0
    wall_s: float = 0.0
    approvals: int = 0
    answer: str = ""
    calls: list[str] = Field(default=[], description="Tool calls the run made.")
    would_have_called: list[str] = Field(default=[], description="Shadow runs only.")


class Interval(BaseModel):
    """A proportion's confidence interval."""

    low: float
    high: float


class VariantSummary(BaseModel):
    """One variant's figures over every case."""

    variant: str
    cases: int
    passed: int
    success_rate: float
    interval: Interval
    cost_usd: float
    tokens: int
    steps: int
    wall_p50_s: float
    wall_p95_s: float
    approvals: int
    failures_by_class: dict[str, int]


class ShadowComparison(BaseModel):
    """A case's shadow run beside its live run: the same calls planned? the same answer?"""

    case_id: str
    shadow: str
    live: str
    same_plan: bool
    only_live: list[str] = Field(default=[], description="Calls the live run made, not planned.")
    only_shadow: list[str] = Field(default=[], description="Calls only the shadow run planned.")
    same_answer: bool


class EvalReport(BaseModel):
    """An evaluation: per-variant summaries (in the dataset's order) and every result."""

    dataset: str
    summaries: list[VariantSummary]
    results: list[CaseResult]
    shadow: list[ShadowComparison] = []

    def summary(self, variant: str) -> VariantSummary | None:
        """The summary of ``variant``, if it ran."""
        return next((s for s in self.summaries if s.variant == variant), None)


def wilson(successes: int, n: int, z: float = Z_95) -> Interval:
    """The Wilson score interval of ``successes`` out of ``n`` (all of [0, 1] when n = 0)."""
    if n == 0:
        return Interval(low=0.0, high=1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Rounded, so 10 of 10 reads as reaching 1.0 rather than 0.9999999999999999.
    return Interval(low=round(max(0.0, centre - half), 6), high=round(min(1.0, centre + half), 6))


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(variant: str, results: Sequence[CaseResult]) -> VariantSummary:
    """The figures of ``variant`` over its results."""
    mine = [r for r in results if r.variant == variant]
    passed = sum(r.passed for r in mine)
    classes = Counter(f.kind.value for r in mine for f in r.failures)
    walls = [r.wall_s for r in mine if r.status is not None]
    return VariantSummary(
        variant=variant,
        cases=len(mine),
        passed=passed,
        success_rate=passed / len(mine) if mine else 0.0,
        interval=wilson(passed, len(mine)),
        cost_usd=round(sum(r.cost_usd for r in mine), 6),
        tokens=sum(r.tokens for r in mine),
        steps=sum(r.steps for r in mine),
        wall_p50_s=percentile(walls, 50),
        wall_p95_s=percentile(walls, 95),
        approvals=sum(r.approvals for r in mine),
        failures_by_class=dict(sorted(classes.items())),
    )


def build_report(
    dataset: str,
    variants: Sequence[str],
    results: Sequence[CaseResult],
    shadows: Mapping[str, str] | None = None,
) -> EvalReport:
    """The report of an evaluation, variants in the order given; ``shadows`` maps each
    shadow variant to the live variant it is compared with."""
    return EvalReport(
        dataset=dataset,
        summaries=[summarize(v, results) for v in variants],
        results=list(results),
        shadow=[
            c
            for shadow, live in (shadows or {}).items()
            for c in compare_shadow(results, shadow, live)
        ],
    )


def compare_shadow(results: Sequence[CaseResult], shadow: str, live: str) -> list[ShadowComparison]:
    """Each case's shadow run against its live run (cases both ran)."""
    lives = {r.case_id: r for r in results if r.variant == live}
    found: list[ShadowComparison] = []
    for s in (r for r in results if r.variant == shadow and r.case_id in lives):
        planned = Counter(s.calls + s.would_have_called)
        made = Counter(lives[s.case_id].calls)
        found.append(
            ShadowComparison(
                case_id=s.case_id,
                shadow=shadow,
                live=live,
                same_plan=planned == made,
                only_live=sorted((made - planned).elements()),
                only_shadow=sorted((planned - made).elements()),
                same_answer=s.answer.strip() == lives[s.case_id].answer.strip(),
            )
        )
    return found


class Regression(BaseModel):
    """A variant whose success rate fell further than the gate allows."""

    variant: str
    baseline: str
    baseline_rate: float
    rate: float

    def describe(self) -> str:
        """One line for the terminal and CI logs."""
        return (
            f"{self.variant}: success {self.rate:.0%} vs {self.baseline_rate:.0%} "
            f"for {self.baseline} (a drop of {self.baseline_rate - self.rate:.0%})"
        )


def regressions(
    report: EvalReport, baseline: EvalReport | None, max_regression: float
) -> list[Regression]:
    """Variants whose success rate dropped more than ``max_regression`` (0.05 = 5 points).

    Each variant is held against the baseline report's variant of the same name, else its
    first variant; without a baseline report, against this report's first variant.
    """
    reference = baseline or report
    found: list[Regression] = []
    for s in report.summaries:
        ref = reference.summary(s.variant) if baseline is not None else None
        ref = ref or reference.summaries[0]
        if ref is s:
            continue
        if ref.success_rate - s.success_rate > max_regression + 1e-9:
            found.append(
                Regression(
                    variant=s.variant,
                    baseline=ref.variant,
                    baseline_rate=ref.success_rate,
                    rate=s.success_rate,
                )
            )
    return found
