"""The prompts a run sends, built as pure functions of run state.

The workflow builds every prompt itself so it can bound its size (and so its cost)
before the call. Observations are given as a JSON block: a real model reads it as
easily as prose, and the deterministic offline model can parse it.
"""

import json
from typing import Any

from domain.evaluation import EVAL_FORMAT
from domain.llm import Message
from domain.plan import Plan
from domain.run import StepRecord
from domain.spec import AgentSpec

PLAN_FORMAT = """Reply with one JSON object and nothing else:
{"rationale": str, "done": bool, "tasks": [{"id": str, "kind": "tool"|"llm"|"subagent",
 "tool": str|null, "args": object, "prompt": str|null, "depends_on": [str],
 "critical": bool, "success_criteria": [str], "confidence": number 0..1}]}
Tasks without dependencies between them run in parallel. Set "done": true when the
listed tasks are the last ones needed (or when "tasks" is empty because the goal is met)."""

OBSERVATIONS_HEADER = "OBSERVATIONS (JSON, oldest first):"
PROBLEMS_HEADER = "PROBLEMS TO FIX IN YOUR NEXT PLAN:"


def _tool_lines(spec: AgentSpec) -> str:
    lines = []
    for tool in spec.tools:
        props = tool.args_schema.get("properties", {})
        args = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in props.items())
        lines.append(f"- {tool.name}({args}) [{tool.side_effect.value}]: {tool.description}")
    return "\n".join(lines) or "(no tools)"


def observation_json(steps: list[StepRecord]) -> str:
    """The last steps as a compact JSON array (large outputs shown by their preview)."""
    items: list[dict[str, Any]] = []
    for s in steps:
        item: dict[str, Any] = {"task": s.task_id, "call": s.label, "outcome": s.outcome.value}
        if s.output_ref is not None:
            item["output_preview"] = s.output_ref.preview
        elif s.output is not None:
            item["output"] = s.output
        if s.why:
            item["why"] = s.why
        items.append(item)
    return json.dumps(items, ensure_ascii=False, sort_keys=True, default=str)


def planner_messages(
    spec: AgentSpec,
    goal: str,
    steps: list[StepRecord],
    summary: str,
    problems: list[str],
    iteration: int,
) -> list[Message]:
    """Messages asking the planner for the next plan."""
    window = steps[-spec.limits.observation_window :]
    parts = [
        f"GOAL: {goal}",
        f"ITERATION: {iteration}",
        f"TOOLS:\n{_tool_lines(spec)}",
    ]
    if summary:
        parts.append(f"SUMMARY OF EARLIER WORK: {summary}")
    parts.append(f"{OBSERVATIONS_HEADER}\n{observation_json(window)}")
    if problems:
        parts.append(PROBLEMS_HEADER + "\n" + "\n".join(f"- {p}" for p in problems))
    parts.append(PLAN_FORMAT)
    return [
        Message(role="system", text=spec.system_prompt),
        Message(role="user", text="\n\n".join(parts)),
    ]


def task_messages(
    spec: AgentSpec, goal: str, prompt: str, steps: list[StepRecord]
) -> list[Message]:
    """Messages for an ``llm`` task of the plan."""
    window = steps[-spec.limits.observation_window :]
    return [
        Message(role="system", text=spec.system_prompt),
        Message(
            role="user",
            text=f"GOAL: {goal}\n\n{OBSERVATIONS_HEADER}\n{observation_json(window)}\n\n"
            f"TASK: {prompt}",
        ),
    ]


def answer_messages(
    spec: AgentSpec, goal: str, steps: list[StepRecord], summary: str, plan: Plan | None
) -> list[Message]:
    """Messages asking for the final answer to the goal."""
    window = steps[-spec.limits.observation_window :]
    rationale = plan.rationale if plan else ""
    text = (
        f"GOAL: {goal}\n\n"
        + (f"SUMMARY OF EARLIER WORK: {summary}\n\n" if summary else "")
        + (f"LAST PLAN RATIONALE: {rationale}\n\n" if rationale else "")
        + f"{OBSERVATIONS_HEADER}\n{observation_json(window)}\n\n"
        "Write the final answer for the user: what was done, the results, and anything "
        "left undone. Plain text."
    )
    return [Message(role="system", text=spec.system_prompt), Message(role="user", text=text)]


def evaluation_messages(
    spec: AgentSpec, goal: str, label: str, output: Any, criteria: list[str]
) -> list[Message]:
    """Messages asking the evaluation model whether a task's output meets its criteria."""
    shown = json.dumps(output, ensure_ascii=False, sort_keys=True, default=str)[:4000]
    text = (
        f"GOAL: {goal}\nTASK: {label}\nCRITERIA:\n"
        + "\n".join(f"- {c}" for c in criteria)
        + f"\nOUTPUT: {shown}\n\n{EVAL_FORMAT}"
    )
    return [
        Message(role="system", text="You check whether a task's output meets its criteria."),
        Message(role="user", text=text),
    ]


def running_summary(steps: list[StepRecord], window: int) -> str:
    """A deterministic digest of the steps that fell out of the observation window.

    Built without a model call, so it costs nothing and replays identically.
    """
    older = steps[:-window] if len(steps) > window else []
    if not older:
        return ""
    counts: dict[str, int] = {}
    for s in older:
        counts[s.outcome.value] = counts.get(s.outcome.value, 0) + 1
    tally = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    recent = "; ".join(f"{s.label}={s.outcome.value}" for s in older[-12:])
    return f"{len(older)} earlier steps ({tally}). Most recent of them: {recent}"


def parse_observations(text: str) -> list[dict[str, Any]]:
    """Recover the observation list from a prompt built here (for the offline model)."""
    start = text.find(OBSERVATIONS_HEADER)
    if start < 0:
        return []
    line = text[start + len(OBSERVATIONS_HEADER) :].lstrip("\n").split("\n", 1)[0]
    try:
        parsed = json.loads(line)
    except json.JSONDecodeError:
        return []
    return [o for o in parsed if isinstance(o, dict)] if isinstance(parsed, list) else []
