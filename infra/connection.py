"""One way to connect to Temporal, shared by the worker, the CLI, the API and the tests.

Every client uses the same data converter (pydantic, plus the encryption codec and
encrypted failure messages when ``AGENT_CODEC_KEYS`` is set), so payloads written by one
are read by all; a worker polls through `worker_client`, which refuses unencrypted
payloads. Every client uses the same
tracing interceptor, so a run started by one continues the caller's trace in the worker
(spans are only recorded once a tracer provider is set up; see `workers.telemetry`).
"""

import dataclasses
import os
from dataclasses import dataclass

from opentelemetry.trace import Tracer
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)
from temporalio.runtime import Runtime

from durable_agents._domain.run import DEFAULT_TASK_QUEUE
from durable_agents._infra.codec import EncryptionCodec, Keyring

DEFAULT_ADDRESS = "127.0.0.1:7233"


@dataclass(frozen=True)
class TemporalSettings:
    """Where Temporal is, from ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
    ``AGENTS_TASK_QUEUE`` and ``TEMPORAL_UI_URL`` (links in notifications)."""

    address: str = DEFAULT_ADDRESS
    namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    ui_url: str | None = None

    @classmethod
    def from_env(cls) -> "TemporalSettings":
        """Read the environment (called by entry points, never at import time)."""
        return cls(
            address=os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS),
            namespace=os.environ.get("TEMPORAL_NAMESPACE", "default"),
            task_queue=os.environ.get("AGENTS_TASK_QUEUE", DEFAULT_TASK_QUEUE),
            ui_url=os.environ.get("TEMPORAL_UI_URL", "http://127.0.0.1:8233"),
        )


def data_converter(codec: PayloadCodec | None = None) -> DataConverter:
    """The pydantic converter, encrypting payloads when ``AGENT_CODEC_KEYS`` is set.

    With a codec, failures keep their message and stack trace in an encoded payload that
    the codec encrypts (a tool error quoting its arguments would otherwise be plaintext
    in the server's database); the server sees "Encoded failure" and the failure's type.
    Clients built on this converter read the real message back.
    """
    codec = codec or EncryptionCodec.from_env()
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def codec_keyring(client: Client) -> Keyring | None:
    """The keys ``client`` encrypts with (None without a codec): the worker's payload
    store seals its blobs with them too."""
    codec = client.data_converter.payload_codec
    return codec.keyring if isinstance(codec, EncryptionCodec) else None


def worker_client(client: Client, *, accept_plaintext: bool = False) -> Client:
    """The client a worker polls with: ``client``, its codec refusing unencrypted payloads.

    With keys set, a payload the worker cannot decrypt (plaintext, unknown key, corrupt)
    reaches the workflow as the `domain.refused` sentinel instead of failing the workflow
    task in a loop (see `client.codec.RefusingCodec`). ``accept_plaintext``
    (``AGENT_ACCEPT_PLAINTEXT=1``) reads plaintext, for migrating runs started before the
    keys were set. Headers (tracing context) and search attributes never pass through the
    codec (the SDK's default ``HeaderCodecBehavior.NO_CODEC``), so they are not refused.
    """
    codec = client.data_converter.payload_codec
    if accept_plaintext or not isinstance(codec, EncryptionCodec):
        return client
    config = client.config()
    config["data_converter"] = dataclasses.replace(
        client.data_converter, payload_codec=codec.refusing()
    )
    return Client(**config)


async def connect(
    address: str,
    namespace: str = "default",
    *,
    tracer: Tracer | None = None,
    runtime: Runtime | None = None,
    codec: PayloadCodec | None = None,
) -> Client:
    """Connect with the project's data converter; the error says what to check.

    ``tracer``: where spans go (default: the process-wide tracer provider); workers built
    on this client trace with it too. ``runtime``: a Temporal runtime carrying metrics
    configuration (default: Temporal's default runtime).
    """
    try:
        return await Client.connect(
            address,
            namespace=namespace,
            data_converter=data_converter(codec),
            # Registered on the client only: workers inherit it (twice would nest spans).
            interceptors=[TracingInterceptor(tracer)],
            runtime=runtime,
        )
    except RuntimeError as err:
        raise ConnectionError(
            f"cannot reach Temporal at {address} (namespace {namespace}): {err}. Start a dev "
            "server with `agentctl dev` or set TEMPORAL_ADDRESS."
        ) from err
