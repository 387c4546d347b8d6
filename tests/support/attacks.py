"""What an attacker with access to the Temporal frontend uses: the official ``temporal``
CLI, run as a subprocess, plus helpers that read what an attack left in a history.

Anyone who can reach the frontend can start workflows and send signals and updates with
any payload; these helpers send exactly what the CLI would (``json/plain`` payloads, one
per ``--input``, or per ``--input-file`` for payloads too big for a command line).
"""

import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from durable_agents._activities.catalog import write_agent_specs
from durable_agents._client.api import AgentsClient
from durable_agents._domain.approvals import ApprovalPolicy, ApprovalRequest
from durable_agents._domain.budget import BudgetOverride
from durable_agents._domain.spec import AgentSpec
from durable_agents._infra.connection import data_converter
from durable_agents._workers.build import SHARED_MODULES
from durable_agents._workers.config import WorkerSettings
from durable_agents._workflows.agent_run import AgentRun
from durable_agents._workflows.user_ledger import UserLedger
from durable_agents.testing import pending_request
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task
from tests.support.processes import WorkerProcess


@dataclass(frozen=True)
class CliResult:
    """What the CLI said: its exit code and its output."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """Everything it printed (the reason for a refusal is on stderr)."""
        return self.stdout + self.stderr


class TemporalCli:
    """The official ``temporal`` CLI against one server, in namespace ``default``."""

    def __init__(self, cli: Path, address: str, namespace: str = "default") -> None:
        self.cli = cli
        self.address = address
        self.namespace = namespace

    async def run(self, *args: str, timeout: float = 60.0) -> CliResult:
        """``temporal ARGS --address ... --namespace ...``."""
        return await _run(
            [str(self.cli), *args, "--address", self.address, "--namespace", self.namespace],
            None,
            timeout,
        )

    async def start(
        self,
        workflow_type: str,
        workflow_id: str,
        task_queue: str,
        inputs: Sequence[Any] = (),
        input_files: Sequence[Path] = (),
    ) -> CliResult:
        """``temporal workflow start`` with each input JSON-encoded."""
        return await self.run(
            "workflow",
            "start",
            "--type",
            workflow_type,
            "--workflow-id",
            workflow_id,
            "--task-queue",
            task_queue,
            *_inputs(inputs, input_files),
        )

    async def signal(
        self,
        workflow_id: str,
        name: str,
        inputs: Sequence[Any] = (),
        input_files: Sequence[Path] = (),
    ) -> CliResult:
        """``temporal workflow signal`` with each input JSON-encoded."""
        return await self.run(
            "workflow",
            "signal",
            "--workflow-id",
            workflow_id,
            "--name",
            name,
            *_inputs(inputs, input_files),
        )

    async def update(
        self,
        workflow_id: str,
        name: str,
        inputs: Sequence[Any] = (),
        input_files: Sequence[Path] = (),
        *,
        timeout: float = 60.0,
    ) -> CliResult:
        """``temporal workflow update execute`` with each input JSON-encoded; an update
        nobody answers within ``timeout`` is reported as exit code -1."""
        return await self.run(
            "workflow",
            "update",
            "execute",
            "--workflow-id",
            workflow_id,
            "--name",
            name,
            *_inputs(inputs, input_files),
            timeout=timeout,
        )


def _inputs(inputs: Sequence[Any], files: Sequence[Path]) -> list[str]:
    args: list[str] = []
    for value in inputs:
        args += ["--input", json.dumps(value)]
    for path in files:
        args += ["--input-file", str(path)]
    return args


def junk_file(directory: Path, size: int, name: str = "junk.json") -> Path:
    """A JSON object of about ``size`` bytes (too big for one command-line argument)."""
    path = directory / name
    path.write_text(json.dumps({"junk": "x" * size, "request_id": "a1", "approver": "ana"}))
    return path


async def history_of(client: Client, workflow_id: str) -> WorkflowHistory:
    """The history of the current (or last) execution of ``workflow_id``."""
    return await client.get_workflow_handle(workflow_id).fetch_history()


def events_of(history: WorkflowHistory, event_type: int) -> list[Any]:
    """The events of one type in ``history``."""
    return [e for e in history.events if e.event_type == event_type]


def task_failures(history: WorkflowHistory) -> list[str]:
    """The failure messages of every WorkflowTaskFailed event (a wedged workflow has some)."""
    return [
        e.workflow_task_failed_event_attributes.failure.message
        for e in events_of(history, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
    ]


def accepted_updates(history: WorkflowHistory) -> list[str]:
    """Names of the updates a workflow accepted (a refused update writes nothing)."""
    return [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in events_of(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    ]


async def replays(history: WorkflowHistory) -> None:
    """Replay ``history`` on the current workflow code, with the project's data converter."""
    replayer = Replayer(
        workflows=[AgentRun, UserLedger],
        data_converter=data_converter(),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*SHARED_MODULES)
        ),
    )
    await replayer.replay_workflow(history)


