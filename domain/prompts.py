"""The prompts a run sends, built as pure functions of run state.

The workflow builds every prompt itself so it can bound its size (and so its cost)
before the call. Observations are given as JSON lines: a real model reads them as
easily as prose, and the deterministic offline model can parse them. Prompts are built
from `Part`s so that what repeats from one prompt to the next can travel by reference.
"""

import json
from typing import Any

from durable_agents._domain.evaluation import EVAL_FORMAT
from durable_agents._domain.llm import Message, Part
from durable_agents._domain.plan import Plan
from durable_agents._domain.run import Outcome, StepRecord
from durable_agents._domain.spec import AgentSpec

PLAN_FORMAT = """Reply with one JSON object and nothing else:
{"rationale": str, "done": bool, "tasks": [{"id": str, "kind": "tool"|"llm"|"subagent",
 "tool": str|null, "args": object, "prompt": str|null, "depends_on": [str],
 "critical": bool, "success_criteria": [str], "confidence": number 0..1}]}
Tasks without dependencies between them run in parallel. Set "done": true when the
listed tasks are the last ones needed (or when "tasks" is empty because the goal is met)."""

REFRESH_NOTE = """Tools named server__tool come from MCP servers, whose tools can change
while you work. Add "refresh_tools": true to a plan to have them listed again before your
next plan (with no tasks, if you only want the new list)."""

OBSERVATIONS_HEADER = "OBSERVATIONS (JSON lines, oldest first):"
PROBLEMS_HEADER = "PROBLEMS TO FIX IN YOUR NEXT PLAN:"
SUMMARY_FAILURES = 6  # failed steps past the observation window the summary names


def _tool_lines(spec: AgentSpec) -> str:
    lines = []
    for tool in spec.tools:
        props = tool.args_schema.get("properties", {})
        args = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in props.items())
        lines.append(f"- {tool.name}({args}) [{tool.side_effect.value}]: {tool.description}")
    return "\n".join(lines) or "(no tools)"


def observation_line(step: StepRecord) -> str:
    """One step as a line of JSON (a large output shown by its preview)."""
    item: dict[str, Any] = {"task": step.task_id, "call": step.label, "outcome": step.outcome.value}
    if step.output_ref is not None:
        item["output_preview"] = step.output_preview
    elif step.output is not None:
        item["output"] = step.output
    if step.why:
        item["why"] = step.why
    return json.dumps(item, ensure_ascii=False, sort_keys=True, default=str) + "\n"


def observation_json(steps: list[StepRecord]) -> str:
    """The steps as JSON lines, as the prompts show them."""
    return "".join(observation_line(s) for s in steps)


def _stable_then_observations(head: str, steps: list[StepRecord]) -> list[Part]:
    """What a run's prompts of one kind share, then one part per observation in the window.

    All kept and consecutive, so the next prompt of the kind sends this as two references
    (the head; the window minus its oldest step, stored as a suffix) plus its new steps.
    What changes from one prompt to the next goes after it.
    """
    return [
        Part(text=f"{head}{OBSERVATIONS_HEADER}\n", keep=True),
        *(Part(text=observation_line(s), keep=True) for s in steps),
    ]


def _system(spec: AgentSpec) -> Message:
    return Message(role="system", parts=[Part(text=spec.system_prompt, keep=True)])


def _user(parts: list[Part]) -> Message:
    return Message(role="user", parts=[p for p in parts if p.text])


def planner_messages(
    spec: AgentSpec,
    goal: str,
    steps: list[StepRecord],
    summary: str,
    problems: list[str],
    iteration: int,
) -> list[Message]:
    """Messages asking the planner for the next plan.

    What stays the same from one plan to the next (goal, tools, format, observations
    still in the window) comes first; the iteration, summary and problems last.
    """
    window = steps[-spec.limits.observation_window :]
    tail = f"\nITERATION: {iteration}\n"
    if summary:
        tail += f"\nSUMMARY OF EARLIER WORK: {summary}\n"
    if problems:
        tail += "\n" + PROBLEMS_HEADER + "\n" + "\n".join(f"- {p}" for p in problems) + "\n"
    plan_format = f"{PLAN_FORMAT}\n{REFRESH_NOTE}" if spec.mcp_servers else PLAN_FORMAT
    head = f"GOAL: {goal}\n\nTOOLS:\n{_tool_lines(spec)}\n\n{plan_format}\n\n"
    return [_system(spec), _user([*_stable_then_observations(head, window), Part(text=tail)])]


def task_messages(
    spec: AgentSpec, goal: str, prompt: str, steps: list[StepRecord]
) -> list[Message]:
    """Messages for an ``llm`` task of the plan."""
    window = steps[-spec.limits.observation_window :]
    parts = [
        *_stable_then_observations(f"GOAL: {goal}\n\n", window),
        Part(text=f"\nTASK: {prompt}"),
    ]
    return [_system(spec), _user(parts)]


def answer_messages(
    spec: AgentSpec, goal: str, steps: list[StepRecord], summary: str, plan: Plan | None
) -> list[Message]:
    """Messages asking for the final answer to the goal."""
    window = steps[-spec.limits.observation_window :]
    rationale = plan.rationale if plan else ""
    tail = (f"\nSUMMARY OF EARLIER WORK: {summary}\n" if summary else "") + (
        f"\nLAST PLAN RATIONALE: {rationale}\n" if rationale else ""
    )
    tail += (
        "\nWrite the final answer for the user: what was done, the results, and "
        "anything left undone. Plain text."
    )
    parts = [*_stable_then_observations(f"GOAL: {goal}\n\n", window), Part(text=tail)]
    return [_system(spec), _user(parts)]


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


def running_summary(
    steps: list[StepRecord],
    window: int,
    earlier: dict[str, int] | None = None,
    earlier_failures: list[str] | None = None,
) -> str:
    """A deterministic digest of the steps that fell out of the observation window.

    Counts by outcome, and names the most recent steps that did not succeed (what the
    planner must not try again blindly). ``earlier`` and ``earlier_failures`` are those
    of the steps no longer listed at all (left behind at continue-as-new). Built without
    a model call, so it costs nothing and replays identically.
    """
    older = steps[:-window] if len(steps) > window else []
    counts = dict(earlier or {})
    for s in older:
        counts[s.outcome.value] = counts.get(s.outcome.value, 0) + 1
    total = sum(counts.values())
    if not total:
        return ""
    tally = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    failed = [*(earlier_failures or []), *failure_labels(older)][-SUMMARY_FAILURES:]
    return f"{total} earlier steps ({tally})." + (
        f" Failed before: {'; '.join(failed)}" if failed else ""
    )


def failure_labels(steps: list[StepRecord]) -> list[str]:
    """``label=outcome`` of the steps that did not succeed."""
    return [f"{s.label}={s.outcome.value}" for s in steps if s.outcome is not Outcome.OK]


def parse_observations(text: str) -> list[dict[str, Any]]:
    """Recover the observations from a prompt built here (for the offline model)."""
    start = text.find(OBSERVATIONS_HEADER)
    if start < 0:
        return []
    found: list[dict[str, Any]] = []
    for line in text[start + len(OBSERVATIONS_HEADER) :].lstrip("\n").split("\n"):
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            break  # the block ends at the first line that is not an observation
        if not isinstance(parsed, dict):
            break
        found.append(parsed)
    return found
