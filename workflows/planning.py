"""Planning inside the run: ask the planner until its plan is valid, and approved when
the policy says so.

A plan is validated in code (known tools, argument schemas, dependencies, permissions)
before anything runs; its problems go back to the planner a bounded number of times.
"""

from collections.abc import Callable

from durable_agents._domain import contract
from durable_agents._domain.approvals import ApprovalKind, ApprovalState
from durable_agents._domain.plan import PERMISSION_DENIED, Plan, PlanReply, validate_plan
from durable_agents._domain.prompts import planner_messages
from durable_agents._domain.run import Phase
from durable_agents._domain.spec import Purpose
from durable_agents._domain.structured import plan_json_schema
from durable_agents._workflows.approvals import ApprovalBook
from durable_agents._workflows.model_calls import ModelCaller
from durable_agents._workflows.state import RunState


class Escalate(Exception):  # noqa: N818 - control flow inside the run loop
    """The run cannot make progress on its own; a person has to look."""


class Planner:
    """Gets the next valid plan of one run."""

    def __init__(
        self,
        state: RunState,
        models: ModelCaller,
        approvals: ApprovalBook,
        publish: Callable[[], None],
    ) -> None:
        self._state = state
        self._models = models
        self._approvals = approvals
        self._publish = publish

    async def next_plan(self) -> Plan:
        """Ask the planner until it proposes a valid plan (a bounded number of times)."""
        st = self._state
        spec = st.spec
        for _ in range(spec.limits.max_invalid_plans):
            st.phase = Phase.PLANNING
            self._publish()
            messages = planner_messages(
                spec, st.request.goal, st.steps, st.summary, st.problems, st.iteration
            )
            reply, _ = await self._models.call(
                contract.PLAN,
                Purpose.PLAN,
                messages,
                PlanReply,
                f"plan #{st.iteration}",
                json_mode=True,
                json_schema=lambda: plan_json_schema(spec.tools, bool(spec.mcp_servers)),
                result_of=lambda r: r.result,
            )
            problems = reply.problems
            if reply.plan is not None:
                problems = validate_plan(reply.plan, spec.tool_map(), spec.permissions, spec.role)
            if not problems and reply.plan is not None:
                st.plan, st.problems = reply.plan, []
                if spec.approvals.approve_plan and reply.plan.tasks:
                    await self._approve(reply.plan)
                    if st.problems:
                        continue
                return reply.plan
            st.problems = problems
            st.errors.append("invalid plan: " + "; ".join(problems))
            for problem in problems:
                if PERMISSION_DENIED in problem:  # e.g. a prompt injection asking for more
                    self._approvals.audit(
                        "call_refused", actor="policy:permissions", accepted=False, detail=problem
                    )
        raise Escalate(
            f"no valid plan after {spec.limits.max_invalid_plans} attempts: "
            + "; ".join(st.problems)
        )

    async def _approve(self, plan: Plan) -> None:
        request = await self._approvals.ask(
            ApprovalKind.PLAN,
            what=f"plan #{self._state.iteration}: "
            + ", ".join(t.tool or t.kind.value for t in plan.tasks),
            why="the approval policy asks for plan approval",
            risk="plan",
            args=plan.model_dump(mode="json"),
        )
        if request.state is not ApprovalState.APPROVED:
            if self._state.spec.approvals.stop_on_reject:
                raise Escalate(f"plan rejected by {request.decided_by}: {request.reason}")
            self._state.problems = [f"a person rejected the plan: {request.reason}"]
