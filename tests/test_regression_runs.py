"""``agentctl eval --from-runs``: finished runs re-run against the current code with their
recorded model replies (no model endpoint), reporting what differs.

The recorded run is a db-tuner run played by its offline policy behind the scripted
model (so the real openai client recorded priced replies), with its drop approved. The
current code re-runs it on a fresh copy of the same database: unchanged code shows no
difference; a deliberately changed ``create_index`` is caught, call by call.
"""

import json
from pathlib import Path

import pytest
from temporalio.client import Client

from durable_agents._client.evals import EvalRunner
from durable_agents._client.recorded_runs import UnreplayableRunError, read_recorded_run
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain.eval_cases import ApprovalAnswer, EvalCase, Variant
from durable_agents._domain.llm import LlmCall
from durable_agents._domain.run import RunStatus
from durable_agents._domain.spec import LoopLimits
from durable_agents._workers.config import WorkerSettings
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
