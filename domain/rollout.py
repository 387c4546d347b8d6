"""A canary rollout, as figures: each worker version's runs in flight and how its
finished runs ended, what they cost and why they failed, so promoting is a decision made
on numbers (``agentctl rollout status``)."""

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel

from durable_agents._domain.run import RunStatus

UNVERSIONED = "__unversioned__"


class FinishedRun(BaseModel):
    """What visibility says of one finished run."""

    status: str
    cost_usd: float = 0.0


class VersionFigures(BaseModel):
    """One version of a Worker Deployment and its runs."""

    build_id: str
    role: str  # current, ramping, or the server's status (draining, inactive, ...)
    ramp_percent: float = 0.0
    running: int = 0
    finished: int = 0
    completed: int = 0
    cost_usd: float = 0.0
    failures: dict[str, int] = {}

    @property
    def success_rate(self) -> float | None:
        """Completed over finished (None before any run finished)."""
        return self.completed / self.finished if self.finished else None


class RolloutStatus(BaseModel):
    """Where new runs go, and every version's figures."""

    deployment: str
    current: str | None
    ramping: str | None
    ramp_percent: float
    versions: list[VersionFigures]


def figures(
    build_id: str, role: str, ramp: float, running: int, finished: Iterable[FinishedRun]
) -> VersionFigures:
    """A version's figures from its finished runs."""
    done = list(finished)
    failures = Counter(r.status for r in done if r.status != RunStatus.COMPLETED.value)
    return VersionFigures(
        build_id=build_id,
        role=role,
        ramp_percent=ramp,
        running=running,
        finished=len(done),
        completed=sum(r.status == RunStatus.COMPLETED.value for r in done),
        cost_usd=round(sum(r.cost_usd for r in done), 6),
        failures=dict(sorted(failures.items())),
    )
