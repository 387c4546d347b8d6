"""``agentctl eval`` with a variant that overrides an agent's spec: the eval runs a worker
of its own with the patched spec on a private queue (a request could not carry it), and
the variant's runs obey it. Denying the db-tuner ``create_index`` makes it worse by
construction: the report shows it and the gate fails. A bad override stops the eval
before any run starts.
"""

import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain.eval_report import EvalReport
from durable_agents._domain.run import RunReport
from durable_agents._domain.spec import spec_hash
from durable_agents._domain.spec_overrides import apply_overrides
from durable_agents._domain.user_ledger import ledger_workflow_id
from durable_agents._workers.build import build_catalog
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import ScriptedModelServer
from examples.file_editor.spec import SYSTEM_PROMPT as FILE_EDITOR_PROMPT
from tests.support.agentctl import Cli
from tests.support.evals import CASES, lazy_model, prepare_data, variant_worker

pytestmark = pytest.mark.e2e

NO_INDEX: dict[str, Any] = {
    "system_prompt": "You tune SQLite databases. You may not create indexes.",
    "deny_tools": ["create_index"],
    "limits": {"max_replans": 2},
}


def _dataset(path: Path, variants: list[dict[str, Any]], user: str = "eval") -> Path:
    cases = [{**c, "user": user} for c in CASES if c["id"] in ("db-fast", "db-speed", "fe-list")]
    path.write_text(json.dumps({"name": "overrides", "variants": variants, "cases": cases}))
    return path


def _expected_hash(settings: WorkerSettings, patch: dict[str, Any]) -> str:
    """The hash of the spec a run of the patched db-tuner obeys on an offline worker."""
    catalog = build_catalog(replace(settings, openai_api_key=None, openai_base_url=None))
    catalog.add(apply_overrides(catalog.spec("db-tuner"), patch))
    return spec_hash(catalog.resolve_request("db-tuner", None, None))


async def _report_of(client: Client, workflow_id: str | None) -> RunReport:
    assert workflow_id
    report: RunReport = await client.get_workflow_handle(
        workflow_id, result_type=RunReport
    ).result()
    return report


async def test_a_spec_override_that_denies_a_tool_shows_and_fails_the_gate(
    client: Client, dev_server: DevServer, worker_settings: WorkerSettings, tmp_path: Path
) -> None:
    no_index_data = tmp_path / "no-index"
    prepare_data(no_index_data)
    user = f"eval-{uuid.uuid4().hex[:8]}"
    limits = tmp_path / "limits.json"
    limits.write_text(json.dumps({"*": 100.0}))  # every user has a monthly ledger
    async with variant_worker(client, worker_settings, tmp_path, None) as current:
        ds = _dataset(
            tmp_path / "ds.json",
            [
                {"name": "current", **current},
                {
                    "name": "no-index",
                    "data_dir": str(no_index_data),
                    "overrides": {"db-tuner": NO_INDEX},
                },
            ],
            user,
        )
        cli = Cli(dev_server, "unused-queue", worker_settings.plugins or "")
        cli.env["AGENT_USER_LIMITS_FILE"] = str(limits)
        code, out, err = await cli(
            "eval",
            str(ds),
            "--max-regression",
            "0.1",
            "--out",
            str(tmp_path / "r.json"),
            timeout=600,
        )
    assert code == 10, f"{out}\n{err}"
    report = EvalReport.model_validate_json((tmp_path / "r.json").read_text())
    by = {(r.variant, r.case_id): r for r in report.results}
    current_summary, no_index = report.summaries
    assert current_summary.passed == 3, [r.failures for r in report.results]
    # The file-editor is untouched by the override; both db-tuner cases fail on it.
    assert no_index.passed == 1 and by["no-index", "fe-list"].passed
    for case in ("db-fast", "db-speed"):
        result = by["no-index", case]
        assert not result.passed and not any(c.startswith("create_index") for c in result.calls)
        assert any(f.kind == "state" for f in result.failures), result.failures
        assert any(c.startswith("create_index") for c in by["current", case].calls)
    assert "no-index: success 33% vs 100% for current" in out
    said = " ".join(err.split())
    assert "no-index: runs on this eval's own worker (eval-" in said
    assert f"data in {no_index_data}) with specs overridden: db-tuner: deny_tools, " in said
    # What the runs obeyed is the patched spec, recorded (by its hash) in their histories;
    # the current variant's runs obeyed the worker's own.
    patched = await _report_of(client, by["no-index", "db-fast"].workflow_id)
    assert patched.spec_hash == _expected_hash(worker_settings, NO_INDEX)
    original = await _report_of(client, by["current", "db-fast"].workflow_id)
    assert original.spec_hash == _expected_hash(worker_settings, {})
    # The variant's tools worked on its own data directory (the state checks read it).
    assert (no_index_data / "db-tuner").exists()
    # The eval's own worker held nothing in the user's ledger, so no ledger was left on
    # its private queue (gone with the eval) for the user's later runs to trip on.
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(ledger_workflow_id(user)).describe()
    assert missing.value.status is RPCStatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("override", "says"),
    [
        (
            {"db-tuner": {"system_promt": "x"}},
            "'db-tuner' has no field 'system_promt' a variant may override; the fields: "
            "approvals, bounds, budget, deny_tools",
        ),
        (
            {"db-tuner": {"limits": {"max_replan": 1}}},
            "'db-tuner' has no field 'limits.max_replan'; the fields of limits: "
            "continue_as_new_every",
        ),
        (
            {"db-tuner": {"deny_tools": ["create_indx"]}},
            "variant 'bad': 'db-tuner' has no tool create_indx; its tools: list_tables",
        ),
        (
            {"db-tuner": {"limits": {"max_replans": -1}}},
            "variant 'bad': 'db-tuner' override: limits.max_replans: Input should be greater",
        ),
        ({"db-tunr": {"system_prompt": "x"}}, "variant 'bad': unknown agent 'db-tunr'"),
    ],
)
async def test_a_bad_override_is_one_line_and_starts_no_run(
    client: Client,
    dev_server: DevServer,
    worker_settings: WorkerSettings,
    tmp_path: Path,
    override: dict[str, Any],
    says: str,
) -> None:
    queue = f"no-worker-{uuid.uuid4().hex[:8]}"  # a run started here would never end
    ds = _dataset(
        tmp_path / "ds.json",
        [{"name": "current", "task_queue": queue}, {"name": "bad", "overrides": override}],
    )
    cli = Cli(dev_server, "unused-queue", worker_settings.plugins or "")
    code, _, err = await cli("eval", str(ds), "--case-timeout", "5")
    assert code == 2 and "Traceback" not in err, err
    assert says in " ".join(err.split()), err
    count = await client.count_workflows(f"TaskQueue = '{queue}'")
    assert count.count == 0


