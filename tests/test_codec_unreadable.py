"""agentctl over runs it cannot decode (encrypted with keys it lacks): `report` and `list`
say so per run and go on, instead of failing on "Unknown payload encoding"."""

import pytest
from temporalio.client import Client

from durable_agents._activities.catalog import Catalog
from durable_agents._devtools.dev_server import DevServer
from durable_agents._infra.codec import EncryptionCodec, new_key, parse_keys
from durable_agents._infra.connection import data_converter
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agentctl import Cli
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

pytestmark = pytest.mark.e2e


async def test_report_and_list_name_the_runs_they_cannot_decode(
    dev_server: DevServer,
    catalog: Catalog,
    model: ScriptedModelServer,
    worker_settings: WorkerSettings,
    task_queue: str,
    cli: Cli,
) -> None:
    codec = EncryptionCodec(parse_keys(f"k:{new_key()}"))
    client = await Client.connect(
        dev_server.address, namespace=dev_server.namespace, data_converter=data_converter(codec)
    )
    model.enqueue(plan_reply(tool_task("t", "record_effect", name="sealed")), purpose="plan")
    model.set_responder("plan", lambda _: plan_reply(done=True))
    model.set_responder("summarize", lambda _: Reply.text("sealed answer"))
    agents = LocalAgents(client, catalog, task_queue)
    async with build_worker(client, worker_settings, catalog=catalog):
        handle = await agents.start_run("test-agent", "a sealed run", user="sealed-user")
        await agents.result(handle.workflow_id)
    env = {k: v for k, v in cli.env.items() if k != "AGENT_CODEC_KEYS"}
    cli.env = env
    code, out, err = await cli("report", "--since", "1h")
    assert code == 0, err
    text = " ".join((out + err).split())
    assert f"{handle.workflow_id}: cannot decode its payloads" in text, text
    assert "binary/encrypted" in text
    code, out, err = await cli("list", "--user", "sealed-user")
    assert code == 0, err
    assert handle.workflow_id in out and "completed" in out
