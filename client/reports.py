"""Spend reports: cost and tokens per agent, per user and per model over a time window.

Runs are found through visibility (the ``AgentName``/``AgentUser`` search attributes);
finished runs contribute their final report, running ones their live status.
"""

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel
from temporalio.client import WorkflowExecutionStatus

from client.api import AgentsClient
from domain.budget import Usage
from domain.run import WORKFLOW_TYPE, RunReport, RunView


class Totals(BaseModel):
    """What a group of runs consumed."""

    runs: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    cache_hits: int = 0

    def add(self, usage: Usage, runs: int = 1) -> None:
        """Count one run's (or one model's) usage."""
        self.runs += runs
        self.cost_usd = round(self.cost_usd + usage.cost_usd, 6)
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


def _group(into: dict[str, Totals], key: str, usage: Usage, runs: int = 1) -> None:
    into.setdefault(key, Totals()).add(usage, runs)


def summarize(items: Iterable[RunReport | RunView], since: datetime) -> SpendReport:
    """Aggregate run reports (or live views) into a `SpendReport`."""
    report = SpendReport(since=since, runs=0, total=Totals(), by_agent={}, by_user={}, by_model={})
    for item in items:
        report.runs += 1
        report.total.add(item.usage)
        _group(report.by_agent, item.agent, item.usage)
        _group(report.by_user, item.user, item.usage)
        for model, usage in item.usage_by_model.items():
            _group(report.by_model, model, usage)
    return report


async def spend_report(
    agents: AgentsClient, since: datetime, agent: str | None = None, limit: int = 2000
) -> SpendReport:
    """Collect every AgentRun started since ``since`` and aggregate its usage."""
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND StartTime >= '{since.isoformat()}'"
    if agent:
        query += f" AND AgentName = '{agent}'"
    items: list[RunReport | RunView] = []
    async for wf in agents.temporal.list_workflows(query, limit=limit):
        if wf.status is WorkflowExecutionStatus.COMPLETED:
            items.append(await agents.result(wf.id))
        elif wf.status is WorkflowExecutionStatus.RUNNING:
            items.append(await agents.status(wf.id))
        # Terminated or timed-out executions returned no report; nothing to count.
    return summarize(items, since)
