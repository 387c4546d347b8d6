"""Regression from recorded runs: what a run did before, against what it does now.

A finished run's model replies are replayed to the current code (so the model is not a
cause of any difference); what differs then comes from the code: a tool called with other
arguments or with another outcome, a write whose result changed, a different answer, an
approval asked for that was not before (or no longer), a different status or cost.
"""

from collections.abc import Collection
from enum import StrEnum

from pydantic import BaseModel

from durable_agents._domain.eval_checks import tool_name
from durable_agents._domain.plan import TaskKind
from durable_agents._domain.run import RunReport, StepRecord


class RecordedReply(BaseModel):
    """One model reply as a run recorded it, in the order the run received them, with
    the call it answered (its label: ``plan #2``, ``evaluate t1``; unique among calls
    that run at the same time)."""

    purpose: str
    label: str = ""
    text: str
    input_tokens: int = 0
    output_tokens: int = 0


class DifferenceKind(StrEnum):
    """What changed between the recorded run and its re-run."""

    STATUS = "status"
    TOOL_CALL = "tool_call"  # called with other arguments, or not at all, or a new one
    TOOL_OUTCOME = "tool_outcome"
    EFFECT = "effect"  # a write or irreversible call returned something else
    ANSWER = "answer"
    APPROVAL = "approval"
    COST = "cost"


class Difference(BaseModel):
    """One difference, said in words."""

    kind: DifferenceKind
    detail: str


class RegressionResult(BaseModel):
    """A recorded run, re-run against the current code."""

    workflow_id: str
    rerun_workflow_id: str = ""
    differences: list[Difference] = []
    error: str = ""


def _tool_steps(report: RunReport) -> list[StepRecord]:
    """Tool steps by iteration and task id: tasks of one wave finish in any order."""
    steps = [s for s in report.steps if s.kind is TaskKind.TOOL]
    return sorted(steps, key=lambda s: (s.iteration, s.task_id))


def _calls(before: RunReport, after: RunReport, writes: Collection[str]) -> list[Difference]:
    found: list[Difference] = []
    old, new = _tool_steps(before), _tool_steps(after)
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else None
        b = new[i] if i < len(new) else None
        if a is None or b is None:
            step = a or b
            assert step is not None
            when = "no longer" if b is None else "now"
            found.append(
                Difference(kind=DifferenceKind.TOOL_CALL, detail=f"{when} calls {step.label}")
            )
        elif a.label != b.label:
            found.append(
                Difference(
                    kind=DifferenceKind.TOOL_CALL,
                    detail=f"called {b.label} where it called {a.label}",
                )
            )
        elif a.outcome is not b.outcome:
            why = f": {b.why}" if b.why else ""
            found.append(
                Difference(
                    kind=DifferenceKind.TOOL_OUTCOME,
                    detail=f"{b.label} ended {b.outcome.value}, was {a.outcome.value}{why}",
                )
            )
        elif tool_name(a.label) in writes and a.output != b.output:
            found.append(
                Difference(
                    kind=DifferenceKind.EFFECT,
                    detail=f"{b.label} returned {b.output!r}, was {a.output!r}",
                )
            )
    return found


def _approvals(before: RunReport, after: RunReport) -> list[Difference]:
    old = [r.what for r in before.approvals]
    new = [r.what for r in after.approvals]
    found = [
        Difference(kind=DifferenceKind.APPROVAL, detail=f"asks for approval of {w} (new)")
        for w in new
        if w not in old
    ]
    found += [
        Difference(kind=DifferenceKind.APPROVAL, detail=f"no longer asks approval of {w}")
        for w in old
        if w not in new
    ]
    return found


def compare_runs(
    before: RunReport, after: RunReport, writes: Collection[str] = ()
) -> list[Difference]:
    """How ``after`` differs from ``before``; the outputs of ``writes`` (tool names) are
    compared too (reads are not: a timing or a listing may differ from run to run)."""
    found: list[Difference] = []
    if before.status is not after.status:
        why = f" ({after.errors[-1]})" if after.errors else ""
        found.append(
            Difference(
                kind=DifferenceKind.STATUS,
                detail=f"ended {after.status.value}, was {before.status.value}{why}",
            )
        )
    found += _calls(before, after, writes)
    found += _approvals(before, after)
    if before.answer.strip() != after.answer.strip():
        found.append(
            Difference(
                kind=DifferenceKind.ANSWER,
                detail=f"answered {after.answer[:120]!r}, was {before.answer[:120]!r}",
            )
        )
    if before.usage.cost_micros != after.usage.cost_micros:
        found.append(
            Difference(
                kind=DifferenceKind.COST,
                detail=f"cost ${after.usage.cost_usd:.6f}, was ${before.usage.cost_usd:.6f}",
            )
        )
    return found