async def signals_handled(
    client: Client, workflow_id: str, count: int, timeout: float = 30
) -> None:
    """Wait until the workflow has received ``count`` signals and finished a workflow task
    after the last of them (so every one has been handled)."""
    async with asyncio.timeout(timeout):
        while True:
            events = list((await history_of(client, workflow_id)).events)
            signaled = [
                i
                for i, e in enumerate(events)
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            ]
            if len(signaled) >= count and any(
                e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                for e in events[signaled[-1] :]
            ):
                return
            await asyncio.sleep(0.1)


# -- runs to attack ---------------------------------------------------------------------


def script_a_rocket(model: ScriptedModelServer) -> None:
    """The planner asks to launch a rocket (irreversible: it waits for approval), then ends."""
    model.enqueue(plan_reply(tool_task("go", "launch_rocket", name="moon")), purpose="plan")
    model.set_responder("plan", lambda r: plan_reply(done=True))
    model.set_responder("summarize", lambda r: Reply.text("done"))


async def waiting_run(
    agents: LocalAgents,
    model: ScriptedModelServer,
    spec: AgentSpec | None = None,
    *,
    user: str = "anonymous",
    budget: BudgetOverride | None = None,
) -> tuple[str, ApprovalRequest]:
    """A run of ``spec`` (default: the test agent) waiting for approval of its launch."""
    script_a_rocket(model)
    handle = await agents.start_run(
        spec or "test-agent", "launch the rocket", user=user, budget=budget
    )
    return handle.workflow_id, await pending_request(agents, handle.workflow_id)


def ana_only(agents: LocalAgents, name: str = "ana-decides") -> AgentSpec:
    """The test agent, where only ana may decide."""
    spec = agents.catalog.plugin("test-agent").build_spec()
    return spec.model_copy(update={"name": name, "approvals": ApprovalPolicy(approvers=["ana"])})


def decision_json(request: ApprovalRequest, **fields: Any) -> dict[str, Any]:
    """A decision on ``request`` by ana, as a caller would send it (JSON)."""
    return {
        "request_id": request.id,
        "approver": "ana",
        "args_digest": request.args_digest,
        **fields,
    }


async def next_pending(
    agents: AgentsClient, workflow_id: str, seen: set[str], timeout: float = 60
) -> ApprovalRequest:
    """The run's next pending request once it asks one; a pending id seen before fails."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                view = await agents.status(workflow_id)
            except Exception:  # continuing as new, or not picked up yet
                await asyncio.sleep(0.1)
                continue
            for r in view.pending_approvals:
                assert r.id not in seen, f"approval id {r.id} used twice: {sorted(seen)}"
                return r
            await asyncio.sleep(0.1)


# -- agentctl, as a person runs it ------------------------------------------------------

AGENTCTL = Path(sys.executable).parent / "agentctl"


async def agentctl(
    address: str,
    task_queue: str,
    keys_dir: Path,
    *args: str,
    timeout: float = 60.0,
    namespace: str = "default",
) -> CliResult:
    """``agentctl ARGS`` against ``address``, ``namespace`` and ``task_queue``, with keys in
    ``keys_dir``."""
    own = ("TEMPORAL_", "AGENT_", "OPENAI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(
        TEMPORAL_ADDRESS=address,
        TEMPORAL_NAMESPACE=namespace,
        AGENTS_TASK_QUEUE=task_queue,
        AGENT_KEYS_DIR=str(keys_dir),
        COLUMNS="200",
    )
    return await _run([str(AGENTCTL), *args], env, timeout)


async def _run(argv: list[str], env: dict[str, str] | None, timeout: float) -> CliResult:
    """Run a command; one that hangs is killed and reported (exit code -1), not awaited."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return CliResult(-1, "", f"{argv[0]} {argv[1:4]}: no answer within {timeout:.0f} s")
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


# -- a worker in a process of its own ----------------------------------------------------


class AttackedWorker(WorkerProcess):
    """A worker process (as deployed) whose death an attack must not cause."""

    def died(self) -> str | None:
        """None while the worker runs; else its exit code and the end of its log."""
        code = self._proc.poll() if self._proc is not None else None
        if code is None:
            return None
        log = self.log_file.read_text(errors="replace").splitlines()
        why = [line for line in log if "panicked" in line or "failed to import" in line]
        tail = "\n".join(log[-15:])
        return f"the worker died (exit code {code}):\n" + "\n".join(why) + f"\n...\n{tail}"


@asynccontextmanager
async def worker_process(
    settings: WorkerSettings,
    directory: Path,
    *,
    specs: Sequence[AgentSpec] = (),
    user_limits: dict[str, float] | None = None,
    approver_keys: Path | None = None,
) -> AsyncIterator[AttackedWorker]:
    """A worker process with ``settings``, plus agent variants, user limits and approver
    keys from files (as a deployment configures them); stopped afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    update: dict[str, Any] = {"approver_keys_file": approver_keys}
    if specs:
        update["extra_agents_file"] = directory / "agents.json"
        write_agent_specs(update["extra_agents_file"], list(specs))
    if user_limits is not None:
        update["user_limits_file"] = directory / "limits.json"
        update["user_limits_file"].write_text(json.dumps(user_limits))
    configured = dataclasses.replace(settings, **update)
    worker = AttackedWorker(configured.process_env(), directory / "worker.log")
    await worker.start()
    try:
        yield worker
    finally:
        worker.terminate()
