"""Worker settings, read from the environment by the entry point only."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from durable_agents._activities.notify import NotifySettings
from durable_agents._infra.connection import TemporalSettings
from durable_agents._infra.telemetry import TelemetrySettings


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker process needs to know.

    Environment: the connection of `TemporalSettings` (``TEMPORAL_ADDRESS``,
    ``TEMPORAL_NAMESPACE``, TLS, API key, ``TEMPORAL_PROFILE``...), ``AGENTS_TASK_QUEUE``,
    ``AGENT_DATA_DIR`` (payload store, caches; default ``.data``), ``OPENAI_API_KEY`` and
    ``OPENAI_BASE_URL`` (no key: the offline model), ``AGENT_PLUGINS`` (extra plugin
    modules), ``AGENT_MAX_CONCURRENT_ACTIVITIES``, ``AGENT_ACTIVITIES_ONLY`` and
    ``AGENT_ACTIVITIES_PER_SECOND`` (a rate-limited worker for a tool's own task queue),
    ``AGENT_STICKY_TIMEOUT_S`` and ``AGENT_SHUTDOWN_GRACE_S``, the policy files
    ``AGENT_PRICES_FILE``, ``AGENT_USER_LIMITS_FILE`` and ``AGENT_APPROVER_KEYS_FILE``,
    ``AGENT_WORKER_KEY_FILE`` and ``AGENT_LEDGER_OPERATORS`` (see `activities.keys`),
    ``AGENT_EXTRA_AGENTS_FILE`` (a JSON list of agent specs using the plugins' tools),
    ``AGENT_LEDGER_SWEEP_S`` (how often a user's ledger checks for runs that ended
    without settling; 600),
    ``AGENT_NOTIFY_WEBHOOK`` and
    ``AGENT_NOTIFY_TOKEN`` (escalations and budget alerts; the log always gets them),
    ``AGENT_DEPLOYMENT`` and ``AGENT_BUILD_ID`` (both set: the worker registers this
    version of that Worker Deployment, and runs it starts stay pinned to it; see
    ``agentctl rollout``),
    ``AGENT_STREAM_TOKENS`` (``0``: model calls are not streamed, so the run's event stream
    has no model text and the history none of the token batches; default on),
    ``AGENT_ACCEPT_PLAINTEXT`` (``1``: with ``AGENT_CODEC_KEYS`` set, still read
    unencrypted payloads, for migrating runs started before the keys; see
    `client.connection.worker_client`), and the telemetry variables of
    `TelemetrySettings` (traces, metrics endpoint).
    """

    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    data_dir: Path = Path(".data")
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    plugins: str | None = None
    max_concurrent_activities: int = 100
    max_cached_workflows: int = 1000
    activities_only: bool = False
    activities_per_second: float | None = None
    sticky_timeout_s: float = 1.0
    shutdown_grace_s: float = 10.0
    prices_file: Path | None = None
    user_limits_file: Path | None = None
    approver_keys_file: Path | None = None
    worker_key_file: Path | None = None
    ledger_operators: str | None = None
    extra_agents_file: Path | None = None
    ledger_sweep_s: float = 600.0
    accept_plaintext: bool = False
    stream_tokens: bool = True
    deployment: str | None = None
    build_id: str | None = None
    notify: NotifySettings = field(default_factory=NotifySettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)

    @classmethod
    def from_env(cls) -> "WorkerSettings":
        """Read the environment."""
        env = os.environ
        return cls(
            temporal=TemporalSettings.from_env(),
            data_dir=Path(env.get("AGENT_DATA_DIR", ".data")),
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            plugins=env.get("AGENT_PLUGINS") or None,
            max_concurrent_activities=int(env.get("AGENT_MAX_CONCURRENT_ACTIVITIES", "100")),
            notify=NotifySettings.from_env(),
            activities_only=env.get("AGENT_ACTIVITIES_ONLY", "") == "1",
            activities_per_second=_float(env.get("AGENT_ACTIVITIES_PER_SECOND")),
            sticky_timeout_s=_float(env.get("AGENT_STICKY_TIMEOUT_S")) or 1.0,
            shutdown_grace_s=_float(env.get("AGENT_SHUTDOWN_GRACE_S")) or 10.0,
            prices_file=_path(env.get("AGENT_PRICES_FILE")),
            user_limits_file=_path(env.get("AGENT_USER_LIMITS_FILE")),
            approver_keys_file=_path(env.get("AGENT_APPROVER_KEYS_FILE")),
            worker_key_file=_path(env.get("AGENT_WORKER_KEY_FILE")),
            ledger_operators=env.get("AGENT_LEDGER_OPERATORS") or None,
            extra_agents_file=_path(env.get("AGENT_EXTRA_AGENTS_FILE")),
            ledger_sweep_s=_float(env.get("AGENT_LEDGER_SWEEP_S")) or 600.0,
            accept_plaintext=env.get("AGENT_ACCEPT_PLAINTEXT", "") == "1",
            stream_tokens=env.get("AGENT_STREAM_TOKENS", "1") != "0",
            deployment=env.get("AGENT_DEPLOYMENT") or None,
            build_id=env.get("AGENT_BUILD_ID") or None,
            telemetry=TelemetrySettings.from_env(service_name="durable-agents-worker"),
        )

    def process_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment that makes a worker process run with these settings.

        This process's environment is inherited without its ``OPENAI_*``, ``TEMPORAL_*``
        and ``AGENT_*`` variables, so only these settings and ``extra`` configure the
        worker (Temporal's configuration file included: see
        `TemporalSettings.environment`); unset optional settings are left out.
        """
        own = ("OPENAI_", "TEMPORAL_", "AGENT_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
        env.update(self.temporal.environment(), AGENT_DATA_DIR=str(self.data_dir))
        optional = {
            "AGENT_PLUGINS": self.plugins,
            "OPENAI_API_KEY": self.openai_api_key,
            "OPENAI_BASE_URL": self.openai_base_url,
            "AGENT_PRICES_FILE": _str(self.prices_file),
            "AGENT_USER_LIMITS_FILE": _str(self.user_limits_file),
            "AGENT_APPROVER_KEYS_FILE": _str(self.approver_keys_file),
            "AGENT_WORKER_KEY_FILE": _str(self.worker_key_file),
            "AGENT_LEDGER_OPERATORS": self.ledger_operators,
            "AGENT_EXTRA_AGENTS_FILE": _str(self.extra_agents_file),
            "AGENT_LEDGER_SWEEP_S": str(self.ledger_sweep_s),
            "AGENT_ACCEPT_PLAINTEXT": "1" if self.accept_plaintext else None,
            "AGENT_STREAM_TOKENS": None if self.stream_tokens else "0",
            "AGENT_DEPLOYMENT": self.deployment,
            "AGENT_BUILD_ID": self.build_id,
        }
        env.update({k: v for k, v in optional.items() if v})
        env.update(extra or {})
        return env

    @property
    def uses_offline_model(self) -> bool:
        """No API key: the deterministic offline model answers."""
        return self.openai_api_key is None


def _float(value: str | None) -> float | None:
    """A positive number from the environment, or None; anything else is a clear error."""
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise ValueError(f"expected a positive number, got {value!r}")
    return number


def _path(value: str | None) -> Path | None:
    return Path(value) if value and value.strip() else None


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)
