"""``agentctl eval`` end to end: ten db-tuner and file-editor cases as real runs on the dev
server, under two variants (worker versions on their own task queues): the offline model,
and a model worse by construction (it plans nothing) that the real openai client talks to.
"""

import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from temporalio.client import Client

from durable_agents._client.evals import EvalRunner
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain import contract
from durable_agents._domain.eval_cases import EvalCase, Variant
from durable_agents._domain.eval_checks import FailureClass
from durable_agents._domain.eval_report import EvalReport
from durable_agents._domain.run import workflow_id_for
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agentctl import Cli
from tests.support.evals import CASES, lazy_model, variant_worker, write_dataset
from tests.support.plans import plan_reply, tool_task
from tests.support.test_agent import executions

pytestmark = pytest.mark.e2e


async def test_a_worse_variant_shows_in_the_report_and_fails_the_gate(
    client: Client,
    dev_server: DevServer,
    worker_settings: WorkerSettings,
    model: ScriptedModelServer,
    tmp_path: Path,
) -> None:
    async with AsyncExitStack() as stack:
        good = await stack.enter_async_context(
            variant_worker(client, worker_settings, tmp_path, None)
        )
        lazy = await stack.enter_async_context(
            variant_worker(client, worker_settings, tmp_path, lazy_model(model))
        )
        ds = write_dataset(
            tmp_path / "ds.json",
            [{"name": "current", **good}, {"name": "candidate", **lazy}],
        )
        cli = Cli(dev_server, "unused-queue", worker_settings.plugins or "")
        code, out, err = await cli(
            "eval",
            str(ds),
            "--max-regression",
            "0.1",
            "--markdown",
            "--out",
            str(tmp_path / "report.json"),
            timeout=900,
        )
    report = EvalReport.model_validate_json((tmp_path / "report.json").read_text())
    assert code == 10, f"{out}\n{err}"
    current, candidate = report.summaries
    assert len(CASES) >= 10 and current.cases == candidate.cases == len(CASES)
    failed = [(r.case_id, r.failures) for r in report.results if r.variant == "current"]
    assert current.passed == len(CASES), [f for f in failed if f[1]]
    assert current.interval.low > 0.6 and current.interval.high == 1.0
    # Every db-tuner case proposed dropping the legacy index; the eval rejected each.
    assert current.approvals >= 4
    assert candidate.passed == 0 and candidate.approvals == 0
    assert candidate.failures_by_class["tool_missing"] >= len(CASES)
    assert candidate.failures_by_class["state"] >= 4  # the db-tuner's and the headers'
    assert current.cost_usd == 0.0 < candidate.cost_usd  # the scripted model is priced
    # The Markdown report puts the variants side by side and names the regression.
    assert "|  | current | candidate |" in out
    assert "| success | 10/10 (100%) | 0/10 (0%) |" in out
    assert "candidate: success 0% vs 100% for current" in out
    # Only the candidate ran on the model: the current variant is the offline model's.
    assert model.count("plan") >= len(CASES)


async def test_a_baseline_holds_a_variant_to_what_it_did_before(
    client: Client,
    dev_server: DevServer,
    worker_settings: WorkerSettings,
    model: ScriptedModelServer,
    tmp_path: Path,
) -> None:
    """A report from before is the gate: the same variant, now worse, exits non-zero;
    and --json prints the report the gate read."""
    baseline = {
        "dataset": "examples",
        "results": [],
        "summaries": [
            {
                "variant": "current",
                "cases": 2,
                "passed": 2,
                "success_rate": 1.0,
                "interval": {"low": 0.34, "high": 1.0},
                "cost_usd": 0.0,
                "tokens": 0,
                "steps": 0,
                "wall_p50_s": 0.0,
                "wall_p95_s": 0.0,
                "approvals": 0,
                "failures_by_class": {},
            }
        ],
    }
    (tmp_path / "baseline.json").write_text(json.dumps(baseline))
    async with variant_worker(client, worker_settings, tmp_path, lazy_model(model)) as lazy:
        cases = [c for c in CASES if c["id"] in ("fe-list", "fe-txt")]
        ds = {"name": "examples", "variants": [{"name": "current", **lazy}], "cases": cases}
        (tmp_path / "ds.json").write_text(json.dumps(ds))
        cli = Cli(dev_server, "unused-queue", worker_settings.plugins or "")
        code, out, err = await cli(
            "eval",
            str(tmp_path / "ds.json"),
            "--baseline",
            str(tmp_path / "baseline.json"),
            "--json",
            timeout=300,
        )
    assert code == 10, err
    report = EvalReport.model_validate_json(out)
    assert report.summaries[0].passed == 0
    assert {r.case_id for r in report.results} == {"fe-list", "fe-txt"}


async def test_bad_datasets_are_one_line_naming_the_fix(
    dev_server: DevServer, tmp_path: Path
) -> None:
    cli = Cli(dev_server, "unused-queue", "examples.db_tuner")
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "cases": [
                    {
                        "id": "x",
                        "agent": "db-tuner",
                        "goal": "g",
                        "expect": {"answer": ["looks good"]},
                    }
                ]
            }
        )
    )
    code, _, err = await cli("eval", str(bad))
    assert code == 2 and "Traceback" not in err
    assert "answer check 'looks good' is not one code can check" in err
    (tmp_path / "broken.json").write_text("{")
    code, _, err = await cli("eval", str(tmp_path / "broken.json"))
    assert code == 2 and "not valid JSON" in err
    code, _, err = await cli("eval", str(tmp_path / "absent.json"))
    assert code == 2 and "cannot read the dataset" in err


async def test_state_checks_without_plugins_say_how_to_name_them(
    dev_server: DevServer, tmp_path: Path
) -> None:
    cli = Cli(dev_server, "unused-queue", "")
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"cases": [c for c in CASES if c["id"] == "db-fast"]}))
    code, _, err = await cli("eval", str(ds))
    assert code == 2 and "Traceback" not in err
    assert "no agent plugins configured: set AGENT_PLUGINS" in err
    code, _, err = await cli("eval", "--from-runs", f"{contract.AGENT_NAME} = 'db-tuner'")
    assert code == 2 and "set AGENT_PLUGINS" in err and "Traceback" not in err
    code, _, err = await cli("eval")
    assert code == 2 and "name a DATASET file, or re-run finished runs with --from-runs" in err


async def test_a_run_ended_from_outside_is_a_failed_case_not_a_failed_eval(
    client: Client,
    model: ScriptedModelServer,
    worker: None,
    task_queue: str,
    worker_settings: WorkerSettings,
) -> None:
    """Someone terminates a run mid-eval (the official CLI, the Web UI): its case fails
    with the reason, and the other cases are still reported."""
    model.set_responder(
        "plan", lambda _: plan_reply(tool_task("s", "record_slowly", name="slow", seconds=300))
    )
    model.set_responder("summarize", lambda _: Reply.text("done"))
    runner = EvalRunner(client, task_queue)
    variant = Variant(name="current")
    case = EvalCase(id="slow", agent="test-agent", goal="take your time")
    running = asyncio.create_task(runner.run_case(variant, case))
    handle = client.get_workflow_handle(workflow_id_for(runner.request_id(variant, case)))
    async with asyncio.timeout(60):
        while not executions(worker_settings.data_dir, "started"):
            await asyncio.sleep(0.1)
    await handle.terminate("an operator stopped it")
    result = await running
    assert not result.passed and result.status is None
    (failure,) = result.failures
    assert failure.kind is FailureClass.ERROR
    assert failure.detail.startswith("the run ended without a report")
