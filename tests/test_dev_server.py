"""End-to-end checks of the Temporal CLI finder and the dev-server manager (real server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio import activity, workflow
from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeTaskQueueRequest,
    RegisterNamespaceRequest,
)
from temporalio.client import Client
from temporalio.worker import Worker

import durable_agents._devtools.dev_server as dev_server_module
from durable_agents._devtools.dev_server import SYNCHRONOUS_ENV, DevServer, DevServerError
from durable_agents._devtools.temporal_cli import TemporalCliNotFoundError, find_temporal_cli
from durable_agents._domain.contract import SEARCH_ATTRIBUTE_TYPES

# The first run may build the CLI from Go modules, which takes minutes.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

_INDEX_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
}


@pytest.fixture(scope="module")
def temporal_cli() -> Path:
    return find_temporal_cli()


async def _custom_attributes(server: DevServer) -> dict[str, int]:
    client = await Client.connect(server.address, namespace=server.namespace)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=server.namespace)
    )
    return dict(listed.custom_attributes)


def _is_stopped(server: DevServer) -> bool:
    # A function, so mypy does not carry the `pid is not None` narrowing from above.
    return not server.running and server.pid is None


def test_find_temporal_cli_returns_a_working_binary(temporal_cli: Path) -> None:
    done = subprocess.run(
        [str(temporal_cli), "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("temporal version")


def test_temporal_cli_env_pointing_to_a_non_executable_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_binary = tmp_path / "temporal"
    not_a_binary.write_text("#!/bin/sh\n")  # no exec bit
    monkeypatch.setenv("TEMPORAL_CLI", str(not_a_binary))
    with pytest.raises(TemporalCliNotFoundError) as info:
        find_temporal_cli()
    message = str(info.value)
    assert f"$TEMPORAL_CLI={not_a_binary}: not an executable file" in message
    assert "Go >= 1.23" in message
    assert "PATH" in message


async def test_sqlite_server_registers_attributes_and_survives_restart(
    tmp_path: Path, temporal_cli: Path
) -> None:
    db_file = tmp_path / "temporal.db"
    server = DevServer(db_file=db_file, cli=temporal_cli, log_file=tmp_path / "server.log")
    pids: list[int] = []
    try:
        await server.start()
        assert server.pid is not None
        pids.append(server.pid)
        assert db_file.exists()
        expected = {name: _INDEX_TYPES[kind] for name, kind in SEARCH_ATTRIBUTE_TYPES.items()}
        assert (await _custom_attributes(server)).items() >= expected.items()
        async with httpx.AsyncClient() as http:
            assert (await http.get(server.ui_url)).status_code == 200

        # A namespace registered at runtime lives only in the SQLite file.
        client = await Client.connect(server.address)
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace="survivor", workflow_execution_retention_period=Duration(seconds=86400)
            )
        )
        address, ui_url = server.address, server.ui_url

        await server.restart()  # graceful: SIGTERM
        assert server.pid is not None
        pids.append(server.pid)
        assert (server.address, server.ui_url) == (address, ui_url)
        assert (await _custom_attributes(server)).items() >= expected.items()
        client = await Client.connect(server.address)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace="survivor")
        )

        server.kill()  # as a crash would
        assert not server.running
        await server.restart()
        assert server.pid is not None
        pids.append(server.pid)
        assert (await _custom_attributes(server)).items() >= expected.items()
    finally:
        await server.stop()
    assert _is_stopped(server)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_restart_registers_attributes_the_existing_db_lacks(
    tmp_path: Path, temporal_cli: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # start-dev only applies --search-attribute when it creates the namespace, so an attribute
    # added to the code later must still show up on an old SQLite file.
    server = DevServer(
        db_file=tmp_path / "temporal.db", ui=False, cli=temporal_cli, log_file=tmp_path / "log"
    )
    try:
        await server.start()
        await server.stop()
        monkeypatch.setattr(
            dev_server_module,
            "SEARCH_ATTRIBUTE_TYPES",
            {**SEARCH_ATTRIBUTE_TYPES, "AddedLater": "Keyword"},
        )
        await server.start()
        assert (await _custom_attributes(server))[
            "AddedLater"
        ] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    finally:
        await server.stop()


async def test_start_failure_reports_the_server_log(tmp_path: Path, temporal_cli: Path) -> None:
    # A directory is not a usable SQLite file: the server exits at once.
    server = DevServer(
        db_file=tmp_path, ui=False, cli=temporal_cli, log_file=tmp_path.parent / "server.log"
    )
    with pytest.raises(DevServerError, match="exited with code") as info:
        await server.start(timeout=30)
    assert "failed starting server" in str(info.value)
    assert not server.running


async def test_start_refuses_a_port_that_is_already_taken(
    tmp_path: Path, temporal_cli: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = DevServer(port=port, ui=False, cli=temporal_cli, log_file=tmp_path / "log")
        with pytest.raises(DevServerError, match="already in use"):
            await server.start()


_PARENT = """
import subprocess, sys, time
from durable_agents._devtools.dev_server import die_with_parent

