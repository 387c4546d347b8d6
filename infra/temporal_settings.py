"""Where Temporal is and how to reach it, read the way every Temporal tool reads it.

Connection settings come from the SDK's environment configuration (`temporalio.envconfig`):
a profile of the TOML configuration file (``TEMPORAL_CONFIG_FILE``, by default
``~/.config/temporalio/temporal.toml``; profile ``TEMPORAL_PROFILE``, by default
``default``), overridden by the standard variables: ``TEMPORAL_ADDRESS``,
``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS``,
``TEMPORAL_TLS_SERVER_CA_CERT_PATH``, ``TEMPORAL_TLS_SERVER_NAME``,
``TEMPORAL_TLS_CLIENT_CERT_PATH`` and ``TEMPORAL_TLS_CLIENT_KEY_PATH`` (each ``*_PATH`` also
as ``*_DATA``, the PEM itself), ``TEMPORAL_GRPC_META_<NAME>``. The official ``temporal`` CLI
reads and writes the same file (``temporal config set --profile prod --prop address ...``).
An API key turns TLS on unless ``TEMPORAL_TLS=false`` says otherwise.

The project's own settings sit on top: the task queue (``AGENTS_TASK_QUEUE``) and the Web
UI's address for links (``TEMPORAL_UI_URL``).
"""

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.envconfig import (
    ClientConfig,
    ClientConfigProfile,
    ClientConfigTLS,
    ClientConnectConfig,
    DataSource,
)

from durable_agents._domain.run import DEFAULT_TASK_QUEUE

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"
DEFAULT_UI_URL = "http://127.0.0.1:8233"
_TLS_SWITCH = {"true": "true", "1": "true", "false": "false", "0": "false"}
# The PEM sources of a TLS configuration: attribute, variable (+ _PATH / _DATA), profile
# key (+ _path / _data under [profile.NAME.tls]), and what it is.
_PEM_SOURCES = (
    ("server_root_ca_cert", "TEMPORAL_TLS_SERVER_CA_CERT", "server_ca_cert", "CA certificate"),
    ("client_cert", "TEMPORAL_TLS_CLIENT_CERT", "client_cert", "client certificate"),
    ("client_private_key", "TEMPORAL_TLS_CLIENT_KEY", "client_key", "client key"),
)


class TemporalConfigError(ConnectionError):
    """The connection settings cannot work (an unknown profile, a missing certificate file,
    an unreadable configuration file); the message names the setting to fix.

    A `ConnectionError`, so everything that reports a failed connection reports it too.
    """


