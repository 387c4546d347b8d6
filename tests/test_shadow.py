"""Shadow runs: the same request, with write and irreversible tools recorded, never run.

A caller may ask for a shadow run (with the raw SDK here, not our client): the flag only
takes effects away, and which tools write is the worker's own spec. Nothing a shadow run
does reaches the world: not its own writes, not an irreversible call (for which it asks
nobody), not its sub-agents' writes. Reads still run, so its plan and answer compare with
a live run's.
"""

import os
import sqlite3
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from durable_agents._client.evals import EvalRunner
from durable_agents._domain import contract
from durable_agents._domain.eval_cases import Dataset
from durable_agents._domain.eval_checks import called, would_have_called
from durable_agents._domain.run import RunReport, RunRequest, RunStatus, workflow_id_for
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents._workers.replay import replay_history
from durable_agents._workers.state_checks import PluginStateChecks
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from examples.db_tuner.data import default_db_path, generate
from tests.support.agents import LocalAgents
from tests.support.evals import CASES, variant_worker
from tests.support.plans import plan_reply, tool_task
from tests.support.test_agent import executions

pytestmark = pytest.mark.e2e
HISTORIES = Path(__file__).parent / "histories"


async def _start_raw(client: Client, task_queue: str, agent: str, goal: str) -> RunReport:
    """A shadow run started with the SDK alone, as anyone reaching the frontend could."""
    request = RunRequest(request_id=uuid.uuid4().hex, agent=agent, goal=goal, shadow=True)
    handle = await client.start_workflow(
        contract.AGENT_RUN,
        request,
        id=workflow_id_for(request.request_id),
        task_queue=task_queue,
        result_type=RunReport,
    )
    report: RunReport = await handle.result()
    return report


async def test_a_shadow_run_executes_no_write_not_even_in_its_sub_agents(
    client: Client,
    task_queue: str,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    sub = {"id": "s1", "kind": "subagent", "prompt": "record the child effect", "depends_on": []}
    plans = iter(
        [
            plan_reply(
                tool_task("w", "record_effect", name="parent"),
                tool_task("l", "record_local", name="local"),
                tool_task("x", "launch_rocket", name="irreversible"),
                sub,
            ),
            plan_reply(tool_task("k", "record_effect", name="child")),
        ]
    )
    model.set_responder("plan", lambda _: next(plans))
    model.set_responder("summarize", lambda _: Reply.text("would have launched"))
    report = await _start_raw(client, task_queue, "test-agent", "launch everything")

    assert report.status is RunStatus.COMPLETED, report.errors
    assert executions(worker_settings.data_dir, "started") == []  # no tool ran, at all
    assert called(report) == [] and report.approvals == []  # and nobody was asked
    assert sorted(would_have_called(report)) == [
        "launch_rocket(irreversible)",
        "record_effect(parent)",
        "record_local(local)",
    ]
    child = next(s for s in report.steps if s.task_id == "s1")
    assert child.output["status"] == "completed"
    children = [
        wf async for wf in client.list_workflows(f"ParentWorkflowId = '{report.workflow_id}'")
    ]
    (child_run,) = children
    child_report = await client.get_workflow_handle(child_run.id, result_type=RunReport).result()
    assert would_have_called(child_report) == ["record_effect(child)"]
    # A shadow run (and its sub-agent) replays; its history is kept for the replay tests.
    for name, wid in (("shadow_run", report.workflow_id), ("shadow_child", child_run.id)):
        history = await client.get_workflow_handle(wid).fetch_history()
        assert (await replay_history(history)).ok
        if os.environ.get("UPDATE_HISTORIES") == "1":
            (HISTORIES / f"{name}.json").write_text(history.to_json())


def _indexes(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}


async def test_a_shadow_db_tuner_reads_and_measures_but_changes_no_index(
    client: Client, agents: LocalAgents, worker_settings: WorkerSettings
) -> None:
    offline = WorkerSettings(
        **{**worker_settings.__dict__, "openai_api_key": None, "openai_base_url": None}
    )
    db = default_db_path(offline.data_dir)
    generate(db, scale=0.05)
    before = _indexes(db)
    async with build_worker(client, offline):
        report = await _start_raw(
            client, agents.task_queue, "db-tuner", "make the slow queries fast"
        )
    assert report.status is RunStatus.COMPLETED, report.errors
    assert _indexes(db) == before
    tools = {label.partition("(")[0] for label in called(report)}
    assert {"explain_query", "time_query", "list_tables"} <= tools
    assert not tools & {"create_index", "analyze", "drop_index"}
    assert any(c.startswith("create_index(") for c in would_have_called(report))
    assert report.approvals == []


async def test_an_eval_compares_a_shadow_variant_with_the_live_one(
    client: Client, worker_settings: WorkerSettings, tmp_path: Path
) -> None:
    """The same requests, live on one worker version and in shadow on another: the shadow
    plans the very writes the live run made, makes none, and its answer shows it."""

    cases = [c for c in CASES if c["id"] in ("fe-txt", "fe-list")]
    async with (
        variant_worker(client, worker_settings, tmp_path, None) as live,
        variant_worker(client, worker_settings, tmp_path, None) as shadow,
    ):
        a_txt = Path(shadow["data_dir"]) / "file-editor" / "workspace" / "a.txt"
        untouched = a_txt.read_text()
        ds = Dataset.model_validate(
            {
                "name": "shadow",
                "variants": [
                    {"name": "live", **live},
                    {"name": "next", "shadow": True, "compare_to": "live", **shadow},
                ],
                "cases": cases,
            }
        )
        checks = PluginStateChecks.load(worker_settings.plugins)
        report = await EvalRunner(client, "unused", checks).run(ds)
    by = {(c.case_id, c.shadow): c for c in report.shadow}
    header = by[("fe-txt", "next")]
    assert header.same_plan and header.only_live == header.only_shadow == []
    assert not header.same_answer  # the live run lists its write ids; the shadow has none
    live_txt = next(r for r in report.results if (r.variant, r.case_id) == ("live", "fe-txt"))
    shadow_txt = next(r for r in report.results if (r.variant, r.case_id) == ("next", "fe-txt"))
    assert any(c.startswith("write_file(a.txt") for c in live_txt.calls)
    assert not any(c.startswith("write_file") for c in shadow_txt.calls)
    assert sorted(shadow_txt.would_have_called) == sorted(
        c for c in live_txt.calls if c.startswith("write_file")
    )
    # Its state check fails: the header is not there, because nothing was written.
    assert not shadow_txt.passed and live_txt.passed
    assert (
        Path(shadow["data_dir"]) / "file-editor" / "workspace" / "a.txt"
    ).read_text() == untouched
    assert by[("fe-list", "next")].same_plan and by[("fe-list", "next")].same_answer