child = subprocess.Popen(["sleep", "600"], preexec_fn=die_with_parent, start_new_session=True)
print(child.pid, flush=True)
time.sleep(600)
"""


def test_children_do_not_outlive_a_killed_parent() -> None:
    """What the dev server and test workers are started with: a test run or `agentctl
    dev` killed with SIGKILL leaves no process behind (a plain child would live on)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
                return  # exited; its zombie waits for init to reap it
        except FileNotFoundError:
            return
        time.sleep(0.1)
    os.kill(child, 9)
    pytest.fail(f"child {child} still running after its parent was killed")


@activity.defn(name="bench_increment")
async def _increment(x: int) -> int:
    return x + 1


@workflow.defn(name="EagerProbe", sandboxed=False)
class _EagerProbe:
    @workflow.run
    async def run(self) -> int:
        n = 0
        for _ in range(3):
            n = await workflow.execute_activity(
                _increment, n, start_to_close_timeout=timedelta(seconds=30)
            )
        return n


async def _matching_adds(client: Client, queue: str) -> float:
    """Activity tasks matching saw added to ``queue`` lately (eager ones never reach it)."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace="default",
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_stats=True,
        )
    )
    return described.stats.tasks_add_rate


async def _probe(client: Client, *, eager_activities: bool) -> tuple[bool, float]:
    queue = f"probe-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[_EagerProbe],
        activities=[_increment],
        disable_eager_activity_execution=not eager_activities,
    ):
        handle = await client.start_workflow(
            _EagerProbe.run, id=queue, task_queue=queue, request_eager_start=True
        )
        assert await handle.result() == 3
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    return started.eager_execution_accepted, await _matching_adds(client, queue)


async def test_the_embedded_server_runs_tuned(tmp_path: Path, temporal_cli: Path) -> None:
    """WAL with synchronous=FULL, eager workflow start and eager activity dispatch
    (see dev_server.THROUGHPUT), as the server reports them (the transfer-queue cap has no
    read-back: the server reports no dynamic config, but logs any value it cannot
    convert)."""
    server = DevServer(db_file=tmp_path / "temporal.db", ui=False, cli=temporal_cli)
    try:
        await server.start()
        running = server.running_settings()
        assert running["journal_mode"] == "wal"  # read from the database file
        assert running["synchronous"] == "FULL"  # the server's own logged configuration
        assert running["dynamic_config_rejected"] == "0"
        dynamic = server.settings()["dynamic_config"]
        assert dynamic["history.transferProcessorMaxPollRPS"] > 20  # type: ignore[index]
        client = await Client.connect(server.address)
        # A worker that asks for eager activities gets them with the workflow task that
        # scheduled them; one that does not gets them through matching.
        accepted, adds = await _probe(client, eager_activities=True)
        assert accepted, "the first workflow task was not handed back with the start"
        assert adds == 0, "activities went through matching: eager dispatch is off"
        accepted, adds = await _probe(client, eager_activities=False)
        assert adds > 0, "activities bypassed matching with eager dispatch disabled"
    finally:
        await server.stop()


async def test_synchronous_level_is_a_setting(
    tmp_path: Path, temporal_cli: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SYNCHRONOUS_ENV, "normal")
    server = DevServer(db_file=tmp_path / "temporal.db", ui=False, cli=temporal_cli)
    try:
        await server.start()
        assert server.running_settings()["synchronous"] == "NORMAL"
    finally:
        await server.stop()
    monkeypatch.setenv(SYNCHRONOUS_ENV, "OFF")
    with pytest.raises(DevServerError, match="FULL survives power loss"):
        DevServer(db_file=tmp_path / "other.db", ui=False, cli=temporal_cli)
