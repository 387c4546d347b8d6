"""The typed, async Python API of durable-agents; ``agentctl`` is a thin layer over it.

agents = await AgentsClient.connect()
handle = await agents.start_run("db-tuner", "make the slow queries fast")
report = await agents.result(handle.workflow_id)
"""

import uuid
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar, cast

import pydantic
from temporalio import workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    PinnedVersioningOverride,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkerDeploymentVersion,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._client.events import POLL_INTERVAL, run_events
from durable_agents._client.keyring import ApproverKeyring
from durable_agents._client.web_ui import list_url, run_url, runs_query
from durable_agents._domain import contract
from durable_agents._domain import search_attributes as sa
from durable_agents._domain.admission import AgentSummary
from durable_agents._domain.approvals import (
    ApprovalState,
    BudgetExtension,
    Decision,
    DecisionAnswer,
    Verdict,
    decision_message,
    extension_message,
)
from durable_agents._domain.budget import BudgetOverride
from durable_agents._domain.events import RunEvent
from durable_agents._domain.markdown import escape_markdown
from durable_agents._domain.money import usd_to_micros
from durable_agents._domain.run import (
    Admission,
    RecordedRequest,
    RunReport,
    RunRequest,
    RunStatus,
    RunView,
    workflow_id_for,
)
from durable_agents._domain.user_ledger import (
    LedgerAdjustment,
    LedgerDecision,
    UserSpend,
    ledger_workflow_id,
)
from durable_agents._infra.connection import TemporalSettings, connect
from durable_agents._workflows.agent_catalog import AgentCatalog
from durable_agents._workflows.agent_run import AgentRun
from durable_agents._workflows.user_ledger import UserLedger

P = ParamSpec("P")
R = TypeVar("R")

# A status query waits this long for a worker before the caller hears "no answer".
STATUS_QUERY_TIMEOUT = timedelta(seconds=10)
# A new run waits this long for its worker's admission before the caller goes on.
ADMISSION_TIMEOUT = timedelta(seconds=10)
# A decision waits this long for the run's worker to answer.
DECISION_TIMEOUT = timedelta(seconds=30)


class InvalidRunRequestError(ValueError):
    """A request refused before any workflow started; the message lists every problem."""


class NoWorkerError(ConnectionError):
    """No worker answered on the task queue; the message says how to start one."""


@dataclass(frozen=True)
class RunHandle:
    """A started (or already running, for a repeated request) run."""

    workflow_id: str
    request_id: str
    agent: str
    run_id: str | None
    admitted: bool | None = None
    admission: Admission | None = None


def build_request(
    agent: str,
    goal: str,
    *,
    request_id: str | None = None,
    user: str = "anonymous",
    budget: BudgetOverride | None = None,
    model: str | None = None,
    shadow: bool = False,
) -> RunRequest:
    """Validate what the caller asks for, raising `InvalidRunRequestError` with the fixes.

    The worker resolves the agent and checks the overrides against its bounds.
    """
    try:
        # Dump and re-validate nested models: an instance built with model_construct (or
        # mutated after validation) must not slip an invalid value past the client.
        return RunRequest.model_validate(
            {
                "request_id": request_id or uuid.uuid4().hex,
                "goal": goal,
                "agent": agent,
                "user": user,
                "budget": budget.model_dump() if budget else None,
                "model": model,
                "shadow": shadow,
            }
        )
    except pydantic.ValidationError as err:
        problems = "\n".join(
            f"  - {'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}"
            for e in err.errors()
        )
        raise InvalidRunRequestError(f"run request refused:\n{problems}") from None


class DecisionRefusedError(Exception):
    """The run refused a decision or extension; the message is the run's reason."""


class RunEndedError(Exception):
    """The run has ended, so it can take no decision; the message says how and when."""


