"""What the Temporal Web UI shows about a run: current details and search attributes.

An operator should see, without reading code, what the run is doing, what it has spent,
and what it waits for, with the exact command that answers a pending approval.
"""

from temporalio import workflow

from domain.money import micros_to_usd
from domain.run import RunStatus
from workflows import search_attributes as sa
from workflows.state import RunState


def _limit(value: float | int | None, fmt: str = "{}") -> str:
    return "∞" if value is None else fmt.format(value)


def _md(text: str) -> str:
    """Escape what the Web UI's Markdown renderer would misread ($…$ is math there)."""
    return text.replace("$", "\\$")


def details_markdown(state: RunState, workflow_id: str) -> str:
    """The run's live status as Markdown (``set_current_details``)."""
    spent, budget = state.ledger.spent, state.ledger.budget
    lines = [
        f"**{shown_status(state).value}** · phase `{state.phase.value}` · iteration "
        f"{state.iteration} of {budget.max_iterations}",
        "",
        _md(
            f"Budget: ${micros_to_usd(spent.cost_micros):.4f} / "
            f"{_limit(budget.max_cost_usd, '${:.2f}')}"
        )
        + f" · tokens {spent.tokens} / "
        f"{_limit(budget.max_tokens)} · LLM calls {spent.llm_calls} · tool calls "
        f"{spent.tool_calls}",
    ]
    pending = [r for r in state.approvals if r.state.value == "pending"]
    for r in pending:
        lines += [
            "",
            f"⏳ **Waiting for approval {r.id}**: {r.what} — {r.why} (risk: {r.risk}; "
            f"deadline {r.deadline:%Y-%m-%d %H:%M:%S} UTC, then {r.on_timeout.value})",
            "",
            "",
            f"`agentctl approve {workflow_id} {r.id} --reason '...'`",
            "",
            f"`agentctl reject {workflow_id} {r.id} --reason '...'`",
        ]
    if state.steps:
        lines += ["", "Last steps:", ""]
        lines += [
            f"- `{s.label}` → {s.outcome.value}" + (f" ({s.why})" if s.why else "")
            for s in state.steps[-5:]
        ]
    if state.errors:
        lines += ["", f"Last error: {_md(state.errors[-1])}"]
    # The UI sizes its Markdown frame a line short; a blank paragraph keeps the last visible.
    return "\n".join(lines) + "\n\n\u00a0"


def shown_status(state: RunState) -> RunStatus:
    """The status people see: a running run with a pending request is awaiting approval."""
    pending = any(r.state.value == "pending" for r in state.approvals)
    return RunStatus.AWAITING_APPROVAL if pending and not state.status.terminal else state.status


class Story:
    """Pushes a run's status to the Web UI, upserting search attributes only on change.

    Every upsert is a history event, so unchanged values are not sent again: a long run's
    history grows with its steps, not with how often it reports.
    """

    def __init__(self) -> None:
        self._last: tuple[object, ...] | None = None

    def publish(self, state: RunState) -> None:
        """Refresh the current details and, if changed, the search attributes."""
        info = workflow.info()
        pending = any(r.state.value == "pending" for r in state.approvals)
        status = shown_status(state)
        values = (
            status.value,
            micros_to_usd(state.ledger.spent.cost_micros),
            state.ledger.spent.tokens,
            pending,
            state.iteration,
            state.ledger.soft_alert_raised,
        )
        if values != self._last:
            self._last = values
            workflow.upsert_search_attributes(
                [
                    sa.AGENT_STATUS.value_set(status.value),
                    sa.COST_USD.value_set(values[1]),
                    sa.TOKENS_USED.value_set(state.ledger.spent.tokens),
                    sa.PENDING_APPROVAL.value_set(pending),
                    sa.ITERATION.value_set(state.iteration),
                    sa.BUDGET_ALERT.value_set(state.ledger.soft_alert_raised),
                ]
            )
        workflow.set_current_details(details_markdown(state, info.workflow_id))
