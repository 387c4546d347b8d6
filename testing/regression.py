"""Re-run finished runs against the current code, their model replies replayed.

``agentctl eval --from-runs QUERY`` (and tests) use this: a `ScriptedModelServer` serves
each recorded run's replies, each to the call it answered (`RecordedReplies`), to a
worker of this process running the current code (``AGENT_PLUGINS``) on a task queue of
its own; each run starts again with the same request, and its approvals are answered as
they were (anything it asks that the recorded run did not is refused, and reported). No
model endpoint is needed.

The re-run's tools run for real against ``data_dir``: give it a copy of the data as it
was before the recorded runs (a database, a workspace), or the effects will differ.
"""

import hashlib
import tempfile
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

from temporalio.client import Client

from durable_agents._activities.payload_store import LocalPayloadStore
from durable_agents._activities.plugins import load_plugins, plugin_modules
from durable_agents._client.api import InvalidRunRequestError
from durable_agents._client.evals import EvalRunner
from durable_agents._client.recorded_runs import (
    RecordedRun,
    UnreplayableRunError,
    finished_runs,
    read_recorded_run,
)
from durable_agents._domain.approvals import ApprovalState
from durable_agents._domain.eval_cases import ApprovalAnswer, EvalCase, Variant
from durable_agents._domain.eval_regression import RegressionResult, compare_runs
from durable_agents._domain.llm import PayloadRef
from durable_agents._domain.tools import SideEffect
from durable_agents._infra.connection import TemporalSettings, codec_keyring
from durable_agents._workers.config import WorkerSettings
from durable_agents._workers.own_worker import own_worker, own_worker_settings
from durable_agents.testing.recorded_replies import RecordedReplies
from durable_agents.testing.scripted_model import ScriptedModelServer

REPLAYED_KEY = "recorded-replies"


def _case(run: RecordedRun) -> EvalCase:
    """The recorded request as a case whose approvals are answered as they were."""
    decided = {
        r.tool: ApprovalAnswer.APPROVE
        if r.state is ApprovalState.APPROVED
        else ApprovalAnswer.REJECT
        for r in run.report.approvals
        if r.tool
    }
    return EvalCase(
        id="rerun",
        agent=run.request.agent_name,
        goal=run.request.goal,
        user=run.request.user,
        budget=run.request.budget,
        approvals=ApprovalAnswer.REJECT,
        approvals_by_tool=decided,
    )


class RecordedRunsRerun:
    """A scripted model and a worker of the current code, re-running recorded runs."""

    def __init__(
        self, temporal: Client, settings: WorkerSettings, *, case_timeout_s: float = 300.0
    ) -> None:
        self.temporal = temporal
        self.settings = settings
        self.case_timeout_s = case_timeout_s
        plugins = load_plugins(plugin_modules(settings.plugins))
        self.writes = {
            spec.name
            for p in plugins.values()
            for spec in p.tools.specs()
            if spec.side_effect is not SideEffect.READ
        }

    async def rerun_query(
        self, query: str, limit: int = 20, read_from: Path | None = None
    ) -> list[RegressionResult]:
        """Re-run the finished runs ``query`` matches (newest first, at most ``limit``)."""
        store = (
            LocalPayloadStore(read_from / "payloads", codec_keyring(self.temporal))
            if read_from
            else None
        )

        def read_ref(ref: PayloadRef) -> str:
            assert store is not None
            return store.get(ref).decode()

        runs: list[RecordedRun | RegressionResult] = []
        async for wid in finished_runs(self.temporal, query, limit):
            try:
                runs.append(
                    await read_recorded_run(self.temporal, wid, read_ref if store else None)
                )
            except UnreplayableRunError as err:
                runs.append(RegressionResult(workflow_id=wid, error=str(err)))
        return await self.rerun(runs)

    async def rerun(self, runs: Sequence[RecordedRun | RegressionResult]) -> list[RegressionResult]:
        """Re-run each recorded run, one at a time (each has its replies to itself)."""
        results: list[RegressionResult] = []
        async with AsyncExitStack() as stack:
            model = stack.enter_context(ScriptedModelServer())
            settings = replace(
                self.settings, openai_api_key=REPLAYED_KEY, openai_base_url=model.base_url
            )
            queue = await stack.enter_async_context(own_worker(self.temporal, settings, "rerun"))
            runner = EvalRunner(self.temporal, queue, case_timeout_s=self.case_timeout_s)
            for n, run in enumerate(runs):
                if isinstance(run, RegressionResult):
                    results.append(run)
                    continue
                results.append(await self._one(runner, model, run, _rerun_id(runner, n, run)))
        return results

    async def _one(
        self, runner: EvalRunner, model: ScriptedModelServer, run: RecordedRun, request_id: str
    ) -> RegressionResult:
        model.reset()
        replies = RecordedReplies(run.replies)
        for purpose in replies.purposes:
            model.set_responder(purpose, replies.answer)
        variant = Variant(name="current", model=run.request.model)
        try:
            report = await runner.run_report(variant, _case(run), request_id)
        except (InvalidRunRequestError, TimeoutError) as err:
            return RegressionResult(workflow_id=run.workflow_id, error=str(err) or "timed out")
        return RegressionResult(
            workflow_id=run.workflow_id,
            rerun_workflow_id=report.workflow_id,
            differences=compare_runs(run.report, report, self.writes),
        )


def _rerun_id(runner: EvalRunner, n: int, run: RecordedRun) -> str:
    """A request id of the re-run's own: a run given twice is re-run twice, and a long
    recorded id is shortened with a digest (a cut could make two re-runs one)."""
    full = f"rerun-{runner.tag}-{n}-{run.request.request_id}"
    if len(full) <= 128:
        return full
    return f"{full[:111]}-{hashlib.sha256(full.encode()).hexdigest()[:16]}"


def settings_for_rerun(
    temporal: TemporalSettings, plugins: str | None, data_dir: Path | None
) -> WorkerSettings:
    """Worker settings for a re-run: the environment's, with the given plugins and
    ``data_dir`` (else a new temporary directory)."""
    where = data_dir or Path(tempfile.mkdtemp(prefix="agentctl-rerun-"))
    return replace(own_worker_settings(temporal, plugins), data_dir=where)