class AgentsClient:
    """Start, steer and inspect agent runs."""

    def __init__(
        self,
        client: Client,
        task_queue: str,
        ui_base_url: str | None = None,
        *,
        keys: ApproverKeyring | None = None,
    ) -> None:
        self.temporal = client
        self.task_queue = task_queue
        self.ui_base_url = ui_base_url
        self.keys = keys or ApproverKeyring.from_env()

    @classmethod
    async def connect(cls, settings: TemporalSettings | None = None) -> "AgentsClient":
        """Connect using ``settings`` (default: the environment and Temporal's configuration
        file: `TemporalSettings.from_env`, e.g. ``TemporalSettings.from_env(profile="prod")``).

        Raises `ConnectionError` naming what to fix (see `infra.connection.connect`).
        """
        settings = settings or TemporalSettings.from_env()
        client = await connect(settings)
        return cls(client, settings.task_queue, settings.ui_url)

    async def start_run(
        self,
        agent: str,
        goal: str,
        *,
        request_id: str | None = None,
        user: str = "anonymous",
        budget: BudgetOverride | None = None,
        model: str | None = None,
        shadow: bool = False,
        pinned_to: WorkerDeploymentVersion | None = None,
        admission_timeout: timedelta | None = ADMISSION_TIMEOUT,
    ) -> RunHandle:
        """Start a run and wait until its worker admits it (or refuses it, saying why).

        A repeated ``request_id`` returns the existing run. With no worker answering
        within ``admission_timeout`` the run stays started and waits for one
        (``RunHandle.admitted`` is None); ``None`` waits as long as it takes.
        ``shadow``: write and irreversible tools are only recorded (`RunRequest.shadow`).
        ``pinned_to``: run on this worker version (of a Worker Deployment) whatever the
        deployment's routing says (an eval of a version not yet ramped).
        """
        request = build_request(
            agent,
            goal,
            request_id=request_id,
            user=user,
            budget=budget,
            model=model,
            shadow=shadow,
        )
        workflow_id = workflow_id_for(request.request_id)
        try:
            handle = await self._start(request, workflow_id, pinned_to)
        except WorkflowAlreadyStartedError as err:  # it ran before: the same run
            return RunHandle(workflow_id, request.request_id, agent, err.run_id, True)
        admission = await self._admission(handle, admission_timeout)
        if admission is not None and not admission.admitted:
            raise InvalidRunRequestError(f"run request refused: {admission.reason}")
        return RunHandle(
            workflow_id,
            request.request_id,
            agent,
            handle.result_run_id,
            None if admission is None else admission.admitted,
            admission,
        )

    async def _admission(
        self, handle: WorkflowHandle[Any, Any], wait: timedelta | None
    ) -> Admission | None:
        """The run's admission, or None when no worker answered in time."""
        try:
            admission = await handle.execute_update(answering(AgentRun.admission), rpc_timeout=wait)
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            return None  # no worker answered in time; the run waits for one
        except RPCError as err:
            if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                return None
            if err.status is RPCStatusCode.NOT_FOUND:  # refused and failed before we asked
                return await self._refusal_of(handle)
            raise
        except WorkflowUpdateFailedError:  # the run ended as it was asked: read why
            return await self._refusal_of(handle)
        return admission

    async def _refusal_of(self, handle: WorkflowHandle[Any, Any]) -> Admission:
        try:
            await handle.result()
        except WorkflowFailureError as err:
            reason = str(getattr(err.cause, "message", None) or err.cause or err)
            return Admission(admitted=False, agent="", reason=reason.removeprefix("run refused: "))
        return Admission(admitted=True, agent="")

    async def user_balance(self, user: str) -> UserSpend:
        """The user's spending in the current month (their ledger's balance)."""
        handle = self.temporal.get_workflow_handle(ledger_workflow_id(user))
        return await handle.query(UserLedger.balance)

    async def adjust_ledger(
        self, user: str, operator: str, delta_usd: float, reason: str
    ) -> LedgerDecision:
        """An operator's signed correction of ``user``'s spend this month."""
        ledger_id = ledger_workflow_id(user)
        adjustment = LedgerAdjustment(
            operator=operator,
            delta_micros=usd_to_micros(abs(delta_usd)) * (1 if delta_usd >= 0 else -1),
            reason=reason,
            issued_at=datetime.now(UTC),
        )
        signature = self.keys.sign(operator, adjustment.message(contract.ADJUST, ledger_id))
        if signature is None:
            raise DecisionRefusedError(
                f"no key for '{operator}' in {self.keys.directory}; a ledger correction must "
                f"be signed (make one with `agentctl keygen {operator}`)"
            )
        signed = adjustment.model_copy(update={"signature": signature})
        try:
            return await self.temporal.get_workflow_handle(ledger_id).execute_update(
                answering(UserLedger.adjust), signed
            )
        except WorkflowUpdateFailedError as err:
            raise DecisionRefusedError(_reason(err)) from None

    async def _start(
        self,
        request: RunRequest,
        workflow_id: str,
        pinned_to: WorkerDeploymentVersion | None = None,
    ) -> WorkflowHandle[Any, Any]:
        return await self.temporal.start_workflow(
            AgentRun.run,
            request,
            id=workflow_id,
            task_queue=self.task_queue,
            # Running: return it. Closed: refuse to start it again (deduplication).
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            # A worker of this client's, polling the queue, gets the first workflow task
            # in the answer to the start (no trip through matching); others are unaffected.
            request_eager_start=True,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.AGENT_NAME, request.agent or ""),
                    SearchAttributePair(sa.AGENT_USER, request.user),
                    SearchAttributePair(sa.AGENT_STATUS, "running"),
                ]
            ),
            static_summary=f"{request.agent}: {request.goal[:200]}",
            static_details=_static_details(request),
            versioning_override=PinnedVersioningOverride(pinned_to) if pinned_to else None,
        )

    async def status(self, workflow_id: str) -> RunView:
        """The live view of a run (the ``status`` query)."""
        handle = self.temporal.get_workflow_handle(workflow_id)
        view = await handle.query(AgentRun.status, rpc_timeout=STATUS_QUERY_TIMEOUT)
        if view.status.terminal:
            return view
        # A run ended from outside (terminated, timed out) never closed its requests.
        execution = await self.describe_status(workflow_id)
        if execution is WorkflowExecutionStatus.RUNNING or execution is None:
            return view
        closed = [
            r.model_copy(
                update={"state": ApprovalState.CLOSED, "reason": f"run {execution.name.lower()}"}
            )
            for r in view.pending_approvals
        ]
        return view.model_copy(
            update={"status": RunStatus.TERMINATED, "pending_approvals": [], "closed": closed}
        )

    def events(
        self,
        workflow_id: str,
        from_offset: int | str = 0,
        poll_interval: timedelta = POLL_INTERVAL,
    ) -> AsyncIterator[RunEvent]:
        """The run's events as they happen, from ``from_offset`` on; the iterator ends with
        the run. To resume after a disconnect, pass the last event's ``cursor()`` (its
        offset plus one, and for model tokens how much of the call's text was seen).

        Raises `InvalidOffsetError` for an offset that is not a whole number >= 0 (or a
        cursor that is not one) and
        `RunNotFoundError` for an unknown run. Apply the events to a `Transcript` to show
        each model call's text once, whatever was retried. ``poll_interval``: how often
        the run is asked again once caught up (a query: it writes nothing to the history).
        """
        return run_events(self.temporal, workflow_id, from_offset, poll_interval)

    async def result(self, workflow_id: str) -> RunReport:
        """Wait for a run to end and return its report."""
        handle = self.temporal.get_workflow_handle(workflow_id, result_type=RunReport)
        report: RunReport = await handle.result()
        return report

    async def approve(self, workflow_id: str, decision: Decision) -> DecisionAnswer:
        """Approve a pending request; returns what the run did, or raises why it refused."""
        return await self._decide(workflow_id, decision, Verdict.APPROVE)

    async def reject(self, workflow_id: str, decision: Decision) -> DecisionAnswer:
        """Reject a pending request (its reason goes to the planner); as `approve`."""
        return await self._decide(workflow_id, decision, Verdict.REJECT)

    async def _decide(
        self, workflow_id: str, decision: Decision, verdict: Verdict
    ) -> DecisionAnswer:
        if decision.signature is None:
            sig = self.keys.sign(
                decision.approver, decision_message(workflow_id, verdict, decision)
            )
            decision = decision.model_copy(update={"signature": sig})
        update = AgentRun.approve if verdict is Verdict.APPROVE else AgentRun.reject
        return await self._update(workflow_id, update, decision)

    async def extend_budget(self, workflow_id: str, extension: BudgetExtension) -> DecisionAnswer:
        """Grant more budget, signed when the approver has a key; as `approve`."""
        if extension.seq is None:
            view = await self.status(workflow_id)
            extension = extension.model_copy(update={"seq": view.extensions + 1})
        if extension.signature is None:
            sig = self.keys.sign(extension.approver, extension_message(workflow_id, extension))
            extension = extension.model_copy(update={"signature": sig})
        return await self._update(workflow_id, AgentRun.extend_budget, extension)

    async def _update(
        self,
        workflow_id: str,
        update: workflow.UpdateMethodMultiParam[..., DecisionAnswer],
        payload: object,
    ) -> DecisionAnswer:
        handle = self.temporal.get_workflow_handle(workflow_id)
        try:
            answer = await handle.execute_update(update, payload, rpc_timeout=DECISION_TIMEOUT)
        except WorkflowUpdateFailedError as err:
            raise DecisionRefusedError(_reason(err)) from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise LookupError(
                f"{workflow_id} did not answer in time; is an agent-worker polling its task "
                "queue? The decision was not taken"
            ) from None
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise await self.ended(workflow_id) from None
            raise
        return answer

    async def ended(self, workflow_id: str) -> Exception:
        """Why a run cannot take a message: it ended (how and when), or does not exist."""
        try:
            desc = await self.temporal.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return LookupError(f"no run {workflow_id}")
            raise
        if desc.status is WorkflowExecutionStatus.RUNNING:
            return LookupError(f"{workflow_id} did not answer; try again")
        status = desc.status.name.lower() if desc.status else "closed"
        at = f" at {desc.close_time:%Y-%m-%d %H:%M:%S} UTC" if desc.close_time else ""
        return RunEndedError(f"{workflow_id} already {status}{at}")

    async def cancel(self, workflow_id: str) -> None:
        """Ask a running run to stop (it returns a partial report); `RunEndedError` if it ended."""
        status = await self.describe_status(workflow_id)
        if status is not WorkflowExecutionStatus.RUNNING:
            raise await self.ended(workflow_id)
        await self.temporal.get_workflow_handle(workflow_id).cancel()

    async def original_request(self, workflow_id: str) -> RecordedRequest:
        """The request a run was started with, read back from its history (its first
        input; older runs recorded more in it, hence `RecordedRequest`)."""
        history = await self.temporal.get_workflow_handle(workflow_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        (request,) = await self.temporal.data_converter.decode(
            started.input.payloads[:1], [RecordedRequest]
        )
        assert isinstance(request, RecordedRequest)
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
            old.agent_name,
            old.goal,
            request_id=f"{old.request_id}.retry{n}",
            user=old.user,
            budget=old.budget,
            model=old.model,
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

    async def web_ui_url(self, workflow_id: str) -> str | None:
        """The Web UI page with the run's story (its latest execution's User Metadata tab),
        or None when no Web UI is configured."""
        if not self.ui_base_url:
            return None
        desc = await self.temporal.get_workflow_handle(workflow_id).describe()
        return run_url(self.ui_base_url, self.temporal.namespace, workflow_id, desc.run_id)

    def web_ui_list_url(self, *clauses: str) -> str | None:
        """The Web UI's list of the runs matching every visibility clause (None: no Web UI
        configured)."""
        if not self.ui_base_url:
            return None
        return list_url(self.ui_base_url, self.temporal.namespace, runs_query(*clauses))

    async def describe_status(self, workflow_id: str) -> WorkflowExecutionStatus | None:
        """Temporal's own status of the run's execution."""
        desc = await self.temporal.get_workflow_handle(workflow_id).describe()
        return desc.status

    async def agents(self, wait: timedelta = timedelta(seconds=15)) -> list[AgentSummary]:
        """The agents the workers on this queue serve, as one of them answers.

        A short `AgentCatalog` workflow asks a live worker: nothing here imports plugin
        or tool code, and an agent no worker serves is never listed.
        """
        try:
            summaries: list[AgentSummary] = await self.temporal.execute_workflow(
                AgentCatalog.run,
                id=f"{contract.CATALOG_ID_PREFIX}{uuid.uuid4().hex[:12]}",
                task_queue=self.task_queue,
                execution_timeout=wait,
            )
        except WorkflowFailureError as err:
            if isinstance(err.cause, TemporalTimeoutError):
                raise NoWorkerError(
                    f"no worker answered on task queue '{self.task_queue}' within "
                    f"{wait.total_seconds():.0f}s: start one (`agent-worker` with "
                    "AGENT_PLUGINS set, or `make worker`), or check AGENTS_TASK_QUEUE"
                ) from None
            raise
        return summaries

    async def list_runs(self, query: str = "", limit: int = 50) -> Sequence[str]:
        """Workflow ids of runs matching a visibility query, newest first."""
        return [row.workflow_id for row in await self.list_run_rows(query, limit)]

    async def list_run_rows(self, query: str = "", limit: int = 50) -> list["RunRow"]:
        """Runs matching a visibility query, newest first, as the server's visibility
        store has them (search attributes and execution info: no query to any worker)."""
        base = f"WorkflowType = '{contract.AGENT_RUN}'"
        full = f"{base} AND ({query})" if query else base
        rows: list[RunRow] = []
        async for wf in self.temporal.list_workflows(full, limit=limit):
            attrs = wf.typed_search_attributes
            status = attrs.get(sa.AGENT_STATUS) or "running"
            if wf.status is WorkflowExecutionStatus.TERMINATED:
                status = RunStatus.TERMINATED.value
            rows.append(
                RunRow(
                    workflow_id=wf.id,
                    agent=attrs.get(sa.AGENT_NAME) or "?",
                    status=status,
                    user=attrs.get(sa.AGENT_USER) or "?",
                    cost_usd=attrs.get(sa.COST_USD) or 0.0,
                    cost_limit_usd=attrs.get(sa.COST_LIMIT_USD),
                    pending_approval=bool(attrs.get(sa.PENDING_APPROVAL))
                    and wf.status is WorkflowExecutionStatus.RUNNING,
                    started=wf.start_time,
                )
            )
        return rows


@dataclass(frozen=True)
class RunRow:
    """One run as `agentctl list` shows it, from visibility."""

    workflow_id: str
    agent: str
    status: str
    user: str
    cost_usd: float
    cost_limit_usd: float | None
    pending_approval: bool
    started: datetime


def answering(
    update: workflow.UpdateMethodMultiParam[P, Coroutine[Any, Any, R]],
) -> workflow.UpdateMethodMultiParam[P, R]:
    """An ``async`` update handler, typed as answering what its coroutine returns.

    The SDK types a handler registered with ``@workflow.update(name=...)`` as answering
    whatever the function returns, which for an ``async`` one is its coroutine; a typed
    call (``execute_update(AgentRun.admission)``) would then claim to return a coroutine.
    """
    return cast("workflow.UpdateMethodMultiParam[P, R]", update)


def _reason(err: WorkflowUpdateFailedError) -> str:
    """The run's own words for a refused update."""
    cause = err.cause
    return str(getattr(cause, "message", None) or cause or err)


def _static_details(request: RunRequest) -> str:
    b = request.budget
    asked = (
        ", ".join(f"{k}={v}" for k, v in b.model_dump(exclude_none=True).items())
        if b
        else "the agent's default"
    )
    return (
        f"**Agent** {request.agent} · **user** {request.user}\n\n**Goal** {request.goal}"
        f"\n\n**Budget asked** {escape_markdown(asked)}"
        + (f" · **model** {request.model}" if request.model else "")
        + "\n\nWhat the run obeys is resolved by its worker: see the run's details."
        "\n\n\u00a0"  # the UI's Markdown frame is a line short; keep the last line visible
    )
