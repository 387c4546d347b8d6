"""Payload encryption: round trips, key rotation, the codec server, and a server database
and payload store that hold no plaintext prompt, goal, tool argument or failure message."""

import base64
import contextlib
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes

from durable_agents._activities.catalog import Catalog
from durable_agents._devtools.dev_server import DevServer
from durable_agents._infra.codec import CodecKeyError, EncryptionCodec, new_key, parse_keys
from durable_agents._infra.codec_server import CodecServer
from durable_agents._infra.connection import data_converter
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents._workflows.agent_run import AgentRun
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.cluster_target import ClusterTarget
from tests.support.plans import plan_reply, tool_task

KEY_A, KEY_B = new_key(), new_key()


def _payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


@pytest.mark.unit
async def test_round_trip_and_no_plaintext_in_the_encrypted_bytes() -> None:
    codec = EncryptionCodec(parse_keys(f"a:{KEY_A}"))
    original = [_payload("the secret goal"), _payload("another")]
    sealed = await codec.encode(original)
    assert all(b"secret" not in p.SerializeToString() for p in sealed)
    assert sealed[0].metadata["encryption-key-id"] == b"a"
    assert await codec.decode(sealed) == original


@pytest.mark.unit
async def test_old_keys_still_decrypt_after_rotation() -> None:
    old = EncryptionCodec(parse_keys(f"a:{KEY_A}"))
    sealed_with_a = await old.encode([_payload("written before rotation")])
    rotated = EncryptionCodec(parse_keys(f"b:{KEY_B},a:{KEY_A}"))
    assert await rotated.decode(sealed_with_a) == [_payload("written before rotation")]
    assert (await rotated.encode([_payload("x")]))[0].metadata["encryption-key-id"] == b"b"
    only_b = EncryptionCodec(parse_keys(f"b:{KEY_B}"))
    with pytest.raises(CodecKeyError, match="key 'a', which is not in AGENT_CODEC_KEYS"):
        await only_b.decode(sealed_with_a)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nokey", "key_id:base64key"),
        ("a:!!!", "not valid base64"),
        (f"a:{base64.b64encode(b'short').decode()}", "AES-256 needs 32"),
        (" , ", "names no key"),
    ],
)
def test_bad_key_configuration_is_explained(spec: str, message: str) -> None:
    with pytest.raises(CodecKeyError, match=message):
        parse_keys(spec)


@pytest.fixture
def codec_server() -> Iterator[CodecServer]:
    server = CodecServer(EncryptionCodec(parse_keys(f"a:{KEY_A}")), token="t0k3n").start()
    yield server
    server.stop()


def _post(url: str, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


@pytest.mark.unit
def test_codec_server_decodes_for_the_ui_with_cors_and_auth(codec_server: CodecServer) -> None:
    plain = json_format.MessageToDict(Payloads(payloads=[_payload("shown in the UI")]))
    auth = {
        "Authorization": "Bearer t0k3n",
        "Origin": "http://127.0.0.1:8233",
        "X-Namespace": "default",
    }
    status, headers, encoded = _post(f"{codec_server.url}/encode", plain, auth)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8233"
    assert "shown in the UI" not in json.dumps(encoded)
    status, _, decoded = _post(f"{codec_server.url}/decode", encoded, auth)
    assert status == 200 and decoded == plain
    status, _, _ = _post(f"{codec_server.url}/decode", encoded, {"Origin": auth["Origin"]})
    assert status == 401  # no token
    status, headers, _ = _post(
        f"{codec_server.url}/decode", encoded, {**auth, "Origin": "http://evil.example"}
    )
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    preflight = urllib.request.Request(
        f"{codec_server.url}/decode", method="OPTIONS", headers={"Origin": "http://localhost:8233"}
    )
    with urllib.request.urlopen(preflight, timeout=10) as resp:
        assert resp.status == 204
        assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]


def _scan(*roots: Path, pattern: str = "*") -> bytes:
    """Every byte under ``roots`` (files matching ``pattern``), to look for plaintext.

    SQLite's rollback journal comes and goes as the server writes: a file that vanished
    between listing and reading held nothing that is not in the database by then.
    """
    found = []
    for path in (p for r in roots for p in r.rglob(pattern)):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            found.append(path.read_bytes())
    return b"".join(found)


def _server_storage(server: DevServer) -> bytes:
    """What the server keeps: its SQLite files, or a cluster's PostgreSQL databases."""
    if isinstance(server, ClusterTarget):
        return server.stored_bytes()
    assert server.db_file is not None
    return _scan(Path(server.db_file).parent, pattern="temporal.db*")


