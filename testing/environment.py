"""A whole runtime for one test: a Temporal dev server, a worker with your plugins, a client.

::

    async with agent_test_env("my_agents.triage", model=ScriptedModelServer()) as env:
        run = await env.agents.start_run("triage", "sort the inbox")
        await env.approve(run.workflow_id)
        report = await env.report(run.workflow_id)

The dev server is the real Temporal CLI's (built from Go modules into the user cache on
first use, see ``durable_agents._devtools.temporal_cli``) on a SQLite file in a
temporary directory; pass ``address`` to use a server you already run. The worker runs
in this process with the project's data converter, sandbox and activities: what passes
here passes in production, only the model is scripted (or the offline model answers).
"""

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from durable_agents._client.api import AgentsClient
from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain.approvals import ApprovalRequest, Decision, DecisionAnswer
from durable_agents._domain.run import RunReport
from durable_agents._infra.connection import TemporalSettings, connect
from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import ScriptedModelServer


@dataclass(frozen=True)
class AgentTestEnv:
    """What `agent_test_env` started: the client API, the raw Temporal client, the model."""

    agents: AgentsClient
    temporal: Client
    task_queue: str
    data_dir: Path
    model: ScriptedModelServer | None

    async def pending_request(self, workflow_id: str, timeout: float = 60.0) -> ApprovalRequest:
        """The run's first pending approval request, once it asks (fails after ``timeout``)."""
        return await pending_request(self.agents, workflow_id, timeout)

    async def approve(
        self, workflow_id: str, *, approver: str = "tester", reason: str = "", timeout: float = 60.0
    ) -> DecisionAnswer:
        """Wait for the run's next approval request and approve it; returns what the run did."""
        return await self._decide(workflow_id, approver, reason, timeout, approve=True)

    async def reject(
        self, workflow_id: str, *, approver: str = "tester", reason: str = "", timeout: float = 60.0
    ) -> DecisionAnswer:
        """Wait for the run's next approval request and reject it with ``reason``."""
        return await self._decide(workflow_id, approver, reason, timeout, approve=False)

    async def _decide(
        self, workflow_id: str, approver: str, reason: str, timeout: float, *, approve: bool
    ) -> DecisionAnswer:
        request = await self.pending_request(workflow_id, timeout)
        decision = Decision(
            request_id=request.id,
            approver=approver,
            reason=reason,
            args_digest=request.args_digest,
        )
        decide = self.agents.approve if approve else self.agents.reject
        return await decide(workflow_id, decision)

    async def report(self, workflow_id: str, timeout: float = 120.0) -> RunReport:
        """The run's report once it ends; a run still going after ``timeout`` fails the test
        with what it was doing (its pending activities and last events)."""
        return await report_within(self.agents, workflow_id, timeout)


@asynccontextmanager
async def agent_test_env(
    plugins: str | Sequence[str],
    *,
    model: ScriptedModelServer | None = None,
    address: str | None = None,
    data_dir: Path | None = None,
    settings: WorkerSettings | None = None,
) -> AsyncIterator[AgentTestEnv]:
    """Start a dev server (unless ``address``), a worker serving ``plugins`` and a client.

    ``plugins``: your plugin modules (what ``AGENT_PLUGINS`` names in production).
    ``model``: a started `ScriptedModelServer` the worker calls with the real OpenAI client;
    without one the offline model answers (your plugin's offline policy).
    ``settings``: a base `WorkerSettings` for anything else (limits, keys, prices);
    address, queue, data directory, plugins and model are set from the other arguments.
    """
    modules = plugins if isinstance(plugins, str) else ",".join(plugins)
    async with AsyncExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agent-test-")))
        if address is None:
            server = DevServer(db_file=root / "temporal.db", ui=False, log_file=root / "server.log")
            await server.start()
            stack.push_async_callback(server.stop)
            address = server.address
        task_queue = f"test-{uuid.uuid4().hex[:12]}"
        base = settings or WorkerSettings(worker_key_file=root / "worker.key")
        worker_settings = replace(
            base,
            temporal=TemporalSettings(address=address, task_queue=task_queue),
            data_dir=data_dir or root / "worker",
            plugins=modules,
            openai_api_key="scripted" if model else None,
            openai_base_url=model.base_url if model else None,
        )
        client = await connect(address)
        await stack.enter_async_context(build_worker(client, worker_settings))
        yield AgentTestEnv(
            agents=AgentsClient(client, task_queue),
            temporal=client,
            task_queue=task_queue,
            data_dir=worker_settings.data_dir,
            model=model,
        )


async def pending_request(
    agents: AgentsClient,
    workflow_id: str,
    timeout: float = 60.0,
) -> ApprovalRequest:
    """The first pending approval request of a run, once it appears."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                view = await agents.status(workflow_id)
            except Exception:  # the run may not have been picked up by a worker yet
                await asyncio.sleep(0.1)
                continue
            if view.pending_approvals:
                return view.pending_approvals[0]
            await asyncio.sleep(0.1)


async def report_within(
    agents: AgentsClient,
    workflow_id: str,
    timeout: float = 120.0,
) -> RunReport:
    """The run's report; if it does not end in time, fail with what the run was doing."""
    try:
        return await asyncio.wait_for(agents.result(workflow_id), timeout)
    except TimeoutError:
        raise AssertionError(await stall_report(agents, workflow_id, timeout)) from None


async def stall_report(agents: AgentsClient, workflow_id: str, timeout: float) -> str:
    """Where a run stands: its status, pending activities and its last history events."""
    handle = agents.temporal.get_workflow_handle(workflow_id)
    desc = await handle.describe()
    lines = [f"{workflow_id} did not end within {timeout:.0f}s; status {desc.status}"]
    for act in desc.raw_description.pending_activities:
        lines.append(
            f"pending {act.activity_type.name} #{act.activity_id}: attempt {act.attempt}, "
            f"state {act.state}, last failure {act.last_failure.message!r}"
        )
    events = [e async for e in handle.fetch_history_events()]
    for e in events[-12:]:
        lines.append(f"{e.event_time.ToDatetime():%H:%M:%S.%f} {EventType.Name(e.event_type)}")
    return "\n".join(lines)
