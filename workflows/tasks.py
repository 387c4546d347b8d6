"""Executing one task of a plan and classifying how it ended.

Each failure class gets its own answer: a semantic failure (bad input, unknown tool,
permission denied) goes back to the planner; a transient failure that outlived its
retries skips a non-critical task and replans a critical one; a call repeated too often
is refused (oscillation). Retry policies come from the tool's `ToolSpec`.
"""

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError, RetryState

from durable_agents._domain import contract
from durable_agents._domain.approvals import ApprovalKind, ApprovalState, args_digest
from durable_agents._domain.budget import BudgetExceededError, Usage
from durable_agents._domain.errors import NON_RETRYABLE, ErrorType
from durable_agents._domain.eval_checks import SHADOW_PREFIX
from durable_agents._domain.evaluation import EvalReply, Judgement, deterministic_check
from durable_agents._domain.llm import LlmResult
from durable_agents._domain.money import usd_cost_to_micros
from durable_agents._domain.permissions import Effect
from durable_agents._domain.plan import Task, TaskKind
from durable_agents._domain.prompts import evaluation_messages, task_messages
from durable_agents._domain.redaction import redact
from durable_agents._domain.run import (
    Outcome,
    Phase,
    RecordedRequest,
    RunCarry,
    RunReport,
    RunRequest,
    RunStatus,
    StepRecord,
    workflow_id_for,
)
from durable_agents._domain.spec import Purpose
from durable_agents._domain.structured import evaluation_json_schema
from durable_agents._domain.tools import SideEffect, ToolCall, ToolResult, ToolSpec
from durable_agents._workflows.activity_options import local_tool_options, tool_options
from durable_agents._workflows.approvals import ApprovalBook
from durable_agents._workflows.model_calls import (
    BudgetStop,
    ModelCaller,
    error_type,
    is_cancellation,
)
from durable_agents._workflows.state import RunState
from durable_agents._workflows.versions import lean_steps, split_input

_JUDGEMENT_OUTCOME = {
    Judgement.OK: Outcome.OK,
    Judgement.SOFT: Outcome.SOFT,
    Judgement.HARD: Outcome.HARD,
    Judgement.CRITICAL: Outcome.CRITICAL,
}


