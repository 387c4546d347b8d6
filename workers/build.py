"""Assemble a worker: workflows, activities with their dependencies, sandbox settings."""

import pkgutil
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from durable_agents import _workflows as workflows
from durable_agents._activities.admission import AdmissionActivities
from durable_agents._activities.agent_activities import AgentActivities
from durable_agents._activities.catalog import Catalog, load_agent_specs, load_price_table
from durable_agents._activities.keys import WorkerKeys
from durable_agents._activities.ledger_sweep import ended_runs
from durable_agents._activities.mcp_toolbox import McpToolbox
from durable_agents._activities.notify import Notifier, NotifyActivities
from durable_agents._activities.offline_model import OfflineProvider
from durable_agents._activities.openai_provider import ModelProvider, OpenAIProvider
from durable_agents._activities.payload_store import LocalPayloadStore
from durable_agents._activities.plugins import load_plugins, merged_tools, plugin_modules
from durable_agents._activities.response_cache import CACHE_FILE, ResponseCache
from durable_agents._activities.token_stream import DEFAULT_INTERVAL
from durable_agents._activities.user_limits import UserLimits
from durable_agents._infra.connection import codec_keyring, worker_client
from durable_agents._infra.telemetry import ActivityLogContext, client_tracer
from durable_agents._workers.config import WorkerSettings
from durable_agents._workflows.agent_catalog import AgentCatalog
from durable_agents._workflows.agent_run import AgentRun
from durable_agents._workflows.user_ledger import AutoUpgradingUserLedger, UserLedger

# Pure, deterministic modules shared with activities: passed through the sandbox so they
# are imported once per process instead of once per workflow run.
# cryptography (signature checks in `domain.signatures`) is a native extension that must
# not be imported a second time inside the sandbox: that aborts the process.
SHARED_MODULES = ("durable_agents._domain", "pydantic", "pydantic_core", "cryptography")
# The workflows' helpers (every module of the package but those defining workflows) are
# pure and deterministic too: passing them through halves what a cached run costs
# (`make bench`, memory: 526 -> 246 KiB per waiting run). The replayer (`agentctl
# replay-check`, the replay tests) imports them inside the sandbox, so a non-deterministic
# call in one is still caught there.
WORKFLOW_HELPERS = tuple(
    f"{workflows.__name__}.{m.name}"
    for m in pkgutil.iter_modules(workflows.__path__)
    if f"{workflows.__name__}.{m.name}"
    not in {AgentRun.__module__, UserLedger.__module__, AgentCatalog.__module__}
)
PASSTHROUGH_MODULES = (*SHARED_MODULES, *WORKFLOW_HELPERS)


# Half the token interval: a streamed model call's heartbeat is never held back.
HEARTBEAT_THROTTLE = DEFAULT_INTERVAL / 2


def build_provider(settings: WorkerSettings) -> ModelProvider:
    """The OpenAI-compatible client, or the offline model when there is no key."""
    if settings.openai_api_key is None:
        plugins = load_plugins(plugin_modules(settings.plugins))
        return OfflineProvider(
            {p.name: p.offline_policy for p in plugins.values() if p.offline_policy}
        )
    return OpenAIProvider.from_settings(
        settings.openai_api_key, settings.openai_base_url, stream=settings.stream_tokens
    )


def provider_id(settings: WorkerSettings) -> str:
    """Who answers model calls, for the reply cache: the same model name elsewhere differs."""
    if settings.openai_api_key is None:
        return "offline"
    return settings.openai_base_url or "https://api.openai.com/v1"


def build_catalog(settings: WorkerSettings) -> Catalog:
    """The agents a worker with ``settings`` runs (offline model when it has no key)."""
    catalog = Catalog(
        load_plugins(plugin_modules(settings.plugins)),
        load_price_table(settings.prices_file),
        offline=settings.uses_offline_model,
    )
    if settings.extra_agents_file is not None:
        for spec in load_agent_specs(settings.extra_agents_file):
            catalog.add(spec)
    return catalog


