"""One way to connect to Temporal, shared by the worker, the CLI, the API and the tests.

Where Temporal is and how to reach it (address, namespace, TLS, mTLS, API key, profile)
comes from `temporalio.envconfig`, read by `TemporalSettings.from_env`
(`infra.temporal_settings`); this module layers the project's own things on top. Every
client uses the same data converter (pydantic, plus the encryption codec and encrypted
failure messages when ``AGENT_CODEC_KEYS`` is set), so payloads written by one are read by
all; a worker polls through `worker_client`, which refuses unencrypted payloads. Every
client uses the same tracing interceptor, so a run started by one continues the caller's
trace in the worker (spans are only recorded once a tracer provider is set up; see
`workers.telemetry`).
"""

import dataclasses

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

from durable_agents._infra.codec import EncryptionCodec, Keyring
from durable_agents._infra.connect_errors import explain_connect_failure
from durable_agents._infra.temporal_settings import (
    DEFAULT_ADDRESS,
    TemporalConfigError,
    TemporalSettings,
)

__all__ = [
    "DEFAULT_ADDRESS",
    "TemporalConfigError",
    "TemporalSettings",
    "codec_keyring",
    "connect",
    "data_converter",
    "worker_client",
]


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
    settings: TemporalSettings | str | None = None,
    *,
    tracer: Tracer | None = None,
    runtime: Runtime | None = None,
    codec: PayloadCodec | None = None,
) -> Client:
    """Connect as ``settings`` say, with the project's data converter and tracing.

    ``settings``: None reads the environment (`TemporalSettings.from_env`); an address
    alone is a plaintext connection to its ``default`` namespace. ``tracer``: where spans
    go (default: the process-wide tracer provider); workers built on this client trace
    with it too. ``runtime``: a Temporal runtime carrying metrics configuration (default:
    Temporal's default runtime).

    Raises `ConnectionError` (`TemporalConfigError` for settings that cannot work) whose
    message says what to fix: TLS on one side only, a server certificate this client does
    not trust, a client certificate the server wants, refused credentials, nothing there.
    """
    if settings is None:
        settings = TemporalSettings.from_env()
    elif isinstance(settings, str):
        settings = TemporalSettings(address=settings)
    config = settings.connect_config()
    try:
        return await Client.connect(
            **config,
            data_converter=data_converter(codec),
            # Registered on the client only: workers inherit it (twice would nest spans).
            interceptors=[TracingInterceptor(tracer)],
            runtime=runtime,
        )
    except ValueError as err:  # settings built in code that from_env would have refused
        raise TemporalConfigError(f"cannot connect to Temporal: {err}") from err
    except RuntimeError as err:
        raise ConnectionError(explain_connect_failure(settings, str(err))) from err