@dataclass(frozen=True)
class TemporalSettings:
    """Where Temporal is and how to reach it, plus this project's task queue and Web UI.

    ``api_key``, ``tls`` and ``grpc_meta`` are those of `temporalio.envconfig`: ``tls`` None
    is plaintext (TLS with default roots when there is an API key), a `ClientConfigTLS`
    with ``disabled=True`` is plaintext even with an API key. ``profile`` names the profile
    the settings were read from, for messages.
    """

    address: str = DEFAULT_ADDRESS
    namespace: str = DEFAULT_NAMESPACE
    task_queue: str = DEFAULT_TASK_QUEUE
    ui_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    tls: ClientConfigTLS | None = None
    grpc_meta: Mapping[str, str] = field(default_factory=dict)
    profile: str | None = None

    @classmethod
    def from_env(
        cls,
        *,
        profile: str | None = None,
        config_file: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> "TemporalSettings":
        """Read the configuration file's profile and the environment (entry points only).

        ``profile`` and ``config_file`` take precedence over ``TEMPORAL_PROFILE`` and
        ``TEMPORAL_CONFIG_FILE``; ``environ`` replaces ``os.environ``. Raises
        `TemporalConfigError` naming what to fix: an unknown profile (listing the file's
        profiles), a configuration file that does not exist or does not parse, a
        certificate file that does not exist, a client certificate without its key, a
        ``TEMPORAL_TLS`` that is neither true nor false.
        """
        env = dict(os.environ if environ is None else environ)
        name = profile or env.get("TEMPORAL_PROFILE") or None
        file = Path(config_file) if config_file else None
        loaded = _load_profile(name, file, env)
        tls = loaded.tls
        if tls is not None and tls.disabled is not True:
            _check_pem_files(tls, env, name, file)
        return cls(
            address=loaded.address or DEFAULT_ADDRESS,
            namespace=loaded.namespace or DEFAULT_NAMESPACE,
            task_queue=env.get("AGENTS_TASK_QUEUE") or DEFAULT_TASK_QUEUE,
            ui_url=env.get("TEMPORAL_UI_URL", DEFAULT_UI_URL),
            # An empty TEMPORAL_API_KEY (a blank line in an env file) is no key, not a
            # reason to switch TLS on.
            api_key=loaded.api_key or None,
            tls=tls,
            grpc_meta=dict(loaded.grpc_meta),
            profile=name,
        )

    @property
    def uses_tls(self) -> bool:
        """Whether the connection is TLS (the rule of `temporalio.envconfig`)."""
        if self.tls is not None:
            return self.tls.disabled is not True
        return self.api_key is not None

    @property
    def uses_client_cert(self) -> bool:
        """Whether this client presents a certificate (mTLS)."""
        return self.uses_tls and self.tls is not None and self.tls.client_cert is not None

    def describe(self) -> str:
        """``host:port (namespace ns, TLS, API key, profile p)``, for messages and logs."""
        parts = [f"namespace {self.namespace}"]
        if self.uses_tls:
            parts.append("mTLS" if self.uses_client_cert else "TLS")
        if self.api_key:
            parts.append("API key")
        if self.profile:
            parts.append(f"profile {self.profile}")
        return f"{self.address} ({', '.join(parts)})"

    def connect_config(self) -> ClientConnectConfig:
        """The arguments of `temporalio.client.Client.connect` these settings stand for
        (certificate files are read here)."""
        profile = ClientConfigProfile(
            address=self.address,
            namespace=self.namespace,
            api_key=self.api_key,
            tls=self.tls,
            grpc_meta=self.grpc_meta,
        )
        try:
            return profile.to_client_connect_config()
        except OSError as err:
            raise TemporalConfigError(
                f"cannot read the TLS file {err.filename}: {err.strerror}; point the "
                "TEMPORAL_TLS_*_PATH variable (or the profile's tls.*_path) at a readable "
                "PEM file"
            ) from err

    def environment(self) -> dict[str, str]:
        """The variables that make `from_env` in another process return these settings.

        The configuration file is switched off (``TEMPORAL_CONFIG_FILE`` is the null
        device): these settings already hold what their profile said, and a profile of
        the other process's user must not add to them.
        """
        env = {
            "TEMPORAL_CONFIG_FILE": os.devnull,
            "TEMPORAL_ADDRESS": self.address,
            "TEMPORAL_NAMESPACE": self.namespace,
            "AGENTS_TASK_QUEUE": self.task_queue,
        }
        if self.api_key is not None:
            env["TEMPORAL_API_KEY"] = self.api_key
        for key, value in self.grpc_meta.items():
            env[f"TEMPORAL_GRPC_META_{key.upper().replace('-', '_')}"] = value
        if self.tls is None:
            return env
        if self.tls.server_name is not None:
            env["TEMPORAL_TLS_SERVER_NAME"] = self.tls.server_name
        for attr, variable, _, _ in _PEM_SOURCES:
            source: DataSource | None = getattr(self.tls, attr)
            if isinstance(source, Path):
                env[f"{variable}_PATH"] = str(source)
            elif isinstance(source, bytes):
                env[f"{variable}_DATA"] = source.decode()
            elif isinstance(source, str):
                env[f"{variable}_DATA"] = source
        if self.tls.disabled is not None:
            env["TEMPORAL_TLS"] = "false" if self.tls.disabled else "true"
        elif not any(k.startswith("TEMPORAL_TLS_") for k in env):
            env["TEMPORAL_TLS"] = "true"  # an empty [tls] section: TLS with default roots
        return env


def default_config_file() -> Path:
    """Where the SDK and the ``temporal`` CLI look for profiles without
    ``TEMPORAL_CONFIG_FILE``."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home())
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "temporalio" / "temporal.toml"


def _config_file(file: Path | None, env: Mapping[str, str]) -> Path:
    if file is not None:
        return file
    named = env.get("TEMPORAL_CONFIG_FILE")
    return Path(named) if named else default_config_file()


def _load_profile(
    name: str | None, file: Path | None, env: Mapping[str, str]
) -> ClientConfigProfile:
    """The profile ``name`` of the configuration file, with the variables applied."""
    switch = env.get("TEMPORAL_TLS")
    if switch and switch.strip().lower() not in _TLS_SWITCH:
        raise TemporalConfigError(f"TEMPORAL_TLS={switch} is not allowed: set true or false")
    path = _config_file(file, env)
    if (file is not None or env.get("TEMPORAL_CONFIG_FILE")) and not path.exists():
        raise TemporalConfigError(
            f"Temporal configuration file {path} does not exist: fix TEMPORAL_CONFIG_FILE "
            f"(agentctl: --config-file), or unset it to use {default_config_file()}"
        )
    try:
        return ClientConfigProfile.load(name, config_source=file, override_env_vars=env)
    except RuntimeError as err:  # the SDK's ConfigError
        if name is not None and "not found" in str(err):
            raise TemporalConfigError(_unknown_profile(name, path, env)) from None
        raise TemporalConfigError(
            f"cannot read Temporal's configuration {path}: {_one_line(str(err))}"
        ) from None


def _one_line(message: str) -> str:
    """A TOML error's first and last lines (where, and what), without the source excerpt."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if len(lines) < 2 else f"{lines[0]}: {lines[-1]}"


def _unknown_profile(name: str, path: Path, env: Mapping[str, str]) -> str:
    create = f"`temporal config set --profile {name} --prop address --value HOST:PORT`"
    if not path.exists():
        return (
            f"no Temporal profile '{name}': {path} does not exist. Unset TEMPORAL_PROFILE "
            f"(agentctl: --profile), or create the profile with {create}"
        )
    try:
        known = sorted(ClientConfig.load(config_source=path, override_env_vars=env).profiles)
    except RuntimeError:
        known = []
    return (
        f"no Temporal profile '{name}' in {path} (profiles: {', '.join(known) or 'none'}): "
        f"choose one with TEMPORAL_PROFILE (agentctl: --profile), or create it with {create}"
    )


def _check_pem_files(
    tls: ClientConfigTLS, env: Mapping[str, str], profile: str | None, file: Path | None
) -> None:
    """Fail now, naming the setting, rather than at the first connection."""
    for attr, variable, key, what in _PEM_SOURCES:
        source: DataSource | None = getattr(tls, attr)
        if isinstance(source, Path) and not source.is_file():
            if env.get(f"{variable}_PATH") == str(source):
                setting = f"{variable}_PATH"
            else:
                where = _config_file(file, env)
                setting = f"tls.{key}_path of profile '{profile or 'default'}' in {where}"
            raise TemporalConfigError(
                f"the TLS {what} {source} does not exist: point {setting} at the PEM file"
            )
    if (tls.client_cert is None) != (tls.client_private_key is None):
        raise TemporalConfigError(
            "mTLS needs the client certificate and its key: set both "
            "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (in a profile, "
            "tls.client_cert_path and tls.client_key_path)"
        )
