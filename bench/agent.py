"""The scripted agent every benchmark runs: one goal format, one stateless model policy.

A run's goal carries its parameters (``bench tag=r1 steps=20 kind=tool reply=0``), and the
model answers from the prompt alone: the planner reads the goal and ``ITERATION: n`` line
and plans step ``n`` (or nothing once ``n > steps``). Being stateless, the same responder
serves many concurrent runs, continue-as-new, worker restarts and the floors.

Kinds of step: ``tool`` (one ``record_effect``, lasting ``sec`` seconds), ``local`` (the
same work as ``record_local``, a tool declared local), ``slow`` (one ``record_slowly``,
which never heartbeats itself), ``llm`` (one ``llm`` task whose reply is ``reply`` bytes, so
the payload store is exercised) and ``approval`` (one ``launch_rocket``, which waits for a
person).
"""

import re
from dataclasses import dataclass
from typing import Any

from durable_agents._activities.catalog import Catalog
from durable_agents._activities.plugins import EXAMPLE_PLUGINS
from durable_agents._domain.budget import Budget, BudgetOverride
from durable_agents._domain.spec import AgentSpec
from durable_agents.testing.scripted_model import RecordedRequest, Reply, ScriptedModelServer

AGENT = "test-agent"  # the agent benchmark runs name, or vary (`bench_spec`)
PLUGINS = f"{EXAMPLE_PLUGINS},tests.support.test_agent"
_PARAM = re.compile(r"(\w+)=([\w.\-]+)")
_ITERATION = re.compile(r"^ITERATION: (\d+)$", re.MULTILINE)


# The tool a step of each kind calls: ``local`` is the test agent's tool declared local
# (a local activity), ``tool`` the same work as a normal activity, ``slow`` a tool that
# never heartbeats itself (its worker does), ``approval`` one that waits for a person.
TOOL_OF_KIND = {
    "tool": "record_effect",
    "local": "record_local",
    "slow": "record_slowly",
    "approval": "launch_rocket",
}


@dataclass(frozen=True)
class Goal:
    """What one benchmark run does, encoded in its goal text."""

    tag: str
    steps: int
    kind: str = "tool"
    reply: int = 0
    seconds: float = 0.0

    def text(self) -> str:
        """The goal as the run (and so the model) sees it."""
        return (
            f"bench tag={self.tag} steps={self.steps} kind={self.kind} reply={self.reply} "
            f"sec={self.seconds}"
        )

    @classmethod
    def parse(cls, text: str) -> "Goal":
        """The goal named in a prompt (its ``GOAL:`` line, or the text itself)."""
        line = next((ln for ln in text.splitlines() if ln.startswith("GOAL: ")), text)
        params = dict(_PARAM.findall(line))
        return cls(
            tag=params.get("tag", "?"),
            steps=int(params.get("steps", "0")),
            kind=params.get("kind", "tool"),
            reply=int(params.get("reply", "0")),
            seconds=float(params.get("sec", "0")),
        )


def _user_text(request: RecordedRequest) -> str:
    messages = request.body.get("messages") or []
    texts = [str(m.get("content", "")) for m in messages if isinstance(m, dict)]
    return "\n".join(t for t in texts if "GOAL: " in t) or "\n".join(texts)


def iteration_of(request: RecordedRequest) -> int:
    """The ``ITERATION: n`` of a planner prompt (0 for other prompts)."""
    found = _ITERATION.search(_user_text(request))
    return int(found.group(1)) if found else 0


def tag_of(request: RecordedRequest) -> str:
    """The run tag a request belongs to."""
    return Goal.parse(_user_text(request)).tag


def step_tasks(goal: Goal, n: int) -> list[dict[str, Any]]:
    """The tasks of step ``n`` in the planner's JSON format."""
    base = {"id": f"t{n}", "depends_on": [], "critical": False}
    if goal.kind == "llm":
        return [{**base, "kind": "llm", "prompt": f"write part {n} of the report"}]
    tool = TOOL_OF_KIND.get(goal.kind, "record_effect")
    args: dict[str, Any] = {"name": f"{goal.tag}-{n}"}
    if goal.seconds:
        args["seconds"] = goal.seconds
    return [{**base, "kind": "tool", "tool": tool, "args": args}]


def plan_for(goal: Goal, n: int) -> dict[str, Any]:
    """The planner's answer at iteration ``n``: step ``n``, or nothing left to do."""
    if n > goal.steps:
        return {"rationale": "all steps done", "done": True, "tasks": []}
    return {"rationale": f"step {n}", "done": False, "tasks": step_tasks(goal, n)}


def respond_plan(request: RecordedRequest) -> Reply:
    """The planner: plan the iteration named in the prompt."""
    goal = Goal.parse(_user_text(request))
    return Reply.json(plan_for(goal, iteration_of(request)))


def respond_execute(request: RecordedRequest) -> Reply:
    """An ``llm`` task: a reply of exactly ``reply`` bytes (at least one)."""
    goal = Goal.parse(_user_text(request))
    size = max(goal.reply, 1)
    line = f"{goal.tag} part. "
    return Reply.text((line * (size // len(line) + 1))[:size])


def respond_summary(request: RecordedRequest) -> Reply:
    """The final answer."""
    return Reply.text(f"{tag_of(request)}: all steps done")


def install(server: ScriptedModelServer) -> None:
    """Make ``server`` play the benchmark agent."""
    server.set_responder("plan", respond_plan)
    server.set_responder("execute", respond_execute)
    server.set_responder("summarize", respond_summary)


def bench_budget(catalog: Catalog, steps: int) -> BudgetOverride:
    """A request's budget for a run of ``steps`` steps of the test agent (`AGENT`).

    Room for every step and the final, empty plan, and the most cost the agent's bounds
    allow; a run longer than they allow needs a variant (`bench_spec`).
    """
    caps = catalog.spec(AGENT).bounds.budget_caps
    if caps.max_iterations is not None and steps + 2 > caps.max_iterations:
        raise ValueError(f"{steps} steps is over {AGENT}'s cap; use bench_spec")
    return BudgetOverride(max_cost_usd=caps.max_cost_usd, max_iterations=steps + 2)


STEP_AGENT = "bench-steps"  # what the step phases run (`step_spec`)
FLOOR_CALL_TIMEOUT_S = 30.0  # the floors' start-to-close timeout (bench.floor_workflow)


def step_spec(catalog: Catalog) -> AgentSpec:
    """The test agent with the floor's start-to-close timeout for model calls.

    The test agent's own 5 s suits tests; under the throughput phase's load a call can
    outlast it and be run again, work the floor (30 s) would never repeat.
    """
    spec = catalog.spec(AGENT)
    llm = spec.llm.model_copy(update={"timeout_s": FLOOR_CALL_TIMEOUT_S})
    return spec.model_copy(update={"name": STEP_AGENT, "llm": llm})


def bench_spec(catalog: Catalog, steps: int, continue_as_new_every: int = 200) -> AgentSpec:
    """The test agent with room for ``steps`` iterations, a generous cost limit and
    continue-as-new every ``continue_as_new_every`` iterations, as a variant a worker
    loads (``bench-agent-s<steps>-can<n>``): for runs past the test agent's budget caps.
    """
    spec = catalog.spec(AGENT)
    return spec.model_copy(
        update={
            "name": f"bench-agent-s{steps}-can{continue_as_new_every}",
            "limits": spec.limits.model_copy(
                update={"continue_as_new_every": continue_as_new_every}
            ),
            "budget": Budget(max_cost_usd=1000.0, max_iterations=steps + 2),
        }
    )
