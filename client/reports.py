"""Spend reports: cost and tokens per agent, per user and per model over a time window.

Runs are found through visibility (the ``AgentName``/``AgentUser`` search attributes);
finished runs contribute their final report, running ones their live status. A run that
cannot answer (terminated, timed out, or running with no worker to answer the query)
is counted from its ``CostUsd``/``TokensUsed`` search attributes instead, so one stuck
run never hides the others; those runs are counted in ``estimated_runs`` and have no
per-model split. A run whose payloads this client cannot decode (encrypted with keys it
lacks) is counted the same way and named in ``unreadable`` with the reason, instead of
failing the whole report.
"""

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio.client import (
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError

from durable_agents._client.api import AgentsClient
from durable_agents._domain import contract
from durable_agents._domain.budget import Usage
from durable_agents._domain.money import usd_to_micros
from durable_agents._domain.run import RunReport, RunView
from durable_agents._domain.search_attributes import (
    AGENT_NAME,
    AGENT_USER,
    COST_USD,
    TOKENS_USED,
)
from durable_agents._workflows.agent_run import AgentRun

QUERY_TIMEOUT = timedelta(seconds=5)
CONCURRENT_QUERIES = 32


class Totals(BaseModel):
    """What a group of runs consumed."""

    runs: int = 0
    estimated_runs: int = 0
    cost_usd: float = 0.0
    tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    cache_hits: int = 0

    def add(self, usage: Usage, runs: int = 1, estimated: bool = False, tokens: int = 0) -> None:
        """Count one run's (or one model's) usage; ``tokens`` are known only as a total."""
        self.runs += runs
        self.estimated_runs += runs if estimated else 0
        self.cost_usd = round(self.cost_usd + usage.cost_usd, 6)
        self.tokens += usage.tokens + tokens
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.llm_calls += usage.llm_calls
        self.tool_calls += usage.tool_calls
        self.cache_hits += usage.cache_hits


class SpendReport(BaseModel):
    """Totals over a window, three ways."""

    since: datetime
    runs: int
    total: Totals
    by_agent: dict[str, Totals]
    by_user: dict[str, Totals]
    by_model: dict[str, Totals]
    unreadable: list[str] = []  # "<workflow id>: <why>" per run this client cannot decode


@dataclass(frozen=True)
class RunSpend:
    """One run's consumption, from its report, its live view or its search attributes."""

    agent: str
    user: str
    usage: Usage
    usage_by_model: dict[str, Usage] = field(default_factory=dict)
    estimated: bool = False  # from search attributes: cost and a token total only
    tokens: int = 0
    unreadable: str | None = None  # why this client could not decode the run

    @classmethod
    def of(cls, item: RunReport | RunView) -> "RunSpend":
        """The spend a report or a live view accounts for."""
        return cls(item.agent, item.user, item.usage, item.usage_by_model)

    @classmethod
    def from_search_attributes(cls, wf: WorkflowExecution) -> "RunSpend":
        """What visibility knows of a run that cannot answer for itself."""
        sa = wf.typed_search_attributes
        cost = usd_to_micros(sa.get(COST_USD) or 0.0)
        return cls(
            agent=sa.get(AGENT_NAME) or "?",
            user=sa.get(AGENT_USER) or "?",
            usage=Usage(cost_micros=cost),
            estimated=True,
            tokens=sa.get(TOKENS_USED) or 0,
        )


def summarize(items: Iterable[RunSpend], since: datetime) -> SpendReport:
    """Aggregate per-run spend into a `SpendReport`."""
    report = SpendReport(since=since, runs=0, total=Totals(), by_agent={}, by_user={}, by_model={})
    for item in items:
        report.runs += 1
        if item.unreadable:
            report.unreadable.append(item.unreadable)
        for into in (
            report.total,
            _slot(report.by_agent, item.agent),
            _slot(report.by_user, item.user),
        ):
            into.add(item.usage, estimated=item.estimated, tokens=item.tokens)
        for model, usage in item.usage_by_model.items():
            _slot(report.by_model, model).add(usage)
    return report


def _slot(groups: dict[str, Totals], key: str) -> Totals:
    return groups.setdefault(key, Totals())


async def run_spend(agents: AgentsClient, wf: WorkflowExecution) -> RunSpend | None:
    """One listed run's spend; None for a run continued as new (its successor counts it)."""
    if wf.status is WorkflowExecutionStatus.CONTINUED_AS_NEW:
        return None
    handle = agents.temporal.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=RunReport)
    try:
        if wf.status is WorkflowExecutionStatus.RUNNING:
            view = await handle.query(AgentRun.status, rpc_timeout=QUERY_TIMEOUT)
            return RunSpend.of(view)
        if wf.status is WorkflowExecutionStatus.COMPLETED:
            return RunSpend.of(await handle.result(follow_runs=False))
    except (RPCError, WorkflowQueryFailedError):
        pass  # no worker answered in time: fall back to what visibility knows
    except (KeyError, RuntimeError) as err:  # the converter's "Unknown payload encoding ..."
        why = f"{wf.id}: cannot decode its payloads ({str(err).strip(chr(39))})"
        return replace(RunSpend.from_search_attributes(wf), unreadable=why)
    return RunSpend.from_search_attributes(wf)


async def spend_report(
    agents: AgentsClient, since: datetime, agent: str | None = None, limit: int = 2000
) -> SpendReport:
    """Collect every AgentRun started since ``since`` and aggregate its usage."""
    query = f"WorkflowType = '{contract.AGENT_RUN}' AND StartTime >= '{since.isoformat()}'"
    if agent:
        query += f" AND {contract.AGENT_NAME} = '{agent}'"
    listed = [wf async for wf in agents.temporal.list_workflows(query, limit=limit)]
    # Concurrently: a running run with no worker to answer costs a whole query timeout.
    gate = asyncio.Semaphore(CONCURRENT_QUERIES)

    async def one(wf: WorkflowExecution) -> RunSpend | None:
        async with gate:
            return await run_spend(agents, wf)

    spends = await asyncio.gather(*(one(wf) for wf in listed))
    return summarize((s for s in spends if s is not None), since)