@pytest.mark.e2e
async def test_server_database_and_payload_store_hold_no_plaintext_with_the_codec_on(
    dev_server: DevServer,
    catalog: Catalog,
    model: ScriptedModelServer,
    worker_settings: WorkerSettings,
    task_queue: str,
) -> None:
    codec = EncryptionCodec(parse_keys(f"a:{KEY_A}"))
    client = await Client.connect(
        dev_server.address, namespace=dev_server.namespace, data_converter=data_converter(codec)
    )
    marker = uuid.uuid4().hex
    goal, arg = f"GOAL-{marker}", f"ARG-{marker}"
    big = f"BIG-{marker} " * 600  # over the inline limit: the output goes to the payload store
    model.enqueue(
        plan_reply(
            tool_task("t", "record_effect", name=arg),
            tool_task("big", "record_effect", name=big),
            # Fails once quoting its argument, then succeeds (the server keeps the failure).
            tool_task("flaky", "flaky", name=f"RETRIED-{marker}", failures=1),
            # Fails for good quoting its argument: a failure in the history.
            tool_task("down", "fragile", name=f"FAILED-{marker}", fail=True),
        ),
        purpose="plan",
    )
    model.set_responder("plan", lambda _: plan_reply(done=True))
    model.set_responder("summarize", lambda _: Reply.text(f"ANSWER-{marker}"))
    agents = LocalAgents(client, catalog, task_queue)
    async with build_worker(client, worker_settings, catalog=catalog):
        handle = await agents.start_run("test-agent", goal)
        report = await agents.result(handle.workflow_id)
    assert report.goal == goal  # decrypted for us
    # The prompts really carried the secrets to the model...
    assert any(goal in json.dumps(r.body) for r in model.requests)
    assert any(f"FAILED-{marker}" in json.dumps(r.body) for r in model.requests)
    # ...and our client reads the failure messages back...
    history = await client.get_workflow_handle(handle.workflow_id).fetch_history()
    failed = [
        e.activity_task_failed_event_attributes.failure
        for e in history.events
        if e.HasField("activity_task_failed_event_attributes")
    ]
    retried = [
        e.activity_task_started_event_attributes.last_failure
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
        and e.activity_task_started_event_attributes.HasField("last_failure")
    ]
    assert failed and retried and failed[0].message == "Encoded failure"
    messages = [str(await client.data_converter.decode_failure(f)) for f in failed + retried]
    assert any(f"FAILED-{marker}: backend down" in m for m in messages)
    assert any(f"RETRIED-{marker}: service busy" in m for m in messages)
    # ...but the server only ever saw ciphertext, and the payload store holds no plaintext.
    store = worker_settings.data_dir / "payloads"
    assert _scan(store), "the test meant to put a tool output in the payload store"
    assert marker.encode() not in _server_storage(dev_server)
    assert marker.encode() not in _scan(store)
    # Control: the same scan finds what a client without the codec writes.
    plain_client = await Client.connect(
        dev_server.address, namespace=dev_server.namespace, data_converter=pydantic_data_converter
    )
    control = f"CONTROL-{marker}"
    plain = await plain_client.start_workflow(
        AgentRun.run, {"goal": control}, id=control, task_queue="nobody-listens"
    )
    await plain.terminate("control only")
    stored = _server_storage(dev_server)
    assert control.encode() in stored
    assert marker.encode() not in stored.replace(control.encode(), b"")
    # A client without the key cannot read the run.
    history = await plain_client.get_workflow_handle(handle.workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.input.payloads[0].metadata["encoding"] == b"binary/encrypted"


@pytest.mark.unit
async def test_agentctl_codec_server_serves_decode(tmp_path: Path) -> None:
    import asyncio
    import os
    import sys

    from durable_agents._devtools.dev_server import free_port
    from tests.support.processes import REPO

    port = free_port()
    key = f"k1:{KEY_A}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "durable_agents._cli.main",
        "codec-server",
        "--port",
        str(port),
        cwd=REPO,
        env={**os.environ, "AGENT_CODEC_KEYS": key, "AGENT_CODEC_TOKEN": "tk"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert f"http://127.0.0.1:{port}" in line.decode()
        sealed = await EncryptionCodec(parse_keys(key)).encode([_payload("via agentctl")])
        body = json_format.MessageToDict(Payloads(payloads=sealed))
        status, _, decoded = await asyncio.to_thread(
            _post, f"http://127.0.0.1:{port}/decode", body, {"Authorization": "Bearer tk"}
        )
        assert status == 200
        assert decoded == json_format.MessageToDict(Payloads(payloads=[_payload("via agentctl")]))
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.unit
def test_every_client_encrypts_when_keys_are_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_CODEC_KEYS", raising=False)
    assert data_converter().payload_codec is None
    monkeypatch.setenv("AGENT_CODEC_KEYS", f"k:{KEY_A}")
    assert isinstance(data_converter().payload_codec, EncryptionCodec)
    assert data_converter().failure_converter_class is DefaultFailureConverterWithEncodedAttributes
    monkeypatch.setenv("AGENT_CODEC_KEYS", "broken")
    with pytest.raises(CodecKeyError):
        data_converter()
