"""Checking one run's report against its case: status, answer, tool calls, state.

A tool counts as called when its step ran at least one attempt: a call refused by a
person or the policy, stopped as a loop, or only recorded by a shadow run was not
called. State checks run elsewhere (they need the worker's data); their failures come
in as text and are classed here with the rest.
"""

import contextlib
import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from durable_agents._domain.eval_cases import EvalCase
from durable_agents._domain.evaluation import deterministic_check
from durable_agents._domain.plan import TaskKind
from durable_agents._domain.run import Outcome, RunReport

SHADOW_PREFIX = "shadow run: would have called "


class FailureClass(StrEnum):
    """Why a case failed, as the report counts failures."""

    ERROR = "error"  # the run could not be started or waited for
    STATUS = "status"
    ANSWER = "answer"
    TOOL_MISSING = "tool_missing"
    TOOL_FORBIDDEN = "tool_forbidden"
    STATE = "state"


class CheckFailure(BaseModel):
    """One check that did not hold, and what was seen instead."""

    kind: FailureClass
    detail: str


def tool_name(label: str) -> str:
    """``create_index`` of ``create_index(orders.customer_id)``."""
    return label.partition("(")[0]


def called(report: RunReport) -> list[str]:
    """The tool calls the run made (labels), in order."""
    return [s.label for s in report.steps if s.kind is TaskKind.TOOL and s.attempts > 0]


def would_have_called(report: RunReport) -> list[str]:
    """The calls a shadow run recorded instead of making them."""
    return [
        s.label
        for s in report.steps
        if s.outcome is Outcome.SKIPPED and (s.why or "").startswith(SHADOW_PREFIX)
    ]


def _matches(check: str, labels: list[str]) -> bool:
    return any(check == label or check == tool_name(label) for label in labels)


def check_answer(answer: str, checks: list[str]) -> list[str]:
    """Failures of the answer checks (the plan checks, on the answer as JSON when it is)."""
    failures: list[str] = []
    plan_checks: list[str] = []
    for check in checks:
        name, _, arg = check.strip().partition(":")
        if name == "contains" and arg.lower() not in answer.lower():
            failures.append(f"the answer does not contain {arg!r}")
        elif name == "not_contains" and arg.lower() in answer.lower():
            failures.append(f"the answer contains {arg!r}")
        elif name not in ("contains", "not_contains"):
            plan_checks.append(check)
    output: Any = answer
    with contextlib.suppress(ValueError):
        output = json.loads(answer)
    return failures + deterministic_check(output, plan_checks).failures


def check_report(
    case: EvalCase, report: RunReport, state_failures: list[str]
) -> list[CheckFailure]:
    """Every check of ``case`` that ``report`` (and the state) does not meet."""
    expect = case.expect
    found: list[CheckFailure] = []
    if expect.status is not None and report.status is not expect.status:
        why = f": {report.errors[-1]}" if report.errors else ""
        found.append(
            CheckFailure(
                kind=FailureClass.STATUS,
                detail=f"status {report.status.value}, expected {expect.status.value}{why}",
            )
        )
    found += [
        CheckFailure(kind=FailureClass.ANSWER, detail=d)
        for d in check_answer(report.answer, expect.answer)
    ]
    calls = called(report)
    found += [
        CheckFailure(kind=FailureClass.TOOL_MISSING, detail=f"{c} was not called")
        for c in expect.tools_called
        if not _matches(c, calls)
    ]
    found += [
        CheckFailure(kind=FailureClass.TOOL_FORBIDDEN, detail=f"{c} was called")
        for c in expect.tools_not_called
        if _matches(c, calls)
    ]
    found += [CheckFailure(kind=FailureClass.STATE, detail=d) for d in state_failures]
    return found
