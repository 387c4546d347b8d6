"""A canary rollout with Worker Versioning, on the real dev server, with two real worker
processes of the same deployment and different build ids (the offline model plays the
agents). A run waiting on a person when a ramp (or a rollback) changes where new runs
go finishes on the version it started on, its tools on that version's workers.
"""

import asyncio
import json
import sqlite3
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import VersioningBehavior
from temporalio.client import Client

from durable_agents._client.evals import EvalRunner
from durable_agents._client.rollout import Rollout
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain.approvals import Decision
from durable_agents._domain.eval_cases import Dataset
from durable_agents._domain.run import RunStatus
from durable_agents._domain.user_ledger import ledger_workflow_id
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing import pending_request
from examples.db_tuner.data import default_db_path
from tests.support.agentctl import Cli
from tests.support.agents import LocalAgents
from tests.support.evals import CASES, prepare_data
from tests.support.processes import WorkerProcess
from tests.support.ramp import ramp_threshold, request_ids_by_side

pytestmark = pytest.mark.e2e
LEGACY_INDEX = "idx_products_legacy_sku"


async def _version(client: Client, workflow_id: str) -> str:
    desc = await client.get_workflow_handle(workflow_id).describe()
    return desc.raw_description.workflow_execution_info.versioning_info.deployment_version.build_id


async def _registered(rollout: Rollout, *builds: str) -> None:
    """Wait until the server has seen each version's workers poll."""
    async with asyncio.timeout(60):
        while True:
            try:
                known = {v.build_id for v in (await rollout.status()).versions}
            except LookupError:
                known = set()
            if set(builds) <= known:
                return
            await asyncio.sleep(0.2)


async def _list_runs(
    agents: LocalAgents, client: Client, n: int, request_ids: list[str] | None = None
) -> list[str]:
    """Start ``n`` quick runs (with these request ids), wait for them, and return the
    version each ran on."""
    ids: list[str | None] = list(request_ids) if request_ids else [None] * n
    handles = [await agents.start_run("file-editor", "List the files.", request_id=i) for i in ids]
    for h in handles:
        assert (await agents.result(h.workflow_id)).status is RunStatus.COMPLETED
    return [await _version(client, h.workflow_id) for h in handles]


async def _approve_drop(agents: LocalAgents, workflow_id: str) -> None:
    request = await pending_request(agents, workflow_id, timeout=120)
    assert request.tool == "drop_index"
    decision = Decision(request_id=request.id, approver="dba", args_digest=request.args_digest)
    await agents.approve(workflow_id, decision)


def _has_legacy_index(data_dir: Path) -> bool:
    with sqlite3.connect(default_db_path(data_dir)) as conn:
        row = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (LEGACY_INDEX,))
        return row.fetchone() is not None


