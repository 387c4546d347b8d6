"""The plan: a validated graph of tasks the planner proposes.

Validation is pure code: known tools, arguments valid against each tool's schema, unique
ids, dependencies that exist and form no cycle, and a permission check per call. An
invalid plan is never executed; its problems go back to the planner.
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from durable_agents._domain import schema_check
from durable_agents._domain.compact import CompactModel
from durable_agents._domain.llm import LlmResult
from durable_agents._domain.permissions import Effect, PermissionMatrix
from durable_agents._domain.tools import ToolSpec


class TaskKind(StrEnum):
    """What executing a task means."""

    TOOL = "tool"
    LLM = "llm"
    SUBAGENT = "subagent"


class Task(CompactModel):
    """One node of the plan (its JSON leaves out fields at their default)."""

    always_shown = frozenset({"id", "kind"})

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: str = Field(min_length=1, max_length=64)
    kind: TaskKind = TaskKind.TOOL
    tool: str | None = None
    args: dict[str, Any] = {}
    prompt: str | None = None
    depends_on: list[str] = []
    critical: bool = False
    success_criteria: list[str] = []
    confidence: float = Field(default=1.0, ge=0, le=1)


class Plan(BaseModel):
    """What the planner proposes. ``done`` means: after these tasks, answer the goal."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tasks: list[Task] = []
    rationale: str = ""
    done: bool = False
    refresh_tools: bool = Field(
        default=False,
        description="List the MCP servers' tools again before the next plan.",
    )

    @model_serializer(mode="wrap")
    def _without_default_refresh(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Unset, it is left out: a plan dumps (and its approval digest is) as before.
        data = handler(self)
        if isinstance(data, dict) and not self.refresh_tools:
            data.pop("refresh_tools", None)
        return data


class PlanReply(BaseModel):
    """Output of the ``plan`` activity: a parsed plan, or why the reply was not one."""

    plan: Plan | None
    problems: list[str] = []
    result: LlmResult


PERMISSION_DENIED = "permission denied"


def validate_plan(
    plan: Plan,
    tools: Mapping[str, ToolSpec],
    permissions: PermissionMatrix,
    role: str,
) -> list[str]:
    """Every problem that forbids executing ``plan``, phrased for the planner to fix."""
    problems: list[str] = []
    ids = [t.id for t in plan.tasks]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"task ids must be unique; repeated: {', '.join(dupes)}")
    known_ids = set(ids)
    for task in plan.tasks:
        problems += _task_problems(task, tools, permissions, role, known_ids)
    cycle = find_cycle(plan.tasks)
    if cycle:
        problems.append("dependencies form a cycle: " + " -> ".join(cycle))
    return problems


def _task_problems(
    task: Task,
    tools: Mapping[str, ToolSpec],
    permissions: PermissionMatrix,
    role: str,
    known_ids: set[str],
) -> list[str]:
    problems = [
        f"task {task.id}: depends on unknown task '{d}'"
        for d in task.depends_on
        if d not in known_ids
    ]
    if task.kind is TaskKind.TOOL:
        if task.tool is None or task.tool not in tools:
            known = ", ".join(sorted(tools)) or "none"
            return [*problems, f"task {task.id}: unknown tool '{task.tool}'; known tools: {known}"]
        spec = tools[task.tool]
        problems += [
            f"task {task.id} ({task.tool}): {p}"
            for p in schema_check.check(task.args, spec.args_schema, path="args")
        ]
        if permissions.decide(role, spec.name, spec.resource_of(task.args)) is Effect.DENY:
            problems.append(
                f"task {task.id}: {PERMISSION_DENIED} for role '{role}' to call "
                f"{spec.describe_call(task.args)}"
            )
    elif not (task.prompt or "").strip():
        problems.append(f"task {task.id}: a {task.kind.value} task needs a prompt")
    return problems


def find_cycle(tasks: list[Task]) -> list[str]:
    """One dependency cycle as a list of ids (first id repeated at the end), or []."""
    deps = {t.id: list(t.depends_on) for t in tasks}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in deps.get(node, []):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt in deps and nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for tid in deps:
        if tid not in state:
            found = visit(tid)
            if found:
                return found
    return []


def ready_waves(tasks: list[Task]) -> list[list[Task]]:
    """Tasks grouped in waves: each wave depends only on earlier waves (plan order kept)."""
    done: set[str] = set()
    remaining = list(tasks)
    waves: list[list[Task]] = []
    while remaining:
        wave = [t for t in remaining if all(d in done for d in t.depends_on)]
        if not wave:  # a cycle; validation refuses such plans before execution
            break
        waves.append(wave)
        done.update(t.id for t in wave)
        remaining = [t for t in remaining if t.id not in done]
    return waves
