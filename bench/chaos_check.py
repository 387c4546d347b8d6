"""The invariants the chaos harness checks once every run has ended (or its deadline passed).

- ``stuck``: runs not in a terminal state by the deadline.
- ``duplicate_effects``: effect rows sharing an idempotency key (0 by construction of the
  ledger) plus runs whose irreversible ``launch_rocket`` completed more than once.
- ``budget_overruns``: runs whose reported usage passes one of their budget's limits.
- ``lost_approvals``: in completed runs, approved requests whose tool never ran or that the
  driver approved but the report does not show approved; in any run, a request the audit
  trail shows approved (accepted) more than once.
- ``workflow_task_failure_loops``: runs whose history has 3+ ``WorkflowTaskFailed`` events.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos_script import effect_names, rocket_name
from durable_agents._domain.approvals import ApprovalState
from durable_agents._domain.money import usd_to_micros
from durable_agents._domain.run import RunReport, RunStatus
from tests.support import test_agent

LOOP_THRESHOLD = 3


@dataclass
class RunOutcome:
    """What the harness knows about one run at the end."""

    tag: str
    workflow_id: str
    report: RunReport | None = None
    error: str | None = None  # the workflow itself failed, or no result by the deadline
    terminal: bool = False
    approvals_sent: list[str] = field(default_factory=list)  # request ids approved (1st time)
    duplicate_approvals_sent: int = 0
    workflow_task_failures: int = 0

    @property
    def status(self) -> str:
        """The run's status, ``workflow_error`` or ``stuck``."""
        if self.report is not None:
            return self.report.status.value
        return "workflow_error" if self.terminal else "stuck"


def _key_duplicates(data_dir: Path) -> int:
    path = test_agent.ledger_path(data_dir)
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as conn:
        rows = conn.execute("SELECT key, COUNT(*) FROM effects GROUP BY key HAVING COUNT(*) > 1")
        return sum(int(n) - 1 for _, n in rows)


def overruns(report: RunReport) -> list[str]:
    """The limits of its budget that a run's reported usage passes."""
    b, u = report.budget, report.usage
    out: list[str] = []
    if b.max_cost_usd is not None and u.cost_micros > usd_to_micros(b.max_cost_usd):
        out.append(f"cost {u.cost_micros}µ$ > {b.max_cost_usd}$")
    for name, used, limit in (
        ("tokens", u.tokens, b.max_tokens),
        ("llm_calls", u.llm_calls, b.max_llm_calls),
        ("tool_calls", u.tool_calls, b.max_tool_calls),
        ("iterations", report.iterations, b.max_iterations),
    ):
        if limit is not None and used > limit:
            out.append(f"{name} {used} > {limit}")
    return out


def _lost_approvals(run: RunOutcome, launches: Counter[str]) -> list[str]:
    report = run.report
    if report is None:
        return []
    problems: list[str] = []
    accepted = Counter(
        e.request_id for e in report.audit if e.event == "approval_approved" and e.accepted
    )
    problems += [f"{rid} approved {n} times" for rid, n in accepted.items() if n > 1]
    if report.status is not RunStatus.COMPLETED:
        return problems
    by_id = {a.id: a for a in report.approvals}
    for rid in run.approvals_sent:
        request = by_id.get(rid)
        if request is None or request.state is not ApprovalState.APPROVED:
            problems.append(f"{rid} approved by the driver but {request and request.state}")
    for request in report.approvals:
        approved = request.state is ApprovalState.APPROVED
        if approved and request.tool == "launch_rocket" and not launches[rocket_name(run.tag)]:
            problems.append(f"{request.id} approved but launch_rocket never ran")
    return problems


def check(runs: list[RunOutcome], data_dir: Path) -> tuple[dict[str, object], list[str]]:
    """The invariant counters and one line of evidence per violation."""
    executed = test_agent.executions(data_dir)
    launches = Counter(name for tool, name, _, _ in executed if tool == "launch_rocket")
    reexecuted = Counter(key for tool, _, key, _ in executed if tool == "record_effect")
    starts = Counter(e[2] for e in test_agent.executions(data_dir, "started"))
    evidence: list[str] = []
    dup_keys = _key_duplicates(data_dir)
    if dup_keys:
        evidence.append(f"{dup_keys} effect rows share an idempotency key")
    dup_launch = 0
    for run in runs:
        n = launches[rocket_name(run.tag)]
        if n > 1:
            dup_launch += 1
            evidence.append(f"{run.workflow_id}: launch_rocket executed {n} times")
    over = lost = loops = 0
    for run in runs:
        if run.report is not None and (found := overruns(run.report)):
            over += 1
            evidence.append(f"{run.workflow_id}: budget overrun {found}")
        if found_lost := _lost_approvals(run, launches):
            lost += len(found_lost)
            evidence += [f"{run.workflow_id}: lost approval {p}" for p in found_lost]
        if run.workflow_task_failures >= LOOP_THRESHOLD:
            loops += 1
            evidence.append(
                f"{run.workflow_id}: {run.workflow_task_failures} WorkflowTaskFailed events"
            )
        if run.error:
            evidence.append(f"{run.workflow_id}: {run.status}: {run.error[:300]}")
        elif run.report is not None and run.report.status in (
            RunStatus.FAILED,
            RunStatus.ESCALATED,
        ):
            why = " | ".join(run.report.errors[-2:])[:400]
            evidence.append(f"note {run.workflow_id}: {run.status}: {why}")
    stuck = sum(1 for r in runs if not r.terminal)
    recorded = set(test_agent.effects(data_dir))
    missing = {
        r.workflow_id: f"{r.status}: {sorted(set(effect_names(r.tag)) - recorded)}"
        for r in runs
        if set(effect_names(r.tag)) - recorded
    }
    counters: dict[str, object] = {
        "completed": sum(1 for r in runs if r.status == RunStatus.COMPLETED.value),
        "stuck": stuck,
        "duplicate_effects": dup_keys + dup_launch,
        "budget_overruns": over,
        "lost_approvals": lost,
        "workflow_task_failures": sum(r.workflow_task_failures for r in runs),
        "workflow_task_failure_loops": loops,
        "effects": len(test_agent.effects(data_dir)),
        "effect_reexecutions": sum(n - 1 for n in reexecuted.values() if n > 1),
        "interrupted_effects": sum(1 for n in starts.values() if n > 1),
        "missing_planned_effects": missing,  # informational: not every run gets that far
        "rocket_launches": sum(launches.values()),
        "approvals_sent": sum(len(r.approvals_sent) for r in runs),
        "duplicate_approvals_sent": sum(r.duplicate_approvals_sent for r in runs),
        "status_counts": dict(Counter(r.status for r in runs)),
    }
    return counters, evidence


INVARIANTS = (
    "stuck",
    "duplicate_effects",
    "budget_overruns",
    "lost_approvals",
    "workflow_task_failure_loops",
)


def failed_invariants(result: dict[str, object]) -> list[str]:
    """Names of the invariants whose counter is not zero."""
    return [name for name in INVARIANTS if result.get(name) != 0]
