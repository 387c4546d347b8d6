"""What a run reports: its final `RunReport`, the answer it gives when it could not
finish, and what an escalation tells the person who has to look."""

from durable_agents._domain.run import Outcome, RunReport, StepRecord
from durable_agents._workflows.state import RunState


def run_report(st: RunState, workflow_id: str) -> RunReport:
    """The report a run returns, whatever way it ended."""
    return RunReport(
        workflow_id=workflow_id,
        request_id=st.request.request_id,
        agent=st.spec.name,
        goal=st.request.goal,
        user=st.request.user,
        status=st.status,
        answer=st.answer,
        steps=st.steps,
        earlier_steps=st.earlier_steps,
        usage=st.ledger.spent,
        usage_by_model=st.usage_by_model,
        budget=st.ledger.budget,
        spec_hash=st.spec_hash,
        identity_verified=bool(st.approver_keys),
        iterations=st.iteration,
        replans=st.replans,
        approvals=st.approvals,
        audit=st.audit,
        errors=st.errors,
    )


def partial_answer(st: RunState) -> str:
    """The answer of a run that ended before its final answer: why, and what succeeded."""
    done = [s for s in st.steps if s.outcome is Outcome.OK]
    head = f"Run ended with status {st.status.value}"
    reason = f": {st.errors[-1]}" if st.errors else ""
    shown = (
        f"{len(done)} of the last {len(st.steps)}"
        if st.earlier_steps
        else f"{len(done)} of {len(st.steps)}"
    )
    lines = [f"{head}{reason}.", f"{shown} steps succeeded:"]
    lines += [f"- {s.label}: {s.outcome.value}" for s in st.steps]
    return "\n".join(lines)


def escalation_context(st: RunState, step: StepRecord) -> str:
    """What was attempted, why it failed, and what alternatives were tried."""
    tried = [s.label for s in st.steps if s.outcome is not Outcome.OK]
    return (
        f"critical failure in {step.label}: {step.why}. Attempted: "
        + ", ".join(s.label for s in st.steps[-10:])
        + (f". Alternatives that failed before: {', '.join(tried[:-1])}" if tried[:-1] else "")
        + f". Replans so far: {st.replans}."
    )
