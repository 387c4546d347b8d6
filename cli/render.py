"""How runs look in a terminal (rich) and as stable JSON."""

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from durable_agents._cli.follow import answer_lines
from durable_agents._domain import contract
from durable_agents._domain.approvals import ApprovalRequest
from durable_agents._domain.mcp_refresh import McpServerSummary
from durable_agents._domain.money import format_usd, micros_to_usd
from durable_agents._domain.run import RunReport, RunView

if TYPE_CHECKING:  # reports and the API import the Temporal client; rendering must not
    from durable_agents._client.api import RunRow
    from durable_agents._client.reports import SpendReport


def to_json(value: BaseModel | list[Any] | dict[str, Any]) -> str:
    """Stable, parseable JSON (sorted keys) for ``--json``."""
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json"), sort_keys=True, indent=2)
    return json.dumps(value, sort_keys=True, indent=2, default=str)


def budget_line(view: RunView | RunReport) -> str:
    """``$0.0123 / $0.50 · 4,210 tokens · 5 LLM calls · 7 tool calls``."""
    u, b = view.usage, view.budget
    limit = "∞" if b.max_cost_usd is None else format_usd(b.max_cost_usd)
    return (
        f"{format_usd(micros_to_usd(u.cost_micros))} / {limit} · {u.tokens:,} tokens · "
        f"{u.llm_calls} LLM calls · {u.tool_calls} tool calls"
    )


def print_view(console: Console, view: RunView) -> None:
    """One progress line per update."""
    last = view.steps[-1] if view.steps else None
    step = f" · last: {last.label} → {last.outcome.value}" if last else ""
    console.print(
        f"[dim]{view.phase.value:>17}[/] iteration {view.iteration} · {budget_line(view)}{step}"
    )


IDENTITY_NOT_VERIFIED = (
    "approver identity not verified (no approver keys on the workers: decisions are taken "
    "as declared; see `agentctl keygen`)"
)


def print_request(
    console: Console, workflow_id: str, request: ApprovalRequest, view: RunView | None = None
) -> None:
    """An approval request, who may answer it, and the commands that do."""
    console.print(f"\n[bold yellow]Approval needed[/] ({request.id}): {request.what}")
    console.print(
        f"  why: {request.why} · risk: {request.risk} · deadline "
        f"{request.deadline:%H:%M:%S} UTC, then {request.on_timeout.value}"
    )
    if view is not None:
        who = ", ".join(view.approvers) or "anyone"
        console.print(f"  who may decide: {who}")
        if not view.identity_verified:
            console.print(f"  [yellow]{IDENTITY_NOT_VERIFIED}[/]")
    approve, reject = answer_lines(workflow_id, request.id)
    console.print(approve)
    console.print(reject + "\n")


def print_report(console: Console, report: RunReport) -> None:
    """The final report: status, steps, usage, approvals, answer."""
    table = Table(title=f"{report.agent} · {report.workflow_id} · {report.status.value}")
    for col in ("it", "task", "call", "outcome", "tries", "why"):
        table.add_column(col)
    for s in report.steps:
        table.add_row(
            str(s.iteration), s.task_id, s.label, s.outcome.value, str(s.attempts), s.why or ""
        )
    console.print(table)
    console.print(
        f"Usage: {budget_line(report)} · {report.iterations} iterations · {report.replans} replans"
    )
    if report.usage_by_model:
        console.print("Models: " + ", ".join(sorted(report.usage_by_model)))
    if report.approvals and not report.identity_verified:
        console.print(f"[yellow]{IDENTITY_NOT_VERIFIED}[/]")
    for a in report.approvals:
        console.print(
            f"Approval {a.id}: {a.what} → {a.state.value} by {a.decided_by}"
            + (f" ({a.reason})" if a.reason else "")
        )
    console.print(f"\n[bold]Answer[/]\n{report.answer}")


def print_spend(console: Console, report: "SpendReport") -> None:
    """A spend report: one table per grouping, then the total."""
    columns = ("runs", "cost USD", "tokens", "input tok", "output tok", "LLM calls", "cache hits")
    for title, groups in (
        ("agent", report.by_agent),
        ("user", report.by_user),
        ("model", report.by_model),
    ):
        table = Table(title=f"by {title} since {report.since:%Y-%m-%d %H:%M} UTC")
        for col in (title, *columns):
            table.add_column(col)
        for name, t in sorted(groups.items()):
            runs = f"{t.runs} ({t.estimated_runs} est.)" if t.estimated_runs else str(t.runs)
            table.add_row(
                name,
                runs,
                f"{t.cost_usd:.6f}",
                f"{t.tokens:,}",
                f"{t.input_tokens:,}",
                f"{t.output_tokens:,}",
                str(t.llm_calls),
                str(t.cache_hits),
            )
        console.print(table)
    console.print(
        f"{report.runs} runs, ${report.total.cost_usd:.6f}, {report.total.tokens:,} tokens"
    )
    if report.total.estimated_runs:
        console.print(
            f"{report.total.estimated_runs} run(s) could not report (terminated, or no worker "
            f"answered): counted from their {contract.COST_USD}/{contract.TOKENS_USED} search "
            "attributes, no model split"
        )
    for line in report.unreadable:
        console.print(
            f"{line}: counted from its search attributes (set AGENT_CODEC_KEYS to read it)"
        )


def print_runs(console: Console, rows: "list[RunRow]") -> None:
    """``agentctl list``: one row per run, newest first."""
    table = Table()
    for col in ("run", "agent", "status", "user", "cost / limit", "approval", "started (UTC)"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.workflow_id,
            r.agent,
            r.status,
            r.user,
            format_usd(r.cost_usd)
            + (f" / {format_usd(r.cost_limit_usd)}" if r.cost_limit_usd is not None else ""),
            "waiting" if r.pending_approval else "",
            f"{r.started:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)
    console.print(f"{len(rows)} run(s)" if rows else "no runs match")


def mcp_server_line(server: McpServerSummary) -> str:
    """An agent's MCP server as ``agentctl agents`` shows it: its tools, or why none."""
    head = f"MCP server {server.name} ({server.transport})"
    if not server.reachable:
        return f"{head}: {server.problem or 'unreachable'}"
    if server.problem:
        return f"{head}: {server.problem}"
    tools = ", ".join(
        f"{t.name} [{t.side_effect.value}{', approval' if t.needs_approval else ''}]"
        for t in server.tools
    )
    line = f"{head}: {tools or 'no tools'}"
    if server.left_out:
        line += f" (left out: {'; '.join(server.left_out)})"
    return line
