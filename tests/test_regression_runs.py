"""``agentctl eval --from-runs``: finished runs re-run against the current code with their
recorded model replies (no model endpoint), reporting what differs.

The recorded run is a db-tuner run played by its offline policy behind the scripted
model (so the real openai client recorded priced replies), with its drop approved. The
current code re-runs it on a fresh copy of the same database: unchanged code shows no
difference; a deliberately changed ``create_index`` is caught, call by call.
"""

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from durable_agents._activities.openai_provider import CALL_HEADER
from durable_agents._client.evals import EvalRunner
from durable_agents._client.recorded_runs import UnreplayableRunError, read_recorded_run
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain.eval_cases import ApprovalAnswer, EvalCase, Variant
from durable_agents._domain.llm import LlmCall
from durable_agents._domain.run import RunStatus
from durable_agents._domain.spec import LoopLimits
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.regression import RecordedRunsRerun, settings_for_rerun
from durable_agents.testing.scripted_model import RecordedRequest, Reply, ScriptedModelServer
from examples.db_tuner.data import default_db_path, generate
from examples.db_tuner.offline import offline_policy
from tests.support.agentctl import Cli
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

pytestmark = pytest.mark.e2e


def _db_tuner_model(request: RecordedRequest) -> Reply:
    """The db-tuner's offline policy, answering over HTTP as a model would."""
    messages = request.body.get("messages") or []
    call = LlmCall(
        purpose=request.purpose, agent="db-tuner", model=request.model, messages=[], max_tokens=2048
    )
    return Reply.text(offline_policy(call, str(messages[-1]["content"])))


async def _recorded_run(client: Client, task_queue: str) -> str:
    case = EvalCase(
        id="rec",
        agent="db-tuner",
        goal="make the slow queries fast",
        approvals_by_tool={"drop_index": ApprovalAnswer.APPROVE},
    )
    runner = EvalRunner(client, task_queue)
    report = await runner.run_report(Variant(name="live"), case, f"recorded-{runner.tag}")
    assert report.status is RunStatus.COMPLETED, report.errors
    assert [a.tool for a in report.approvals] == ["drop_index"]
    assert report.usage.cost_micros > 0
    return report.workflow_id


async def test_recorded_runs_rerun_the_same_and_a_changed_tool_is_caught(
    client: Client,
    dev_server: DevServer,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
    task_queue: str,
    tmp_path: Path,
) -> None:
    generate(default_db_path(worker_settings.data_dir), scale=0.05)
    model.set_responder("*", _db_tuner_model)
    workflow_id = await _recorded_run(client, task_queue)
    asked = model.count()
    query = f"WorkflowId = '{workflow_id}'"

    unchanged = tmp_path / "unchanged"
    generate(default_db_path(unchanged), scale=0.05)
    cli = Cli(dev_server, task_queue, "examples.db_tuner")
    code, out, err = await cli(
        "eval", "--from-runs", query, "--data-dir", str(unchanged), "--json", timeout=300
    )
    assert code == 0, f"{out}\n{err}"
    (same,) = json.loads(out)
    assert same["workflow_id"] == workflow_id and same["differences"] == [], same
    assert same["rerun_workflow_id"] != workflow_id

    changed = tmp_path / "changed"
    generate(default_db_path(changed), scale=0.05)
    cli = Cli(dev_server, task_queue, "tests.support.changed_db_tuner")
    code, out, err = await cli(
        "eval", "--from-runs", query, "--data-dir", str(changed), timeout=300
    )
    assert code == 10, f"{out}\n{err}"
    assert f"DIFF  {workflow_id}" in out
    assert "effect: create_index(orders, …) returned" in out
    assert "'index': 'ix_orders_customer_id'" in out and "'index': 'idx_orders_customer_id'" in out
    assert "1 runs re-run, 1 differ" in out
    # The re-runs needed no model: every reply came from the recorded history.
    assert model.count() == asked


async def test_a_run_that_continued_as_new_is_skipped_with_the_reason(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    plans = iter(
        [
            plan_reply(tool_task("t1", "record_effect", name="first"), done=False),
            plan_reply(tool_task("t2", "record_effect", name="after")),
        ]
    )
    model.set_responder("plan", lambda _: next(plans))
    model.set_responder("summarize", lambda _: Reply.text("done"))
    spec = agents.resolve("test-agent").model_copy(
        update={"name": "continued-agent", "limits": LoopLimits(continue_as_new_every=1)}
    )
    handle = await agents.start_run(spec, "record, then continue")
    assert (await agents.result(handle.workflow_id)).status is RunStatus.COMPLETED
    with pytest.raises(UnreplayableRunError, match="continued as new; only runs of one"):
        await read_recorded_run(agents.temporal, handle.workflow_id)


def _judged(task_id: str, name: str) -> dict[str, Any]:
    """A task whose success only the evaluation model can judge."""
    return {**tool_task(task_id, "record_effect", name=name), "success_criteria": ["looks right"]}


def _verdict(request: RecordedRequest) -> Reply:
    """Task ``a`` is judged fine, task ``b`` not: served to the wrong call, they swap."""
    if request.headers.get(CALL_HEADER.lower()) == "evaluate a":
        return Reply.json({"judgement": "ok", "reason": "fine"}, usage=(10, 1))
    return Reply.json({"judgement": "soft", "reason": "b is off"}, usage=(20, 2))


async def test_parallel_evaluations_are_answered_by_their_call_not_their_order(
    client: Client,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
    task_queue: str,
    tmp_path: Path,
) -> None:
    """Tasks ``a`` and ``b`` run in one wave, so their evaluations reach the model in
    either order; a re-run answers each with its own recorded verdict. The replies are
    also re-run in the other arrival order, which served per purpose in order would
    swap the verdicts (``a`` soft, ``b`` ok)."""
    plans = iter([plan_reply(_judged("a", "first"), _judged("b", "second"), done=False)])
    model.set_responder("plan", lambda _: next(plans, plan_reply()))
    model.set_responder("evaluate", _verdict)
    model.set_responder("summarize", lambda _: Reply.text("done"))
    case = EvalCase(id="par", agent="test-agent", goal="record two things")
    runner = EvalRunner(client, task_queue)
    report = await runner.run_report(Variant(name="live"), case, f"parallel-{runner.tag}")
    outcomes = {s.task_id: (s.iteration, s.outcome.value) for s in report.steps}
    assert outcomes == {"a": (1, "ok"), "b": (1, "soft")}, report.steps  # one wave

    recorded = await read_recorded_run(client, report.workflow_id)
    evaluations = [r for r in recorded.replies if r.purpose == "evaluate"]
    assert sorted(r.label for r in evaluations) == ["evaluate a", "evaluate b"]
    others = [r for r in recorded.replies if r.purpose != "evaluate"]
    swapped = replace(recorded, replies=[*others, *reversed(evaluations)])
    settings = settings_for_rerun(worker_settings.temporal, worker_settings.plugins, tmp_path)
    results = await RecordedRunsRerun(client, settings).rerun([recorded, swapped])
    assert len({r.rerun_workflow_id for r in results}) == 2  # each given run re-run
    for result in results:
        assert result.rerun_workflow_id and not result.error, result
        assert result.differences == [], result.differences