async def test_overrides_and_a_worker_version_do_not_mix(
    dev_server: DevServer, worker_settings: WorkerSettings, tmp_path: Path
) -> None:
    ds = _dataset(
        tmp_path / "ds.json",
        [{"name": "x", "task_queue": "q", "overrides": {"db-tuner": {"system_prompt": "p"}}}],
    )
    cli = Cli(dev_server, "unused-queue", worker_settings.plugins or "")
    code, _, err = await cli("eval", str(ds))
    assert code == 2 and "Traceback" not in err
    assert "variant 'x' overrides specs, so its runs go to this eval's own worker" in err


async def test_a_prompt_and_model_override_reach_the_model(
    dev_server: DevServer,
    worker_settings: WorkerSettings,
    model: ScriptedModelServer,
    tmp_path: Path,
) -> None:
    """With a model endpoint, the variant's planner gets its own system prompt on its own
    model; the other variant's the agent's."""
    lazy_model(model)
    terse = "You edit files. Answer in one word."
    ds = tmp_path / "ds.json"
    cases = [{**c, "expect": {"status": "completed"}} for c in CASES if c["id"] == "fe-list"]
    ds.write_text(
        json.dumps(
            {
                "variants": [
                    {"name": "as-is", "overrides": {"file-editor": {}}},
                    {
                        "name": "terse",
                        "overrides": {
                            "file-editor": {
                                "system_prompt": terse,
                                "models": {"plan": {"model": "gpt-4o"}},
                            }
                        },
                    },
                ],
                "cases": cases,
            }
        )
    )
    cli = Cli(dev_server, "unused-queue", worker_settings.plugins or "")
    cli.env.update(OPENAI_API_KEY="scripted", OPENAI_BASE_URL=model.base_url)
    code, out, err = await cli("eval", str(ds), "--json", timeout=300)
    assert code == 0, f"{out}\n{err}"
    assert [s.passed for s in EvalReport.model_validate_json(out).summaries] == [1, 1]
    plans = [r for r in model.requests if r.purpose == "plan"]
    prompts = {(r.model, r.body["messages"][0]["content"]) for r in plans}
    assert prompts == {("gpt-4o-mini", FILE_EDITOR_PROMPT), ("gpt-4o", terse)}, prompts
    # Other purposes keep the agent's route.
    assert {r.model for r in model.requests if r.purpose != "plan"} == {"gpt-4o-mini"}


async def test_overrides_without_plugins_say_how_to_name_them(
    dev_server: DevServer, tmp_path: Path
) -> None:
    ds = _dataset(tmp_path / "ds.json", [{"name": "x", "overrides": {"db-tuner": {}}}])
    code, _, err = await Cli(dev_server, "unused-queue", "")("eval", str(ds))
    assert code == 2 and "Traceback" not in err
    assert "no agent plugins configured: set AGENT_PLUGINS" in err