async def test_ramp_promote_and_roll_back_leave_runs_in_flight_on_their_version(
    client: Client,
    dev_server: DevServer,
    agents: LocalAgents,
    worker_settings: WorkerSettings,
    tmp_path: Path,
) -> None:
    deployment = f"agents-{uuid.uuid4().hex[:8]}"
    cli = Cli(dev_server, agents.task_queue, worker_settings.plugins or "")
    cli.env["AGENT_DEPLOYMENT"] = deployment
    workers: dict[str, tuple[WorkerProcess, Path]] = {}
    rollout = Rollout(client, deployment)
    limits = tmp_path / "limits.json"
    limits.write_text(json.dumps({"*": 100.0}))  # every user has a ledger
    try:
        for build in ("v1", "v2"):
            data_dir = tmp_path / build
            prepare_data(data_dir)
            settings = replace(
                worker_settings,
                data_dir=data_dir,
                openai_api_key=None,
                openai_base_url=None,
                deployment=deployment,
                build_id=build,
                user_limits_file=limits,
            )
            proc = WorkerProcess(settings.process_env(), tmp_path / f"{build}.log")
            workers[build] = (await proc.start(), data_dir)
            await _registered(rollout, build)
            if build == "v1":
                code, out, err = await cli("rollout", "promote", "--build-id", "v1")
                assert code == 0 and "now goes to v1" in out, err
                # A run that waits on a person, pinned to v1 from its start.
                pinned = await agents.start_run("db-tuner", "make the slow queries fast")
                await pending_request(agents, pinned.workflow_id, timeout=120)

        # Before any ramp: an eval of the same request live on v1 and in shadow on v2
        # (pinned to each version, whatever the routing).
        pinned_variants = Dataset.model_validate(
            {
                "variants": [
                    {"name": "v1", "deployment": deployment, "build_id": "v1"},
                    {
                        "name": "v2-shadow",
                        "deployment": deployment,
                        "build_id": "v2",
                        "shadow": True,
                        "compare_to": "v1",
                    },
                ],
                "cases": [c for c in CASES if c["id"] == "fe-txt"],
            }
        )
        evaluated = await EvalRunner(client, agents.task_queue).run(pinned_variants)
        live, shadow = evaluated.results
        assert await _version(client, live.workflow_id) == "v1"
        assert await _version(client, shadow.workflow_id) == "v2"
        (compared,) = evaluated.shadow
        assert compared.same_plan and shadow.would_have_called and not compared.same_answer
        assert (workers["v2"][1] / "file-editor" / "workspace" / "a.txt").read_text() == "alpha\n"

        code, out, err = await cli("rollout", "ramp", "50", "--build-id", "v2")
        assert code == 0 and "50% of new runs" in out, err
        # The server routes a ramp by a hash of the workflow id (tests/support/ramp.py):
        # runs it sends to v2 and runs it keeps on v1, chosen in advance, land as predicted.
        to_v2, to_v1 = request_ids_by_side(50, each=4)
        spread = await _list_runs(agents, client, 8, to_v2 + to_v1)
        assert spread == ["v2"] * 4 + ["v1"] * 4, spread

        # The pinned run, decided now, finishes on v1: its drop ran on v1's database.
        await _approve_drop(agents, pinned.workflow_id)
        report = await agents.result(pinned.workflow_id)
        assert (
            report.status is RunStatus.COMPLETED
            and await _version(client, pinned.workflow_id) == "v1"
        )
        assert not _has_legacy_index(workers["v1"][1]) and _has_legacy_index(workers["v2"][1])

        status: dict[str, Any] = await cli.json("rollout", "status")
        by = {v["build_id"]: v for v in status["versions"]}
        assert status["current"] == "v1" and status["ramping"] == "v2"
        assert status["ramp_percent"] == 50
        assert by["v1"]["finished"] + by["v2"]["finished"] == 11  # 8, the pinned, the eval
        assert by["v1"]["completed"] == by["v1"]["finished"] and by["v2"]["running"] == 0

        code, out, _ = await cli("rollout", "status")
        assert code == 0 and "new runs to v1, 50% to v2" in out
        assert "ramping 50%" in out and "current" in out

        # All new runs to v2; one of them waits on a person when the ramp is rolled back.
        await cli("rollout", "ramp", "100", "--build-id", "v2")
        on_v2 = await agents.start_run("db-tuner", "make the slow queries fast")
        await pending_request(agents, on_v2.workflow_id, timeout=120)
        assert await _version(client, on_v2.workflow_id) == "v2"
        code, out, err = await cli("rollout", "rollback")
        assert code == 0 and "now goes to v1" in out, err
        assert set(await _list_runs(agents, client, 4)) == {"v1"}
        status = await cli.json("rollout", "status")
        assert {v["build_id"]: v["running"] for v in status["versions"]}["v2"] == 1
        await _approve_drop(agents, on_v2.workflow_id)
        assert (await agents.result(on_v2.workflow_id)).status is RunStatus.COMPLETED
        assert await _version(client, on_v2.workflow_id) == "v2"
        assert not _has_legacy_index(workers["v2"][1])

        # Promoted, then rolled back to the version current before it.
        code, out, _ = await cli("rollout", "promote", "--build-id", "v2")
        assert code == 0 and set(await _list_runs(agents, client, 3)) == {"v2"}
        code, out, err = await cli("rollout", "rollback")
        assert code == 0 and "now goes to v1" in out, err
        assert set(await _list_runs(agents, client, 3)) == {"v1"}
        # The users' ledger (a month long) follows the current version instead of pinning.
        ledger = await client.get_workflow_handle(ledger_workflow_id("anonymous")).describe()
        info = ledger.raw_description.workflow_execution_info.versioning_info
        assert info.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE
    finally:
        for proc, _ in workers.values():
            proc.terminate()


async def test_rollout_without_a_deployment_says_how_to_make_one(
    dev_server: DevServer, task_queue: str
) -> None:
    cli = Cli(dev_server, task_queue, "examples.db_tuner")
    code, _, err = await cli("rollout", "status", "--deployment", "nowhere")
    assert code == 1 and "Traceback" not in err
    assert "no Worker Deployment 'nowhere'" in err and "AGENT_BUILD_ID" in err


def test_the_ramp_hash_is_the_servers() -> None:
    """Fingerprints of go-farm (the server's hash), computed with the Go module itself."""
    go_farm = {"run-a": 1048743129, "run-b": 1462300752, "hello": 2039911270}
    for workflow_id, fingerprint in go_farm.items():
        assert ramp_threshold(workflow_id) == 100 * fingerprint / 2**32
