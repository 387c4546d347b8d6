"""Worker-side admission: resolve a run's agent, and sign its ledger messages.

These activities hold what a caller must not control: the agents the worker loaded, the
approvers' keys, the users' monthly limits, and the worker key that signs what a run
tells its user's ledger.
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.client import WithStartWorkflowOperation, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._activities.catalog import Catalog, RequestRefusedError
from durable_agents._activities.keys import WorkerKeys
from durable_agents._activities.mcp_connection import McpConnectionLost
from durable_agents._activities.mcp_toolbox import McpToolbox, McpToolsRefused
from durable_agents._activities.user_limits import UserLimits
from durable_agents._domain import contract
from durable_agents._domain.admission import (
    AgentSummary,
    ResolveAgent,
    ResolvedAgent,
    ShareRequest,
    ShareSettlement,
)
from durable_agents._domain.errors import ErrorType
from durable_agents._domain.mcp_refresh import McpToolList, RefreshMcpTools
from durable_agents._domain.money import usd_to_micros
from durable_agents._domain.signatures import sign
from durable_agents._domain.spec import spec_hash
from durable_agents._domain.user_ledger import (
    SWEEP_EVERY_S,
    LedgerDecision,
    LedgerReservation,
    LedgerSettlement,
    LedgerTrust,
    Signed,
    UserSpend,
    ledger_workflow_id,
)

# ``agentctl agents`` waits for a worker's answer; a server slower than this is reported
# as not answering (servers are asked at the same time, within the catalog's timeout).
DESCRIBE_MCP_TIMEOUT_S = 8.0


class AdmissionActivities:
    """What a worker decides for the runs it admits."""

    def __init__(
        self,
        catalog: Catalog,
        keys: WorkerKeys,
        limits: UserLimits,
        ledger_sweep_s: float = SWEEP_EVERY_S,
        ui_base_url: str | None = None,
        mcp: McpToolbox | None = None,
    ) -> None:
        self._catalog = catalog
        self._mcp = mcp or McpToolbox(catalog.mcp_server, python_tools=catalog.python_tools)
        self._keys = keys
        self._limits = limits
        self._ledger_sweep_s = ledger_sweep_s
        self._ui_base_url = ui_base_url

    def activities(self) -> list[Callable[..., Any]]:
        """The activity callables to register on a worker."""
        return [
            self.resolve_agent,
            self.describe_agents,
            self.refresh_mcp_tools,
            self.reserve_user_share,
            self.settle_user_share,
            self.trust,
        ]

    @activity.defn(name=contract.DESCRIBE_AGENTS)
    async def describe_agents(self) -> list[AgentSummary]:
        """The agents this worker serves (its catalog), without any tool code; with their
        MCP servers' tools where a server answers (one that does not is reported so)."""
        specs = [self._catalog.resolve_request(name, None, None) for name in self._catalog.names()]
        servers = {s.name: s for spec in specs for s in spec.mcp_servers}
        described = await asyncio.gather(
            *(self._mcp.describe(s, DESCRIBE_MCP_TIMEOUT_S) for s in servers.values())
        )
        by_name = {d.name: d for d in described}
        return [
            AgentSummary(
                name=spec.name,
                description=spec.description,
                tools=[t.name for t in spec.tools],
                models=sorted(spec.models.all_models()),
                spec_hash=spec_hash(spec),
                mcp_servers=[by_name[s.name] for s in spec.mcp_servers],
            )
            for spec in specs
        ]

    @activity.defn(name=contract.REFRESH_MCP_TOOLS)
    async def refresh_mcp_tools(self, ask: RefreshMcpTools) -> McpToolList:
        """A run's MCP tools as its servers offer them now (checked as at its start)."""
        try:
            return await self._mcp.tools_of(ask.agent, ask.servers, set(ask.own_tools))
        except McpToolsRefused as err:
            raise ApplicationError(
                str(err), type=ErrorType.MCP_REFRESH_REFUSED, non_retryable=True
            ) from None
        except McpConnectionLost as err:
            raise ApplicationError(str(err), type=ErrorType.MCP_UNAVAILABLE) from None

    @activity.defn(name=contract.RESOLVE_AGENT)
    async def resolve_agent(self, ask: ResolveAgent) -> ResolvedAgent:
        """The spec a run obeys, with its hash, the approvers' keys and the user's limit."""
        try:
            spec = self._catalog.resolve_request(ask.agent, ask.budget, ask.model)
        except RequestRefusedError as err:
            raise ApplicationError(str(err), type="RunRefused", non_retryable=True) from None
        # The tools of its MCP servers as they are now: recorded with the spec, so the
        # run plans with this list for its whole life and replays without the servers.
        try:
            spec, mcp_tools = await self._mcp.with_tools(spec)
        except McpToolsRefused as err:
            raise ApplicationError(str(err), type="RunRefused", non_retryable=True) from None
        except McpConnectionLost as err:
            raise ApplicationError(str(err), type=ErrorType.MCP_UNAVAILABLE) from None
        limit = self._limits.limit_for(ask.user)
        return ResolvedAgent(
            spec=spec,
            spec_hash=spec_hash(spec),
            approver_keys=self._keys.approver_keys,
            user_limit_micros=None if limit is None else usd_to_micros(limit),
            ui_base_url=self._ui_base_url,
            mcp_tools=mcp_tools,
        )

    @activity.defn(name=contract.LEDGER_TRUST)
    async def trust(self) -> LedgerTrust:
        """Who may sign for a user's ledger: this worker's key and the operators'."""
        return LedgerTrust(
            worker_keys=[self._keys.worker_public_key],
            operator_keys=self._keys.operator_keys(),
            sweep_every_s=self._ledger_sweep_s,
        )

    def _signed(self, message: Signed, op: str, ledger_id: str) -> Signed:
        stamped = message.model_copy(update={"issued_at": datetime.now(UTC)})
        signature = sign(self._keys.worker_private_key, stamped.message(op, ledger_id))
        return stamped.model_copy(update={"signature": signature})

    @activity.defn(name=contract.RESERVE_USER_SHARE)
    async def reserve_user_share(self, share: ShareRequest) -> LedgerDecision:
        """Hold a run's cost limit in its user's ledger (started if it does not exist)."""
        ledger_id = ledger_workflow_id(share.user)
        await _refuse_a_squatted_ledger(ledger_id, activity.info().task_queue)
        reservation = LedgerReservation(
            run_id=share.run_id, amount_micros=share.amount_micros, limit_micros=share.limit_micros
        )
        decision: LedgerDecision = await activity.client().execute_update_with_start_workflow(
            contract.RESERVE,
            self._signed(reservation, contract.RESERVE, ledger_id),
            start_workflow_operation=WithStartWorkflowOperation(
                contract.USER_LEDGER,
                UserSpend(user=share.user),
                id=ledger_id,
                task_queue=activity.info().task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=f"spending ledger of {share.user}",
            ),
            result_type=LedgerDecision,
        )
        return decision

    @activity.defn(name=contract.SETTLE_USER_SHARE)
    async def settle_user_share(self, share: ShareSettlement) -> None:
        """Count what a run spent in its user's ledger and release its reservation."""
        ledger_id = ledger_workflow_id(share.user)
        settlement = LedgerSettlement(run_id=share.run_id, actual_micros=share.actual_micros)
        handle = activity.client().get_workflow_handle(ledger_id)
        await handle.execute_update(
            contract.SETTLE,
            self._signed(settlement, contract.SETTLE, ledger_id),
            result_type=LedgerDecision,
        )


async def _refuse_a_squatted_ledger(ledger_id: str, task_queue: str) -> None:
    """Refuse, naming the fix, when a running workflow that no worker of ours runs holds
    the ledger's id (anyone can start a workflow with that id on a queue nobody polls)."""
    try:
        desc = await activity.client().get_workflow_handle(ledger_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return
        raise
    if desc.status is not WorkflowExecutionStatus.RUNNING:
        return
    if desc.workflow_type == contract.USER_LEDGER and desc.task_queue == task_queue:
        return
    raise ApplicationError(
        f"{ledger_id} is held by a workflow this deployment does not run (type "
        f"{desc.workflow_type} on task queue '{desc.task_queue}'); an operator must end it "
        f"(temporal workflow terminate --workflow-id {ledger_id}) before this user's runs "
        "can reserve",
        type="LedgerRefused",
        non_retryable=True,
    )
