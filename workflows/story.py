"""What the Temporal Web UI shows about a run: current details and search attributes.

An operator should see, without reading code, what the run is doing, what it has spent,
and what it waits for, with the exact command that answers a pending approval.
"""

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from durable_agents._domain import search_attributes as sa
from durable_agents._domain.markdown import escape_markdown
from durable_agents._domain.money import format_usd, micros_to_usd
from durable_agents._domain.run import RunStatus
from durable_agents._workflows.state import RunState
from durable_agents._workflows.versions import compact_history


def _limit(value: float | int | None, fmt: str = "{}") -> str:
    return "∞" if value is None else fmt.format(value)


def details_markdown(state: RunState, workflow_id: str) -> str:
    """The run's live status as Markdown (``set_current_details``)."""
    spent, budget = state.ledger.spent, state.ledger.budget
    lines = [
        f"**{shown_status(state).value}** · phase `{state.phase.value}` · iteration "
        f"{state.iteration} of {budget.max_iterations}",
        "",
        escape_markdown(
            f"Budget: {format_usd(micros_to_usd(spent.cost_micros))} / "
            f"{'∞' if budget.max_cost_usd is None else format_usd(budget.max_cost_usd)}"
        )
        + f" · tokens {spent.tokens} / "
        f"{_limit(budget.max_tokens)} · LLM calls {spent.llm_calls} · tool calls "
        f"{spent.tool_calls}",
    ]
    if state.spec_hash:
        models = ", ".join(sorted(state.spec.models.all_models()))
        lines += [
            "",
            f"Agent `{state.spec.name}` · models {models} · spec `{state.spec_hash[:12]}`",
        ]
        if not state.approver_keys:
            lines += ["", "⚠️ approver identity not verified (no approver keys on the workers)"]
    pending = [r for r in state.approvals if r.state.value == "pending"]
    policy = state.spec.approvals
    for r in pending:
        allowed = policy.tool_approvers.get(r.tool or "") or policy.approvers
        lines += [
            "",
            f"⏳ **Waiting for approval {r.id}**: {r.what} — {r.why} (risk: {r.risk}; "
            f"deadline {r.deadline:%Y-%m-%d %H:%M:%S} UTC, then {r.on_timeout.value}); "
            f"who may decide: {', '.join(allowed) or 'anyone'}",
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
        lines += ["", f"Last error: {escape_markdown(state.errors[-1])}"]
    # The UI sizes its Markdown frame a line short; a blank paragraph keeps the last visible.
    return "\n".join(lines) + "\n\n\u00a0"


def shown_status(state: RunState) -> RunStatus:
    """The status people see: a running run with a pending request is awaiting approval."""
    pending = any(r.state.value == "pending" for r in state.approvals)
    return RunStatus.AWAITING_APPROVAL if pending and not state.status.terminal else state.status


# Iterations between upserts of cost, tokens and iteration when nothing urgent changed.
PROGRESS_EVERY = 5


class Story:
    """Pushes a run's status to the Web UI through current details and search attributes.

    Every upsert is a history event, so a long run's history must not grow with how
    often it reports: status, pending approval and budget alert are upserted as soon as
    they change (people filter on them); iteration, cost and tokens with them, and
    otherwise every `PROGRESS_EVERY` iterations; only changed attributes are sent. The
    current details (not in the history) are always live.
    """

    def __init__(self) -> None:
        self._sent: dict[str, object] = {}
        self._progress_at = 0

    def publish(self, state: RunState) -> None:
        """Refresh the current details and, when due, the changed search attributes."""
        info = workflow.info()
        status = shown_status(state)
        spent = state.ledger.spent
        urgent: dict[str, object] = {
            sa.AGENT_STATUS.name: status.value,
            sa.PENDING_APPROVAL.name: any(r.state.value == "pending" for r in state.approvals),
            sa.BUDGET_ALERT.name: state.ledger.soft_alert_raised,
        }
        if state.spec_hash:  # admitted by its worker: what it runs, not what the caller said
            urgent[sa.AGENT_NAME.name] = state.spec.name
            urgent[sa.AGENT_USER.name] = state.request.user
            if state.ledger.budget.max_cost_usd is not None:  # extensions raise it
                urgent[sa.COST_LIMIT_USD.name] = state.ledger.budget.max_cost_usd
        progress: dict[str, object] = {
            sa.ITERATION.name: state.iteration,
            sa.COST_USD.name: micros_to_usd(spent.cost_micros),
            sa.TOKENS_USED.name: spent.tokens,
        }
        if not compact_history():  # runs recorded before: every change, every attribute
            urgent.update(progress)
            if any(self._sent.get(k) != v for k, v in urgent.items()):
                self._sent.update(urgent)
                workflow.upsert_search_attributes([_update(k, v) for k, v in urgent.items()])
        elif (
            any(self._sent.get(k) != v for k, v in urgent.items())
            or state.iteration >= self._progress_at + PROGRESS_EVERY
        ):
            changed = {k: v for k, v in {**urgent, **progress}.items() if self._sent.get(k) != v}
            self._sent.update(changed)
            self._progress_at = state.iteration
            if changed:
                workflow.upsert_search_attributes([_update(k, v) for k, v in changed.items()])
        workflow.set_current_details(details_markdown(state, info.workflow_id))


def _update(name: str, value: object) -> SearchAttributeUpdate[Any]:
    """The typed update for one of the run's attributes."""
    key = sa.KEYS[name]
    return key.value_set(value)