class TaskRunner:
    """Runs tasks for one run; every result is a `StepRecord`."""

    def __init__(self, state: RunState, models: ModelCaller, approvals: ApprovalBook) -> None:
        self._state = state
        self._models = models
        self._approvals = approvals

    def _step(
        self, task: Task, label: str, outcome: Outcome, started: datetime, **fields: Any
    ) -> StepRecord:
        return StepRecord(
            iteration=self._state.iteration,
            task_id=task.id,
            kind=task.kind,
            label=label,
            outcome=outcome,
            started_at=started,
            ended_at=workflow.now(),
            **fields,
        )

    async def run(self, task: Task) -> StepRecord:
        """Execute ``task`` and evaluate it deterministically."""
        started = workflow.now()
        if task.kind is TaskKind.TOOL:
            step = await self._tool(task, started)
        elif task.kind is TaskKind.SUBAGENT:
            step = await self._subagent(task, started)
        else:
            step = await self._llm(task, started)
        if step.outcome is Outcome.OK and task.success_criteria:
            step = await self._evaluate(task, step)
        return step

    async def _evaluate(self, task: Task, step: StepRecord) -> StepRecord:
        """Deterministic checks first; the evaluation model only for what needs judgement."""
        self._state.phase = Phase.EVALUATING
        verdict = deterministic_check(step.output, task.success_criteria)
        if verdict.failures:
            outcome = Outcome.HARD if task.critical else Outcome.SOFT
            return step.model_copy(update={"outcome": outcome, "why": "; ".join(verdict.failures)})
        if not verdict.needs_judgement:
            return step
        st = self._state
        messages = evaluation_messages(
            st.spec,
            st.request.goal,
            step.label,
            step.output if step.output_ref is None else step.output_preview,
            verdict.needs_judgement,
        )
        reply, usage = await self._models.call(
            contract.EVALUATE,
            Purpose.EVALUATE,
            messages,
            EvalReply,
            f"evaluate {task.id}",
            json_mode=True,
            json_schema=evaluation_json_schema,
            result_of=lambda r: r.result,
        )
        outcome = _JUDGEMENT_OUTCOME[reply.judgement]
        if outcome is Outcome.OK:
            return step.model_copy(update={"usage": step.usage + usage})
        return step.model_copy(
            update={"outcome": outcome, "why": reply.reason, "usage": step.usage + usage}
        )

    def _oscillation(self, tool: ToolSpec, args: dict[str, Any]) -> str | None:
        signature = f"{tool.name}:{args_digest(args)}"
        counts = self._state.call_counts
        limit = self._state.spec.limits.max_repeats
        if counts.get(signature, 0) >= limit:
            return (
                f"{tool.describe_call(args)} was already attempted {limit} times; "
                "it is not attempted again: try something else"
            )
        recent = [*self._state.recent_calls, signature][-4:]
        if len(recent) == 4 and recent[0] == recent[2] != recent[1] == recent[3]:
            return (
                f"{tool.describe_call(args)} alternates with another call (A-B-A-B); "
                "it is not attempted again: try something else"
            )
        counts[signature] = counts.get(signature, 0) + 1
        self._state.recent_calls = recent
        return None

    async def _tool(self, task: Task, started: datetime) -> StepRecord:
        spec = self._state.spec
        tool = spec.tool(task.tool or "")
        if tool is None:  # validation refuses such plans; keep the workflow total anyway
            return self._step(
                task, f"{task.tool}(…)", Outcome.HARD, started, why=f"unknown tool '{task.tool}'"
            )
        # Labels reach the Web UI, the audit and notifications: never with secret values.
        label = tool.describe_call(redact(task.args, self._state.spec.sensitive_fields))
        looping = self._oscillation(tool, task.args)
        if looping:
            return self._step(task, label, Outcome.HARD, started, why=looping)
        if self._shadowed(tool, task):
            return self._step(task, label, Outcome.SKIPPED, started, why=f"{SHADOW_PREFIX}{label}")
        denied = await self._checkpoint(task, tool, label)
        if denied:
            return self._step(task, label, Outcome.DENIED, started, why=denied)
        key = self._state.next_call_id("tool")
        bound = Usage(tool_calls=1, cost_micros=usd_cost_to_micros(tool.cost_usd))
        await self._reserve(key, bound)
        try:
            result = await self._invoke(tool, task, key, label)
        except ActivityError as err:
            # The attempt may have run (and cost) before failing: count it.
            self._state.ledger.settle(key, bound)
            if is_cancellation(err):
                raise asyncio.CancelledError("run cancelled") from err
            return self._tool_failure(task, tool, label, started, err)
        self._state.ledger.settle(key, bound)
        return self._step(
            task,
            label,
            Outcome.OK,
            started,
            usage=bound,
            attempts=result.attempt,
            output=result.output,
            output_ref=result.ref,
            output_preview=result.preview,
        )

    def _shadowed(self, tool: ToolSpec, task: Task) -> bool:
        """A shadow run's write or irreversible call the policy would let through: recorded,
        not run. Whether a tool writes is the worker's own spec, never the caller's; so a
        shadow run asks nobody to approve what it will not do."""
        if not self._state.request.shadow or tool.side_effect is SideEffect.READ:
            return False
        spec = self._state.spec
        effect = spec.permissions.decide(spec.role, tool.name, tool.resource_of(task.args))
        return effect is not Effect.DENY

    async def _invoke(self, tool: ToolSpec, task: Task, key: str, label: str) -> ToolResult:
        """One call of ``tool``: a local activity if the tool is declared local (no server
        round trip), else an activity with the tool's heartbeat timeout."""
        call = ToolCall(tool=tool.name, args=task.args)
        lean = lean_steps()  # decided when the run started
        summary = f"tool: {label}"
        result: ToolResult
        if lean and tool.local:
            result = await workflow.execute_local_activity(
                contract.INVOKE_TOOL,
                call,
                result_type=ToolResult,
                **local_tool_options(tool, activity_id=key, summary=summary),
            )
        else:
            result = await workflow.execute_activity(
                contract.INVOKE_TOOL,
                call,
                result_type=ToolResult,
                **tool_options(tool, activity_id=key, summary=summary, lean=lean),
            )
        return result

    async def _reserve(self, key: str, bound: Usage) -> None:
        """Reserve ``bound``; under pressure ask for more once, else stop the run."""
        try:
            self._state.ledger.reserve(key, bound)
            return
        except BudgetExceededError as err:
            ask = self._models.on_pressure
            if ask is None or not await ask(str(err)):
                raise BudgetStop(str(err)) from err
        try:
            self._state.ledger.reserve(key, bound)
        except BudgetExceededError as err:
            raise BudgetStop(str(err)) from err

    def _tool_failure(
        self, task: Task, tool: ToolSpec, label: str, started: datetime, err: ActivityError
    ) -> StepRecord:
        kind = error_type(err)
        why = f"{kind or 'failure'}: {err.cause or err}"
        critical = task.critical or tool.critical
        if kind == ErrorType.MCP_TOOL_GONE:  # read the list again before the next plan
            self._state.refresh_tools_why = f"{tool.name} is no longer offered"
        if kind in NON_RETRYABLE:
            return self._step(task, label, Outcome.HARD, started, attempts=1, why=why)
        exhausted = err.retry_state in (RetryState.MAXIMUM_ATTEMPTS_REACHED, RetryState.TIMEOUT)
        attempts = tool.retry.max_attempts if exhausted else 1
        outcome = Outcome.HARD if critical else Outcome.SKIPPED
        return self._step(
            task,
            label,
            outcome,
            started,
            attempts=attempts,
            why=f"{why} (after {attempts} attempt(s))",
        )

    async def _checkpoint(self, task: Task, tool: ToolSpec, label: str) -> str | None:
        """Ask a human when the tool, the policy or low confidence requires it."""
        spec = self._state.spec
        policy = spec.approvals
        effect = spec.permissions.decide(spec.role, tool.name, tool.resource_of(task.args))
        if effect is Effect.DENY:
            return f"permission denied for role '{spec.role}' to call {label}"
        low_confidence = (
            policy.min_confidence is not None and task.confidence < policy.min_confidence
        )
        needs = tool.needs_approval or tool.name in policy.always_ask or effect is Effect.ASK
        if not (needs or low_confidence):
            return None
        kind = ApprovalKind.TOOL if needs else ApprovalKind.CONFIDENCE
        why = (
            f"planner confidence {task.confidence:.2f} is below {policy.min_confidence}"
            if kind is ApprovalKind.CONFIDENCE
            else f"{tool.name} is {tool.side_effect.value} and needs approval"
        )
        request = await self._approvals.ask(
            kind,
            what=label,
            why=why,
            risk=tool.side_effect.value,
            tool=tool.name,
            args=task.args,
        )
        if request.state is ApprovalState.APPROVED:
            return None
        return f"not approved ({request.state.value} by {request.decided_by}): {request.reason}"

    async def _subagent(self, task: Task, started: datetime) -> StepRecord:
        """A child ``AgentRun`` with a budget carved out of what this run has left."""
        st = self._state
        limits = st.spec.limits
        label = f"subagent: {(task.prompt or '')[:60]}"
        if st.depth >= limits.max_subagent_depth:
            return self._step(
                task,
                label,
                Outcome.HARD,
                started,
                why=f"sub-agents may nest {limits.max_subagent_depth} deep at most",
            )
        carve = st.ledger.carve(limits.subagent_budget_share)
        key = st.next_call_id("sub")
        try:
            st.ledger.reserve(key, carve.reservation)
        except BudgetExceededError as err:
            raise BudgetStop(str(err)) from err
        info = workflow.info()
        # The child's worker resolves the same agent by name, like any run's.
        child = RunRequest(
            request_id=f"{st.request.request_id}.{task.id}.{key}",
            goal=task.prompt or "",
            agent=st.spec.name,
            user=st.request.user,
            budget=carve.override,
            shadow=st.request.shadow,  # a shadow run's sub-agents write nothing either
        )
        carry = RunCarry(parent_workflow_id=info.workflow_id, depth=st.depth + 1)
        inputs = [child, carry] if split_input() else [RecordedRequest.joined(child, carry)]
        try:
            report = await workflow.execute_child_workflow(
                contract.AGENT_RUN,
                args=inputs,
                id=workflow_id_for(child.request_id),
                result_type=RunReport,
                static_summary=f"sub-agent of {info.workflow_id}: {child.goal[:150]}",
            )
        except ChildWorkflowError as err:
            st.ledger.settle(key, carve.reservation)  # unknown spend: count the whole carve
            return self._step(task, label, Outcome.HARD, started, why=f"sub-agent failed: {err}")
        st.ledger.settle(key, report.usage)
        for model, usage in report.usage_by_model.items():
            st.add_model_usage(model, usage)
        outcome = Outcome.OK if report.status is RunStatus.COMPLETED else Outcome.HARD
        return self._step(
            task,
            label,
            outcome,
            started,
            attempts=1,
            usage=report.usage,
            output={"status": report.status.value, "answer": report.answer},
            output_preview=report.answer[:240],
            why=None if outcome is Outcome.OK else f"sub-agent {report.status}",
        )

    async def _llm(self, task: Task, started: datetime) -> StepRecord:
        st = self._state
        messages = task_messages(st.spec, st.request.goal, task.prompt or "", st.steps)
        label = f"llm: {task.id}"
        try:
            result, usage = await self._models.call(
                contract.LLM_COMPLETE,
                Purpose.EXECUTE,
                messages,
                LlmResult,
                f"execute {task.id}",
                result_of=lambda r: r,
            )
        except ActivityError as err:
            outcome = Outcome.HARD if task.critical else Outcome.SKIPPED
            return self._step(task, label, outcome, started, why=f"model failed: {err.cause}")
        return self._step(
            task,
            label,
            Outcome.OK,
            started,
            attempts=1,
            model=result.model,
            usage=usage,
            output=result.text if result.ref is None else None,
            output_ref=result.ref,
            output_preview=result.text[:240],
        )