def build_admission(
    settings: WorkerSettings,
    catalog: Catalog,
    limits: UserLimits | None = None,
    mcp: McpToolbox | None = None,
) -> AdmissionActivities:
    """What the worker decides for runs: agents, approver keys, user limits."""
    keys = WorkerKeys.load(
        settings.worker_key_file, settings.approver_keys_file, settings.ledger_operators
    )
    return AdmissionActivities(
        catalog,
        keys,
        limits or UserLimits.from_file(settings.user_limits_file),
        settings.ledger_sweep_s,
        settings.temporal.ui_url,
        mcp,
    )


class AgentWorker(Worker):
    """A `Worker` that closes its MCP connections (and stdio servers) when it stops."""

    def __init__(self, mcp: McpToolbox, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mcp = mcp

    async def run(self) -> None:
        """Run until shut down, then close the MCP connections."""
        try:
            await super().run()
        finally:
            await self._mcp.aclose()


def build_worker(
    client: Client,
    settings: WorkerSettings,
    *,
    provider: ModelProvider | None = None,
    task_queue: str | None = None,
    catalog: Catalog | None = None,
    limits: UserLimits | None = None,
) -> Worker:
    """A worker for ``AgentRun`` and its activities on ``task_queue``.

    ``catalog`` (default: the plugins and prices of ``settings``) is what runs may name;
    ``limits`` (default: ``settings.user_limits_file``) the users' monthly limits.
    """
    plugins = load_plugins(plugin_modules(settings.plugins))
    catalog = catalog or build_catalog(settings)
    # One set of MCP connections per worker (stdio servers are its child processes).
    mcp = McpToolbox(catalog.mcp_server, python_tools=catalog.python_tools)
    admission = build_admission(settings, catalog, limits, mcp)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    acts = AgentActivities(
        provider=provider or build_provider(settings),
        tools=merged_tools(plugins.values()),
        # Encrypted at rest with the client's codec keys (AGENT_CODEC_KEYS), if any.
        store=LocalPayloadStore(settings.data_dir / "payloads", codec_keyring(client)),
        data_dir=settings.data_dir,
        cache=ResponseCache(settings.data_dir / CACHE_FILE),
        provider_id=provider_id(settings),
        tracer=client_tracer(client),
        mcp=mcp,
    )
    versions = deployment_config(settings)
    ledger = UserLedger if versions is None else AutoUpgradingUserLedger
    return AgentWorker(
        mcp,
        # With codec keys, polls through a codec that refuses unencrypted payloads.
        worker_client(client, accept_plaintext=settings.accept_plaintext),
        task_queue=task_queue or settings.temporal.task_queue,
        # An activities-only worker serves a tool's own (rate-limited) task queue.
        workflows=[] if settings.activities_only else [AgentRun, ledger, AgentCatalog],
        activities=[
            *acts.activities(),
            *NotifyActivities(Notifier(settings.notify)).activities(),
            *admission.activities(),
            ended_runs,
        ],
        # After the client's tracing interceptor, so log lines see the activity's span.
        interceptors=[ActivityLogContext()],
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
        max_concurrent_activities=settings.max_concurrent_activities,
        max_cached_workflows=settings.max_cached_workflows,
        max_task_queue_activities_per_second=settings.activities_per_second,
        # A dead worker's sticky queue holds its workflows this long before another
        # worker takes them: short, so recovery is about the new worker's start.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=settings.sticky_timeout_s),
        graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_s),
        # Eager activity dispatch: an activity scheduled by a workflow task comes back in
        # the answer to that task when a slot is free (devtools.dev_server, THROUGHPUT).
        disable_eager_activity_execution=False,
        # Heartbeats go out at most this often (the SDK's default waits up to 30 s): a
        # model call's streamed text is heartbeated every DEFAULT_INTERVAL, and a slower
        # throttle would hold it back (activities/token_stream.py).
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        # Workflow bugs that cannot heal by retrying the task fail the run instead.
        workflow_failure_exception_types=[TypeError, AttributeError, KeyError],
        deployment_config=versions,
    )


def deployment_config(settings: WorkerSettings) -> WorkerDeploymentConfig | None:
    """This worker's version of its Worker Deployment, when it has one.

    Runs are pinned (a run finishes on the version it started on: its history replays
    only on that code); the user ledgers, which live for a month, move to the current
    version (`AutoUpgradingUserLedger`).
    """
    if not (settings.deployment and settings.build_id):
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(settings.deployment, settings.build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )
