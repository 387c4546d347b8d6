"""The ``AgentRun`` workflow: plan, execute, evaluate, replan, answer.

Orchestration only, and deterministic: every effect is an activity, every wait a durable
timer or condition, and budgets are checked before each call. The run obeys the agent its
worker resolves (`Admission`), never a spec from its caller. Humans reach the run through
the ``approve``, ``reject`` and ``extend_budget`` updates (validated and answered), the
signals of the same names (kept for older clients; never able to fail the run) and the
``status`` query.
"""

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ActivityError, ApplicationError

from durable_agents._domain import contract
from durable_agents._domain.approvals import (
    ApprovalKind,
    ApprovalRequest,
    ApprovalState,
    DecisionAnswer,
    DecisionRefusedError,
    Verdict,
)
from durable_agents._domain.budget import BudgetLedger
from durable_agents._domain.events import EventKind
from durable_agents._domain.plan import Plan, Task, ready_waves
from durable_agents._domain.prompts import answer_messages, running_summary
from durable_agents._domain.run import (
    Admission,
    Outcome,
    Phase,
    RecordedRequest,
    RunCarry,
    RunReport,
    RunStatus,
    RunView,
    StepRecord,
)
from durable_agents._domain.spec import Purpose
from durable_agents._domain.user_ledger import LedgerSettlement
from durable_agents._workflows.admission import RunRefused, admit
from durable_agents._workflows.approvals import ApprovalBook
from durable_agents._workflows.metrics import count
from durable_agents._workflows.model_calls import BudgetStop, ModelCaller
from durable_agents._workflows.notices import Notices
from durable_agents._workflows.payloads import one_payload
from durable_agents._workflows.planning import Escalate, Planner
from durable_agents._workflows.report import escalation_context, partial_answer, run_report
from durable_agents._workflows.run_events import RunEvents, TokensRefusedError, prior_stream_state
from durable_agents._workflows.shares import settle_share
from durable_agents._workflows.state import RunState
from durable_agents._workflows.story import Story
from durable_agents._workflows.tasks import TaskRunner
from durable_agents._workflows.tool_refresh import asks_for_refresh, refresh_if_wanted
from durable_agents._workflows.versions import (
    compact_history,
    lean_steps,
    mcp_refresh,
    resolve_by_activity,
    split_input,
    stream_events,
    worker_owns_agent,
)


