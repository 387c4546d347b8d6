"""A worker with codec keys refuses what it cannot decrypt, without ever failing a
workflow task: the workflow gets the `domain.refused` sentinel instead."""

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter

from durable_agents._activities.catalog import Catalog
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain import contract
from durable_agents._domain.approvals import Decision
from durable_agents._domain.refused import REFUSED_PAYLOAD_KEY, RefusedPayload, refused_reason
from durable_agents._domain.run import RunStatus
from durable_agents._infra.codec import EncryptionCodec, RefusingCodec, new_key, parse_keys
from durable_agents._infra.connection import data_converter, worker_client
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.attacks import TemporalCli
from tests.support.plans import plan_reply, tool_task
from tests.support.temporal_signal import signal_with_temporal_cli

KEY_A, KEY_B = new_key(), new_key()


def _keyed(client: Client, codec: EncryptionCodec) -> Client:
    """``client`` (same connection) with the project's converter under ``codec``."""
    config = client.config()
    config["data_converter"] = data_converter(codec)
    return Client(**config)


def _payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def _value(payload: Payload) -> object:
    (value,) = pydantic_data_converter.payload_converter.from_payloads([payload])
    return value


@pytest.mark.unit
async def test_worker_codec_turns_what_it_cannot_decrypt_into_the_sentinel() -> None:
    worker = EncryptionCodec(parse_keys(f"a:{KEY_A}")).refusing()
    assert isinstance(worker, RefusingCodec)
    good = await worker.encode([_payload({"ok": 1})])
    under_b = await EncryptionCodec(parse_keys(f"b:{KEY_B}")).encode([_payload({"ok": 2})])
    forged = Payload()
    forged.CopyFrom(good[0])
    forged.data = forged.data[:-1] + bytes([forged.data[-1] ^ 1])
    truncated = Payload(metadata=good[0].metadata, data=b"short")
    decoded = await worker.decode(
        [_payload({"x": 1}), good[0], under_b[0], forged, truncated]
    )  # never raises: a raise here would fail the workflow task in a loop
    plain, ok, unknown, bad, short = (_value(p) for p in decoded)
    assert ok == {"ok": 1} and refused_reason(ok) is None
    assert decoded[0].metadata["encoding"] == b"json/plain"
    reason = refused_reason(plain)
    assert reason is not None and reason.startswith("unencrypted payload refused")
    assert "AGENT_CODEC_KEYS" in reason and "AGENT_ACCEPT_PLAINTEXT=1" in reason
    assert "key 'b', which is not in AGENT_CODEC_KEYS" in (refused_reason(unknown) or "")
    assert "does not decrypt with key 'a'" in (refused_reason(bad) or "")
    assert "does not decrypt with key 'a'" in (refused_reason(short) or "")
    # Clients still read plaintext (runs from before the keys), and still raise on the rest.
    client = EncryptionCodec(parse_keys(f"a:{KEY_A}"))
    assert await client.decode([_payload({"x": 1})]) == [_payload({"x": 1})]
    with pytest.raises(ValueError, match="does not decrypt"):
        await client.decode([forged])


@pytest.mark.unit
def test_refused_reason_finds_the_sentinel_in_a_dict_or_a_typed_union() -> None:
    sentinel = {REFUSED_PAYLOAD_KEY: "why"}
    assert refused_reason(sentinel) == "why"
    as_model = TypeAdapter(Decision | RefusedPayload).validate_python(sentinel)
    assert isinstance(as_model, RefusedPayload) and refused_reason(as_model) == "why"
    decision = TypeAdapter(Decision | RefusedPayload).validate_python(
        {"request_id": "r", "approver": "ana"}
    )
    assert isinstance(decision, Decision) and refused_reason(decision) is None
    for value in ({REFUSED_PAYLOAD_KEY: "x", "more": 1}, {"request_id": "r"}, "text", None):
        assert refused_reason(value) is None


@pytest.mark.unit
async def test_failure_messages_and_stack_traces_are_encrypted_and_read_back() -> None:
    from temporalio.api.failure.v1 import Failure
    from temporalio.exceptions import ApplicationError

    converter = data_converter(EncryptionCodec(parse_keys(f"a:{KEY_A}")))
    try:
        raise ApplicationError("create_index(SECRET-ARG) failed", type="ToolInputError")
    except ApplicationError as err:
        failure = Failure()
        await converter.encode_failure(err, failure)
    assert b"SECRET-ARG" not in failure.SerializeToString()
    assert failure.message == "Encoded failure" and failure.stack_trace == ""
    assert failure.application_failure_info.type == "ToolInputError"  # stays readable
    back = await converter.decode_failure(failure)
    assert isinstance(back, ApplicationError)
    assert back.message == "create_index(SECRET-ARG) failed"
    assert back.failure is not None and "test_codec_refusal.py" in back.failure.stack_trace


