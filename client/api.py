"""The typed, async Python API of durable-agents; ``agentctl`` is a thin layer over it.

agents = await AgentsClient.connect()
handle = await agents.start_run("db-tuner", "make the slow queries fast")
report = await agents.result(handle.workflow_id)
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pydantic
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from client.catalog import Catalog
from client.connection import TemporalSettings, connect
from client.limits import UserLimits
from domain.approvals import BudgetExtension, Decision
from domain.budget import BudgetOverride
from domain.money import usd_to_micros
from domain.run import WORKFLOW_TYPE, RunReport, RunRequest, RunView, workflow_id_for
from domain.spec import AgentSpec
from domain.user_ledger import LedgerDecision, LedgerReservation, UserSpend, ledger_workflow_id
from workflows import search_attributes as sa

# A status query waits this long for a worker before the caller hears "no answer".
STATUS_QUERY_TIMEOUT = timedelta(seconds=10)


class InvalidRunRequestError(ValueError):
    """A request refused before any workflow started; the message lists every problem."""


@dataclass(frozen=True)
class RunHandle:
    """A started (or already running, for a repeated request) run."""

    workflow_id: str
    request_id: str
    agent: str
    run_id: str | None


def build_request(
    spec: AgentSpec,
    goal: str,
    *,
    request_id: str | None = None,
    user: str = "anonymous",
    budget: BudgetOverride | None = None,
    ui_base_url: str | None = None,
) -> RunRequest:
    """Validate everything a run needs, raising `InvalidRunRequestError` with the fixes."""
    try:
        # Dump and re-validate nested models: an instance built with model_construct (or
        # mutated after validation) must not slip an invalid value past the client.
        return RunRequest.model_validate(
            {
                "request_id": request_id or uuid.uuid4().hex,
                "goal": goal,
                "spec": spec.model_dump(),
                "user": user,
                "budget": budget.model_dump() if budget else None,
                "ui_base_url": ui_base_url,
            }
        )
    except pydantic.ValidationError as err:
        problems = "\n".join(
            f"  - {'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}"
            for e in err.errors()
        )
        raise InvalidRunRequestError(f"run request refused:\n{problems}") from None


class AgentsClient:
    """Start, steer and inspect agent runs."""

    def __init__(
        self,
        client: Client,
        catalog: Catalog,
        task_queue: str,
        ui_base_url: str | None = None,
        limits: UserLimits | None = None,
    ) -> None:
        self.temporal = client
        self.catalog = catalog
        self.task_queue = task_queue
        self.ui_base_url = ui_base_url
        self.limits = limits or UserLimits()

    @classmethod
    async def connect(
        cls, settings: TemporalSettings | None = None, catalog: Catalog | None = None
    ) -> "AgentsClient":
        """Connect using ``settings`` (default: the environment)."""
        settings = settings or TemporalSettings.from_env()
        client = await connect(settings.address, settings.namespace)
        return cls(
            client,
            catalog or Catalog.from_env(),
            settings.task_queue,
            settings.ui_url,
            UserLimits.from_env(),
        )

    def resolve(self, agent: str | AgentSpec, model: str | None = None) -> AgentSpec:
        """An agent name or spec, resolved and priced (errors name the fix)."""
        if isinstance(agent, AgentSpec):
            return self.catalog.priced(agent)
        return self.catalog.resolve(agent, model=model)

    async def start_run(
        self,
        agent: str | AgentSpec,
        goal: str,
        *,
        request_id: str | None = None,
        user: str = "anonymous",
        budget: BudgetOverride | None = None,
        model: str | None = None,
    ) -> RunHandle:
        """Validate and start a run; a repeated ``request_id`` returns the existing run."""
        try:
            spec = self.resolve(agent, model=model)
        except (LookupError, ValueError) as err:
            raise InvalidRunRequestError(f"run request refused: {err}") from None
        request = build_request(
            spec,
            goal,
            request_id=request_id,
            user=user,
            budget=budget,
            ui_base_url=self.ui_base_url,
        )
        workflow_id = workflow_id_for(request.request_id)
        request = await self._reserve_for_user(request, workflow_id)
        try:
            handle = await self._start(request, workflow_id)
        except BaseException as err:
            if request.user_ledger_id is not None:  # no new run started: free its share
                await self.temporal.get_workflow_handle(request.user_ledger_id).signal(
                    "release", workflow_id
                )
            if isinstance(err, WorkflowAlreadyStartedError):  # it ran before: same run
                return RunHandle(workflow_id, request.request_id, spec.name, err.run_id)
            raise
        return RunHandle(workflow_id, request.request_id, spec.name, handle.result_run_id)

    async def _reserve_for_user(self, request: RunRequest, workflow_id: str) -> RunRequest:
        """Hold the run's cost limit in its user's monthly allowance, or refuse the run."""
        limit = self.limits.limit_for(request.user)
        if limit is None:
            return request
        max_cost = request.effective_budget().max_cost_usd
        if max_cost is None:
            raise InvalidRunRequestError(
                f"run request refused: user '{request.user}' has a monthly limit, so the run "
                "needs a cost limit (--budget-usd)"
            )
        ledger_id = ledger_workflow_id(request.user)
        decision: LedgerDecision = await self.temporal.execute_update_with_start_workflow(
            "reserve",
            LedgerReservation(
                run_id=workflow_id,
                amount_micros=usd_to_micros(max_cost),
                limit_micros=usd_to_micros(limit),
            ),
            start_workflow_operation=WithStartWorkflowOperation(
                "UserLedger",
                UserSpend(user=request.user),
                id=ledger_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=f"spending ledger of {request.user}",
            ),
            result_type=LedgerDecision,
        )
        if not decision.granted:
            raise InvalidRunRequestError(f"run request refused: {decision.message}")
        return request.model_copy(update={"user_ledger_id": ledger_id})

    async def user_balance(self, user: str) -> UserSpend:
        """The user's spending in the current month (their ledger's balance)."""
        handle = self.temporal.get_workflow_handle(ledger_workflow_id(user))
        spend: UserSpend = await handle.query("balance", result_type=UserSpend)
        return spend

    async def _start(self, request: RunRequest, workflow_id: str) -> WorkflowHandle[Any, Any]:
        spec = request.spec
        return await self.temporal.start_workflow(
            WORKFLOW_TYPE,
            request,
            id=workflow_id,
            task_queue=self.task_queue,
            result_type=RunReport,
            # Running: return it. Closed: refuse to start it again (deduplication).
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.AGENT_NAME, spec.name),
                    SearchAttributePair(sa.AGENT_USER, request.user),
                    SearchAttributePair(sa.AGENT_STATUS, "running"),
                ]
            ),
            static_summary=f"{spec.name}: {request.goal[:200]}",
            static_details=_static_details(request),
        )

    async def status(self, workflow_id: str) -> RunView:
        """The live view of a run (the ``status`` query)."""
        handle = self.temporal.get_workflow_handle(workflow_id)
        view: RunView = await handle.query(
            "status", result_type=RunView, rpc_timeout=STATUS_QUERY_TIMEOUT
        )
        return view

    async def result(self, workflow_id: str) -> RunReport:
        """Wait for a run to end and return its report."""
        handle = self.temporal.get_workflow_handle(workflow_id, result_type=RunReport)
        report: RunReport = await handle.result()
        return report

    async def approve(self, workflow_id: str, decision: Decision) -> None:
        """Send an approval; invalid ones are audited and ignored by the run."""
        await self.temporal.get_workflow_handle(workflow_id).signal("approve", decision)

    async def reject(self, workflow_id: str, decision: Decision) -> None:
        """Send a rejection; its reason goes to the planner."""
        await self.temporal.get_workflow_handle(workflow_id).signal("reject", decision)

    async def extend_budget(self, workflow_id: str, extension: BudgetExtension) -> None:
        """Grant more budget to a run."""
        await self.temporal.get_workflow_handle(workflow_id).signal("extend_budget", extension)

    async def cancel(self, workflow_id: str) -> None:
        """Ask a run to stop; it returns a partial report."""
        await self.temporal.get_workflow_handle(workflow_id).cancel()

    async def original_request(self, workflow_id: str) -> RunRequest:
        """The request a run was started with, read back from its history."""
        history = await self.temporal.get_workflow_handle(workflow_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        (request,) = await self.temporal.data_converter.decode(started.input.payloads, [RunRequest])
        assert isinstance(request, RunRequest)
        return request

    async def retry(self, workflow_id: str) -> RunHandle:
        """Start a new run from a finished run's request (same spec, goal, user, budget)."""
        old = await self.original_request(workflow_id)
        n = 1
        async for _ in self.temporal.list_workflows(
            f"WorkflowId STARTS_WITH '{workflow_id_for(old.request_id)}.retry'"
        ):
            n += 1
        return await self.start_run(
            old.spec,
            old.goal,
            request_id=f"{old.request_id}.retry{n}",
            user=old.user,
            budget=old.budget,
        )

    async def reset_to_last_good(self, workflow_id: str, reason: str = "") -> str:
        """Reset a run to just before its first failing step; returns the new run id.

        The first failed or timed-out activity is found in the history; the run restarts
        from the workflow task that scheduled it, keeping every step completed before.
        """
        handle = self.temporal.get_workflow_handle(workflow_id)
        history = await handle.fetch_history()
        scheduled_by: dict[int, int] = {}
        target: int | None = None
        for event in history.events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                attrs = event.activity_task_scheduled_event_attributes
                scheduled_by[event.event_id] = attrs.workflow_task_completed_event_id
            failed = (
                event.activity_task_failed_event_attributes
                if event.HasField("activity_task_failed_event_attributes")
                else event.activity_task_timed_out_event_attributes
                if event.HasField("activity_task_timed_out_event_attributes")
                else None
            )
            if failed is not None:
                target = scheduled_by.get(failed.scheduled_event_id)
                break
        if target is None:
            raise LookupError(f"{workflow_id} has no failed step to reset to")
        resp = await self.temporal.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=self.temporal.namespace,
                workflow_execution=WorkflowExecution(workflow_id=workflow_id),
                reason=reason or "agentctl reset --to-last-good",
                workflow_task_finish_event_id=target,
                request_id=uuid.uuid4().hex,
            )
        )
        return resp.run_id

    async def describe_status(self, workflow_id: str) -> WorkflowExecutionStatus | None:
        """Temporal's own status of the run's execution."""
        desc = await self.temporal.get_workflow_handle(workflow_id).describe()
        return desc.status

    async def list_runs(self, query: str = "", limit: int = 50) -> Sequence[str]:
        """Workflow ids of runs matching a visibility query, newest first."""
        base = f"WorkflowType = '{WORKFLOW_TYPE}'"
        full = f"{base} AND ({query})" if query else base
        ids: list[str] = []
        async for wf in self.temporal.list_workflows(full, limit=limit):
            ids.append(wf.id)
        return ids


def _static_details(request: RunRequest) -> str:
    b = request.effective_budget()
    spec = request.spec
    return (
        f"**Agent** {spec.name} · **user** {request.user}\n\n**Goal** {request.goal}\n\n"
        f"**Budget** \\${b.max_cost_usd} · tokens {b.max_tokens or '∞'} · iterations "
        f"{b.max_iterations}\n\n**Models** plan={spec.models.plan.model} "
        f"execute={spec.models.execute.model}\n\n**Approvals** deadline "
        f"{spec.approvals.deadline_s:.0f}s, on timeout {spec.approvals.on_timeout.value}"
        "\n\n\u00a0"  # the UI's Markdown frame is a line short; keep the last line visible
    )
