"""Deterministic evaluation of a task's output against its success criteria.

Criteria the code can check are checked here: ``non_empty``, ``has:<field>``,
``equals:<field>=<value>``, ``max_len:<n>``. Anything else needs judgement and is left
to the evaluation model; `deterministic_check` returns those criteria separately.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from durable_agents._domain.llm import LlmResult


@dataclass
class Verdict:
    """Failures found by code, and the criteria that still need a model's judgement."""

    failures: list[str] = field(default_factory=list)
    needs_judgement: list[str] = field(default_factory=list)


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def deterministic_check(output: Any, criteria: list[str]) -> Verdict:
    """Check what code can check; collect the rest for the evaluation model."""
    verdict = Verdict()
    for raw in criteria:
        crit = raw.strip()
        name, _, arg = crit.partition(":")
        if name == "non_empty":
            if _is_empty(output):
                verdict.failures.append("output is empty")
        elif name == "has":
            if not (isinstance(output, dict) and arg in output):
                verdict.failures.append(f"output has no field '{arg}'")
        elif name == "equals":
            key, _, expected = arg.partition("=")
            if not (isinstance(output, dict) and key in output):
                verdict.failures.append(f"output has no field '{key}'")
                continue
            actual = output[key]
            if str(actual) != expected:
                verdict.failures.append(f"field '{key}' is {actual!r}, expected {expected!r}")
        elif name == "max_len" and arg.isdigit():
            if len(str(output)) > int(arg):
                verdict.failures.append(f"output longer than {arg} characters")
        else:
            verdict.needs_judgement.append(crit)
    return verdict


class Judgement(StrEnum):
    """The evaluation model's verdict on criteria that need judgement."""

    OK = "ok"
    SOFT = "soft"
    HARD = "hard"
    CRITICAL = "critical"


class EvalReply(BaseModel):
    """Output of the ``evaluate`` activity."""

    judgement: Judgement
    reason: str = ""
    result: LlmResult


EVAL_FORMAT = (
    'Reply with one JSON object: {"judgement": "ok"|"soft"|"hard"|"critical", '
    '"reason": str}. ok: every criterion is met. soft: a minor shortfall, carry on. '
    "hard: not met, the plan must change. critical: continuing would cause harm."
)