@pytest.mark.e2e
async def test_worker_client_refuses_plaintext_unless_told_to_accept_it(client: Client) -> None:
    keyed = _keyed(client, EncryptionCodec(parse_keys(f"a:{KEY_A}")))
    assert worker_client(client) is client  # no keys: nothing to refuse
    assert worker_client(keyed, accept_plaintext=True) is keyed
    refusing = worker_client(keyed)
    assert isinstance(refusing.data_converter.payload_codec, RefusingCodec)
    assert refusing.service_client is keyed.service_client
    assert (
        refusing.data_converter.failure_converter_class
        is keyed.data_converter.failure_converter_class
    )


async def _signal_handled(client: Client, workflow_id: str) -> None:
    """Wait until a workflow task completed after the run's last signal (or failed)."""
    handle = client.get_workflow_handle(workflow_id)
    async with asyncio.timeout(30):
        while True:
            kinds = [e.event_type async for e in handle.fetch_history_events()]
            assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds
            signaled = [
                i
                for i, k in enumerate(kinds)
                if k == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            ]
            completed = [
                i for i, k in enumerate(kinds) if k == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            ]
            if signaled and completed and completed[-1] > signaled[-1]:
                return
            await asyncio.sleep(0.1)


@pytest.mark.e2e
async def test_an_unencrypted_signal_from_the_temporal_cli_is_refused_and_never_wedges_the_run(
    client: Client,
    dev_server: DevServer,
    catalog: Catalog,
    model: ScriptedModelServer,
    worker_settings: WorkerSettings,
    task_queue: str,
    temporal_cli: Path,
) -> None:
    keyed = _keyed(client, EncryptionCodec(parse_keys(f"a:{KEY_A}")))
    model.enqueue(plan_reply(tool_task("go", "launch_rocket", name="refusal")), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")
    agents = LocalAgents(keyed, catalog, task_queue)
    async with build_worker(keyed, worker_settings, catalog=catalog):
        handle = await agents.start_run("test-agent", "launch")
        wid = handle.workflow_id
        request = await pending_request(agents, wid)
        # A well-formed approval, but in plaintext: anyone who reaches the frontend can send it.
        forged = {"request_id": request.id, "approver": "ana", "reason": "PLAINTEXT"}
        await signal_with_temporal_cli(
            temporal_cli, dev_server.address, wid, contract.APPROVE, forged, dev_server.namespace
        )
        await _signal_handled(keyed, wid)
        view = await agents.status(wid)  # still answering, still waiting: not approved
        assert view.status is RunStatus.RUNNING
        assert [a.id for a in view.pending_approvals] == [request.id]
        await agents.approve(
            wid,
            Decision(
                request_id=request.id,
                args_digest=request.args_digest,
                approver="ana",
                reason="sealed",
            ),
        )
        report = await asyncio.wait_for(agents.result(wid), 60)
    assert report.status is RunStatus.COMPLETED
    (approval,) = report.approvals
    assert approval.reason == "sealed"
    (ignored,) = [a for a in report.audit if not a.accepted]  # the plaintext one
    assert "unencrypted payload refused" in ignored.detail
    history = await keyed.get_workflow_handle(wid).fetch_history()
    assert not [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]


@pytest.mark.e2e
async def test_an_unencrypted_start_from_the_temporal_cli_fails_the_run_with_the_reason(
    client: Client,
    dev_server: DevServer,
    catalog: Catalog,
    worker_settings: WorkerSettings,
    task_queue: str,
    temporal_cli: Path,
) -> None:
    keyed = _keyed(client, EncryptionCodec(parse_keys(f"a:{KEY_A}")))
    wid = f"run-plain-{uuid.uuid4().hex[:8]}"
    request = {"request_id": wid[4:], "goal": "PLAINTEXT goal", "agent": "test-agent"}
    async with build_worker(keyed, worker_settings, catalog=catalog):
        tcli = TemporalCli(temporal_cli, dev_server.address, dev_server.namespace)
        done = await tcli.start(contract.AGENT_RUN, wid, task_queue, [request])
        assert done.code == 0, done.output
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(keyed.get_workflow_handle(wid).result(), 60)
    assert "unencrypted payload refused" in str(failed.value.cause)
    history = await keyed.get_workflow_handle(wid).fetch_history()
    assert not [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]
