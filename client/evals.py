"""Running an evaluation: every case of a dataset as a real run, under each variant.

Runs go to the variant's task queue (its worker version), with its model override and
shadow flag, at most ``concurrency`` at a time. While a run waits for a person, the
eval answers as the case says (approve or reject), so it never waits on anyone. When a
run ends, its report is checked (`domain.eval_checks`) along with the state checks its
agent's plugin provides, read from the variant's worker data directory.
"""

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError

from durable_agents._client.api import (
    AgentsClient,
    DecisionRefusedError,
    InvalidRunRequestError,
    RunEndedError,
)
from durable_agents._domain.approvals import ApprovalRequest, Decision
from durable_agents._domain.eval_cases import ApprovalAnswer, Dataset, EvalCase, Variant
from durable_agents._domain.eval_checks import (
    CheckFailure,
    FailureClass,
    called,
    check_report,
    would_have_called,
)
from durable_agents._domain.eval_report import CaseResult, EvalReport, build_report
from durable_agents._domain.run import RunReport

StateChecker = Callable[[str, str, Path], list[str]]
"""(agent, check as ``NAME[:ARG]``, worker data dir) -> problems; raises `LookupError`
for a check the agent's plugin does not provide."""

APPROVER = "eval"


@dataclass
class EvalRunner:
    """Runs datasets against the workers reachable through ``temporal``."""

    temporal: Client
    task_queue: str
    state_checker: StateChecker | None = None
    case_timeout_s: float = 600.0
    poll_s: float = 0.2
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    async def run(self, dataset: Dataset) -> EvalReport:
        """Every case under every variant; the report keeps the dataset's order."""
        gate = asyncio.Semaphore(dataset.concurrency)

        async def one(variant: Variant, case: EvalCase) -> CaseResult:
            async with gate:
                return await self.run_case(variant, case)

        results = await asyncio.gather(
            *(one(v, c) for v in dataset.variants for c in dataset.cases)
        )
        shadows = {v.name: v.compare_to for v in dataset.variants if v.compare_to}
        return build_report(dataset.name, [v.name for v in dataset.variants], results, shadows)

    def request_id(self, variant: Variant, case: EvalCase) -> str:
        """A request id of this eval's own for the case (a rerun of the eval starts anew)."""
        full = f"eval-{self.tag}-{variant.name}-{case.id}"
        if len(full) <= 128:
            return full
        # Cut names would let two cases share a run (a repeated request id is the same run).
        digest = hashlib.sha256(full.encode()).hexdigest()[:16]
        return f"{full[:111]}-{digest}"

    async def run_case(self, variant: Variant, case: EvalCase) -> CaseResult:
        """One case as a real run under ``variant``, checked."""
        began = time.monotonic()
        try:
            report = await self.run_report(variant, case, self.request_id(variant, case))
        except InvalidRunRequestError as err:
            return _error(variant, case, str(err))
        except WorkflowFailureError as err:  # failed, terminated, timed out: no report
            return _error(variant, case, f"the run ended without a report: {err.cause or err}")
        except RPCError as err:
            return _error(variant, case, f"the server refused a call: {err.message}")
        except TimeoutError:
            return _error(variant, case, f"the run did not end within {self.case_timeout_s:.0f}s")
        wall = time.monotonic() - began
        failures = check_report(case, report, self._state_failures(variant, case))
        return CaseResult(
            case_id=case.id,
            variant=variant.name,
            workflow_id=report.workflow_id,
            status=report.status,
            passed=not failures,
            failures=failures,
            cost_usd=report.usage.cost_usd,
            tokens=report.usage.tokens,
            steps=len(report.steps) + report.earlier_steps,
            wall_s=round(wall, 3),
            approvals=len(report.approvals),
            answer=report.answer,
            calls=called(report),
            would_have_called=would_have_called(report),
        )

    async def run_report(self, variant: Variant, case: EvalCase, request_id: str) -> RunReport:
        """Start the case's run under ``variant`` and answer its approvals until it ends;
        `TimeoutError` after ``case_timeout_s``."""
        agents = AgentsClient(self.temporal, variant.task_queue or self.task_queue)
        handle = await agents.start_run(
            case.agent,
            case.goal,
            request_id=request_id,
            user=case.user,
            budget=case.budget,
            model=variant.model,
            shadow=variant.shadow,
            pinned_to=(
                WorkerDeploymentVersion(variant.deployment, variant.build_id)
                if variant.deployment and variant.build_id
                else None
            ),
        )
        return await asyncio.wait_for(
            self._until_done(agents, handle.workflow_id, case), self.case_timeout_s
        )

    async def _until_done(
        self, agents: AgentsClient, workflow_id: str, case: EvalCase
    ) -> RunReport:
        """The run's report, answering its approval requests as the case says meanwhile."""
        result = asyncio.ensure_future(agents.result(workflow_id))
        answered: set[str] = set()
        try:
            while True:
                done, _ = await asyncio.wait({result}, timeout=self.poll_s)
                if done:
                    return result.result()
                await self._answer_pending(agents, workflow_id, case, answered)
        finally:
            result.cancel()

    async def _answer_pending(
        self, agents: AgentsClient, workflow_id: str, case: EvalCase, answered: set[str]
    ) -> None:
        try:
            view = await agents.status(workflow_id)
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return  # no worker has the run yet, or it is ending: ask again at the next poll
        for request in view.pending_approvals:
            if request.id not in answered:
                await self._answer(agents, workflow_id, case, request)
                answered.add(request.id)

    async def _answer(
        self, agents: AgentsClient, workflow_id: str, case: EvalCase, request: ApprovalRequest
    ) -> None:
        verdict = case.answer_for(request.tool)
        decision = Decision(
            request_id=request.id,
            approver=APPROVER,
            reason=f"eval case {case.id}: {verdict.value}",
            args_digest=request.args_digest,
        )
        decide = agents.approve if verdict is ApprovalAnswer.APPROVE else agents.reject
        # The request may have closed meanwhile (timed out, or the run ended): nothing to do.
        with contextlib.suppress(DecisionRefusedError, RunEndedError, LookupError):
            await decide(workflow_id, decision)

    def _state_failures(self, variant: Variant, case: EvalCase) -> list[str]:
        if not case.expect.state:
            return []
        if self.state_checker is None or variant.data_dir is None:
            return [
                f"state checks need the worker's data directory: set data_dir on variant "
                f"'{variant.name}'"
            ]
        found: list[str] = []
        for check in case.expect.state:
            try:
                found += self.state_checker(case.agent, check, Path(variant.data_dir))
            except LookupError as err:
                found.append(str(err))
        return found


def _error(variant: Variant, case: EvalCase, why: str) -> CaseResult:
    return CaseResult(
        case_id=case.id,
        variant=variant.name,
        passed=False,
        failures=[CheckFailure(kind=FailureClass.ERROR, detail=why)],
    )