@workflow.defn(name=contract.AGENT_RUN)
class AgentRun:
    """One agent run, from a `RunRequest` to a `RunReport`."""

    @workflow.init
    def __init__(self, *request: Any) -> None:
        # The input is validated in ``run`` (a malformed one fails the run with the reason,
        # not the workflow task); until the run is admitted, handlers see no state.
        self._state_or_none: RunState | None = None
        self._mcp_refresh = False  # decided when the run starts (see versions.py)
        self._admission: Admission | None = None
        self._story = Story()
        # Constructed here (the SDK requires it): the stream's handlers exist from the
        # run's first task, and a continued run takes on its predecessor's offset.
        self._stream = WorkflowStream(prior_stream_state(request))
        self._events = RunEvents(self._stream)
        self._streaming = False  # decided with the run's patches

    @property
    def _state(self) -> RunState:
        assert self._state_or_none is not None, "the run has not started"
        return self._state_or_none

    def _begin(self, state: RunState) -> None:
        self._state_or_none = state
        self._generation_start = state.iteration
        self._approvals = ApprovalBook(state, self._publish, self._escalate)
        self._events.approvals(state.approvals, announce=False)  # announced before continuing
        self._events.batch_budget = state.spec.limits.token_batches_per_execution
        self._models = ModelCaller(
            state,
            self._soft_limit_reached,
            self._ask_for_budget,
            events=self._events if self._streaming else None,
        )
        self._tasks = TaskRunner(state, self._models, self._approvals)
        self._notices = Notices(state, self._approvals)
        self._planner = Planner(state, self._models, self._approvals, self._publish)

    # -- updates, signals and queries ---------------------------------------------------

    # A refused run ends at once; an admission asked in that very moment is abandoned and
    # its caller reads the refusal from the run's failure instead.
    @workflow.update(
        name=contract.ADMISSION, unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON
    )
    async def admission(self) -> Admission:
        """Wait until the worker has resolved the run's agent: admitted, or refused why."""
        await workflow.wait_condition(lambda: self._admission is not None)
        assert self._admission is not None
        return self._admission

    @workflow.update(name=contract.APPROVE)
    def approve(self, *decision: Any) -> DecisionAnswer:
        """A person approves a pending request (``Decision``); answered with the outcome."""
        return self._decided(one_payload(decision), Verdict.APPROVE)

    @approve.validator
    def _check_approve(self, *decision: Any) -> None:
        try:
            self._started().check_decision(one_payload(decision), Verdict.APPROVE)
        except DecisionRefusedError as err:
            raise _refusal(err) from None

    @workflow.update(name=contract.REJECT)
    def reject(self, *decision: Any) -> DecisionAnswer:
        """A person rejects a pending request (``Decision``); its reason goes to the planner."""
        return self._decided(one_payload(decision), Verdict.REJECT)

    @reject.validator
    def _check_reject(self, *decision: Any) -> None:
        try:
            self._started().check_decision(one_payload(decision), Verdict.REJECT)
        except DecisionRefusedError as err:
            raise _refusal(err) from None

    @workflow.update(name=contract.EXTEND_BUDGET)
    def extend_budget(self, *extension: Any) -> DecisionAnswer:
        """A person grants more budget (``BudgetExtension``), within the agent's policy."""
        try:
            checked = self._started().check_extension(one_payload(extension))
        except DecisionRefusedError as err:
            raise _refusal(err) from None
        answer = self._approvals.apply_extension(checked)
        self._publish()
        return answer

    @extend_budget.validator
    def _check_extend(self, *extension: Any) -> None:
        try:
            self._started().check_extension(one_payload(extension))
        except DecisionRefusedError as err:
            raise _refusal(err) from None

    @workflow.update(name=contract.STREAM_TOKENS)
    def stream_tokens(self, *batch: Any) -> None:
        """A model activity's text (``TokenBatch``), taken again only on replay: the
        validator refuses new ones (tokens travel as heartbeats, see ``run_events``)."""
        self._events.batches_taken += 1  # accepted: the server counts it
        try:
            self._events.take(self._events.check(one_payload(batch)))
        except TokensRefusedError as err:  # the validator does not run on replay
            raise ApplicationError(str(err), type="TokensRefused", non_retryable=True) from None

    @stream_tokens.validator
    def _check_stream_tokens(self, *_batch: Any) -> None:
        raise ApplicationError(
            "model calls stream their text as activity heartbeats; this update is kept "
            "only so that runs recorded before replay",
            type="TokensRefused",
            non_retryable=True,
        )

    @workflow.signal(name=contract.APPROVE)
    def approve_signal(self, *args: Any) -> None:
        """Older clients' approval signal: taken if valid, audited and ignored if not."""
        if self._state_or_none is not None:
            self._approvals.decide_signal(args, Verdict.APPROVE)
            self._publish()

    @workflow.signal(name=contract.REJECT)
    def reject_signal(self, *args: Any) -> None:
        """Older clients' rejection signal: taken if valid, audited and ignored if not."""
        if self._state_or_none is not None:
            self._approvals.decide_signal(args, Verdict.REJECT)
            self._publish()

    @workflow.signal(name=contract.EXTEND_BUDGET)
    def extend_budget_signal(self, *args: Any) -> None:
        """Older clients' extension signal: taken if valid, audited and ignored if not."""
        if self._state_or_none is not None:
            self._approvals.extend_signal(args)
            self._publish()

    def _started(self) -> ApprovalBook:
        if self._state_or_none is None:
            raise DecisionRefusedError("the run is starting; try again in a moment")
        if self._state.status.terminal or self._state.phase is Phase.DONE:
            raise DecisionRefusedError(f"the run has ended ({self._state.status.value})")
        return self._approvals

    def _decided(self, raw: Any, verdict: Verdict) -> DecisionAnswer:
        # The validator ran the same check; on replay it does not run, so check again.
        try:
            decision = self._started().check_decision(raw, verdict)
        except DecisionRefusedError as err:
            raise _refusal(err) from None
        answer = self._approvals.apply_decision(decision, verdict)
        self._publish()
        return answer

    @workflow.query(name=contract.STATUS)
    def status(self) -> RunView:
        """The live view of the run."""
        st = self._state
        policy = st.spec.approvals
        return RunView(
            workflow_id=workflow.info().workflow_id,
            agent=st.spec.name,
            goal=st.request.goal,
            user=st.request.user,
            status=st.status,
            phase=st.phase,
            iteration=st.iteration,
            usage=st.ledger.spent,
            usage_by_model=st.usage_by_model,
            budget=st.ledger.budget,
            reserved=st.ledger.committed(),
            spec_hash=st.spec_hash,
            models=sorted(st.spec.models.all_models()),
            identity_verified=bool(st.approver_keys),
            approvers=sorted(
                {*policy.approvers, *(a for v in policy.tool_approvers.values() for a in v)}
            ),
            extensions=st.extensions,
            pending_approvals=self._approvals.pending,
            decided=self._approvals.decided[-20:],
            plan=st.plan,
            last_error=st.last_error,
            steps=st.steps[-20:],
        )

    # -- the loop --------------------------------------------------------------------------

    @workflow.run
    async def run(self, *request: Any) -> RunReport:
        """Plan, execute and evaluate until the goal is met or a limit is reached.

        The input is a `RunRequest` and, from the run itself only, a `RunCarry`; any
        other input is refused.
        """
        split_input()  # decided first (see below), asked again where the run passes inputs on
        if worker_owns_agent():
            # Every patch this run takes is decided before its first local activity: code
            # after an activity can land in a later workflow task than on replay, where a
            # patch first asked there would not be seen (a non-determinism error).
            compact_history()
            lean_steps()
            self._streaming = stream_events()
            self._mcp_refresh = mcp_refresh()
            resolve_by_activity()  # asked again where the run resolves its agent
            try:
                state, self._admission = await admit(request)
            except RunRefused as refused:
                self._admission = Admission(
                    admitted=False, agent=refused.agent, reason=str(refused)
                )
                self._events.publish(EventKind.RUN_FINISHED, status="refused", detail=str(refused))
                self._events.detach()
                await workflow.wait_condition(workflow.all_handlers_finished)
                raise ApplicationError(
                    f"run refused: {refused}", type="RunRefused", non_retryable=True
                ) from None
        else:  # recorded before the worker resolved agents: the request carried the spec
            lean_steps()
            state = _legacy_state(RecordedRequest.model_validate(request[0]))
        self._begin(state)
        st = self._state
        self._publish()
        try:
            await self._loop()
            if st.status is RunStatus.RUNNING:
                st.answer = await self._answer()
                st.status = RunStatus.COMPLETED
        except BudgetStop as stop:
            st.status = RunStatus.BUDGET_EXHAUSTED
            st.errors.append(str(stop))
            count(
                "durable_agents_budget_exhausted_total",
                "Runs stopped by a budget limit",
                agent=st.spec.name,
            )
        except Escalate as esc:
            st.status = RunStatus.ESCALATED
            st.errors.append(str(esc))
        except (ActivityError, ApplicationError) as err:
            st.status = RunStatus.FAILED
            cause = err.cause if isinstance(err, ActivityError) and err.cause else err
            st.errors.append(f"{cause}")
        except asyncio.CancelledError:
            st.status = RunStatus.CANCELLED
            st.errors.append("cancelled by request")
        if not st.answer:
            st.answer = partial_answer(st)
        st.phase = Phase.DONE
        if st.spec_hash:  # runs admitted by their worker close what nobody can answer now
            self._approvals.close_pending(f"the run ended: {st.status.value}")
        self._publish()
        self._events.publish(
            EventKind.RUN_FINISHED,
            iteration=st.iteration,
            status=st.status.value,
            detail=st.errors[-1] if st.errors else "",
            cost_micros=st.ledger.spent.cost_micros,
            tokens=st.ledger.spent.tokens,
        )
        await self._notices.drain()
        await self._settle_user_ledger()
        self._events.detach()  # waiting clients return; they read the rest once it closed
        await workflow.wait_condition(workflow.all_handlers_finished)
        return run_report(st, workflow.info().workflow_id)

    async def _loop(self) -> None:
        st = self._state
        limits = st.spec.limits
        while True:
            if self._should_continue_as_new():
                await self._continue_as_new()
            if st.iteration >= st.ledger.budget.max_iterations:
                raise BudgetStop(f"max_iterations={st.ledger.budget.max_iterations} reached")
            self._check_wall_time()
            st.iteration += 1
            st.summary = running_summary(
                st.steps, limits.observation_window, st.earlier_outcomes, st.earlier_failures
            )
            await refresh_if_wanted(st, self._mcp_refresh, self._approvals.audit)
            plan = await self._planner.next_plan()
            self._events.publish(
                EventKind.PLAN_MADE,
                iteration=st.iteration,
                label=", ".join(_task_label(t) for t in plan.tasks),
                detail=plan.rationale,
                status="done" if plan.done else "",
            )
            if not plan.tasks:
                if asks_for_refresh(st, self._mcp_refresh, plan):
                    continue  # a plan that only asks for the tool list again
                return
            asks_for_refresh(st, self._mcp_refresh, plan)
            failed = await self._execute(plan)
            critical = [s for s in failed if s.outcome is Outcome.CRITICAL]
            if critical:
                raise Escalate(escalation_context(st, critical[0]))
            if not failed:
                if plan.done:
                    return
                continue
            st.replans += 1
            count(
                "durable_agents_replans_total",
                "Replans after failed tasks",
                agent=st.spec.name,
            )
            st.problems = [
                f"task {s.task_id} ({s.label}) {s.outcome.value}: {s.why}" for s in failed
            ]
            self._events.publish(
                EventKind.REPLAN, iteration=st.iteration, detail="; ".join(st.problems)
            )
            if (
                any(s.why and "not attempted again" in s.why for s in failed)
                and st.replans > limits.max_replans // 2 + 1
            ):
                raise Escalate("the agent keeps repeating the same call: " + st.problems[0])
            if st.replans > limits.max_replans:
                raise Escalate(
                    f"still failing after {limits.max_replans} replans: " + "; ".join(st.problems)
                )

    def _should_continue_as_new(self) -> bool:
        every = self._state.spec.limits.continue_as_new_every
        return (
            workflow.info().is_continue_as_new_suggested()
            or self._state.iteration - self._generation_start >= every
        )

    async def _continue_as_new(self) -> None:
        """Start a fresh execution with the compact state; the workflow id stays."""
        st = self._state
        await self._notices.drain()
        self._events.publish(EventKind.CONTINUED_AS_NEW, iteration=st.iteration)
        self._events.detach()  # waiting clients return, and follow to the next execution
        await workflow.wait_condition(workflow.all_handlers_finished)
        carry = RunCarry(
            resume_state=st.carried(st.spec.limits.observation_window),
            parent_workflow_id=st.parent_workflow_id,
            depth=st.depth,
            stream_state=self._events.carried() if self._streaming else None,
        )
        if split_input():
            workflow.continue_as_new(args=[st.request, carry])
        workflow.continue_as_new(RecordedRequest.joined(st.request, carry))

    def _check_wall_time(self) -> None:
        limit = self._state.ledger.budget.max_wall_time_s
        if limit is not None and workflow.now() - self._state.started_at > timedelta(seconds=limit):
            raise BudgetStop(f"max_wall_time_s={limit} reached")

    async def _execute(self, plan: Plan) -> list[StepRecord]:
        """Run the plan's waves; tasks within a wave run concurrently."""
        st = self._state
        failed: list[StepRecord] = []
        for wave in ready_waves(plan.tasks):
            st.phase = Phase.EXECUTING
            self._publish()
            # gather keeps results in task order, so the record is deterministic. Siblings of
            # a task that stops the run still finish, so their spend and results are kept.
            results = await asyncio.gather(
                *(self._run_task(t) for t in wave), return_exceptions=True
            )
            steps = [r for r in results if isinstance(r, StepRecord)]
            st.steps.extend(steps)
            self._publish()
            for r in results:
                if isinstance(r, BaseException):
                    raise r
            failed += [
                s for s in steps if s.outcome in (Outcome.HARD, Outcome.CRITICAL, Outcome.DENIED)
            ]
            if failed:
                break  # later waves depend on what failed; the planner decides what now
        return failed

    async def _run_task(self, task: Task) -> StepRecord:
        """Run one task, telling the stream when it starts and how it ended."""
        iteration = self._state.iteration
        label = _task_label(task)
        self._events.publish(
            EventKind.TASK_STARTED, iteration=iteration, task_id=task.id, label=label
        )
        try:
            step = await self._tasks.run(task)
        except Exception as err:  # not GeneratorExit: an evicted run publishes nothing
            self._events.publish(
                EventKind.TASK_FINISHED,
                iteration=iteration,
                task_id=task.id,
                label=label,
                outcome="error",
                detail=str(err),
            )
            raise
        self._events.publish(
            EventKind.TASK_FINISHED,
            iteration=iteration,
            task_id=task.id,
            label=label,
            outcome=step.outcome.value,
            detail=step.why or "",
            cost_micros=step.usage.cost_micros,
            tokens=step.usage.tokens,
        )
        return step

    async def _answer(self) -> str:
        st = self._state
        st.phase = Phase.ANSWERING
        self._publish()
        messages = answer_messages(st.spec, st.request.goal, st.steps, st.summary, st.plan)
        from durable_agents._domain.llm import LlmResult

        result, _ = await self._models.call(
            contract.LLM_COMPLETE,
            Purpose.SUMMARIZE,
            messages,
            LlmResult,
            "answer",
            result_of=lambda r: r,
        )
        return result.text

    # -- helpers ---------------------------------------------------------------------------

    def _publish(self) -> None:
        self._story.publish(self._state)
        self._events.approvals(self._state.approvals)

    async def _ask_for_budget(self, why: str) -> bool:
        """Ask a human for more budget; True if it was granted before the deadline."""
        if not self._state.spec.approvals.ask_budget_extension:
            return False
        wid = workflow.info().workflow_id
        request = await self._approvals.ask(
            ApprovalKind.BUDGET,
            what="more budget",
            why=why,
            risk="spend",
            args={"hint": f"agentctl extend-budget {wid} --usd 0.50"},
        )
        return request.state is ApprovalState.APPROVED

    async def _soft_limit_reached(self) -> None:
        ledger = self._state.ledger
        self._approvals.audit(
            "soft_limit_reached", detail=f"{ledger.soft_fraction_used():.0%} of a hard limit used"
        )
        workflow.logger.warning(
            "budget soft limit reached", extra={"fraction": ledger.soft_fraction_used()}
        )
        self._notices.soft_limit()
        self._events.publish(
            EventKind.BUDGET_ALERT,
            iteration=self._state.iteration,
            detail=f"{ledger.soft_fraction_used():.0%} of a hard limit used",
            cost_micros=ledger.spent.cost_micros,
        )
        self._publish()

    async def _escalate(self, request: ApprovalRequest) -> None:
        self._notices.escalation(request)

    async def _settle_user_ledger(self) -> None:
        """Tell the user's ledger what this run really spent, releasing its reservation."""
        st = self._state
        if st.spec_hash:  # admitted by its worker: the worker signs the settlement
            if st.user_ledger is not None:
                await settle_share(st.request.user, st.ledger.spent.cost_micros)
            return
        ledger_id = st.user_ledger
        if ledger_id is None:
            return
        settlement = LedgerSettlement(
            run_id=workflow.info().workflow_id, actual_micros=self._state.ledger.spent.cost_micros
        )
        # By name: the ledger's workflow module stays out of each run's sandbox.
        try:
            await workflow.get_external_workflow_handle(ledger_id).signal(
                contract.SETTLE, settlement
            )
        except ApplicationError as err:
            self._approvals.audit("user_ledger_settle_failed", detail=str(err))


def _task_label(task: Task) -> str:
    """How a task is named in the stream: its id and its tool (or kind)."""
    return f"{task.id}:{task.tool or task.kind.value}"


def _refusal(err: DecisionRefusedError) -> ApplicationError:
    """A refused decision as the update's failure: the caller reads the reason."""
    return ApplicationError(str(err), type="DecisionRefused", non_retryable=True)


def _legacy_state(recorded: RecordedRequest) -> RunState:
    """The state of a run recorded before the worker resolved agents (replay only)."""
    request, carry = recorded.split()
    if carry.resume_state is not None:
        return RunState.continued(carry.resume_state, request, recorded)
    assert recorded.spec is not None, "a legacy request carries its spec"
    return RunState(
        request=request,
        spec=recorded.spec,
        ledger=BudgetLedger(budget=request.budget_of(recorded.spec)),
        started_at=workflow.now(),
        user_ledger=recorded.user_ledger_id,
        ui_base_url=recorded.ui_base_url,
        parent_workflow_id=carry.parent_workflow_id,
        depth=carry.depth,
    )
