"""Payload encryption: AES-256-GCM with a key id in each payload's metadata.

Every payload a client or worker writes to Temporal (workflow inputs, activity arguments
and results, signals, query results, summaries, and failure messages and stack traces,
see `client.connection.data_converter`) is encrypted before it leaves the process, so
the server's database never holds a prompt, a goal or a tool argument in plaintext.

Keys come from ``AGENT_CODEC_KEYS``: a comma-separated list of ``key_id:base64key``
(32-byte keys); the first one encrypts, all of them decrypt, so a key can be rotated by
putting the new one first and keeping the old ones until old runs are gone. The same
`Keyring` encrypts the worker's payload store (`activities.payload_store`).

Clients (agentctl, the API, the codec server) read plaintext payloads too. A worker reads
only encrypted ones (`RefusingCodec`), unless ``AGENT_ACCEPT_PLAINTEXT=1``.
"""

import base64
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from durable_agents._domain.refused import refusal_json

ENCODING = b"binary/encrypted"
KEY_ID_META = "encryption-key-id"
NONCE_BYTES = 12
PLAINTEXT_REFUSED = (
    "unencrypted payload refused: this worker requires payloads encrypted with "
    "AGENT_CODEC_KEYS (send it through agentctl or the Python API configured with the keys; "
    "AGENT_ACCEPT_PLAINTEXT=1 on the worker accepts plaintext during a migration)"
)


class CodecKeyError(ValueError):
    """The key configuration is unusable, or a payload names a key we do not have."""


class CiphertextError(ValueError):
    """Ciphertext that does not authenticate under the key it names (corrupt or forged)."""


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    """Parse ``id:base64key,id2:base64key2`` (first = current); errors say how to fix."""
    keys: list[tuple[str, bytes]] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise CodecKeyError(f"codec key '{item[:8]}…' must look like key_id:base64key")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError as err:
            raise CodecKeyError(f"codec key '{key_id}' is not valid base64") from err
        if len(key) != 32:
            raise CodecKeyError(
                f"codec key '{key_id}' has {len(key)} bytes; AES-256 needs 32 "
                "(make one with: agentctl codec-key)"
            )
        keys.append((key_id, key))
    if not keys:
        raise CodecKeyError("AGENT_CODEC_KEYS is set but names no key")
    return keys


class Keyring:
    """AES-256-GCM under named keys: the first seals, any of them opens."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise CodecKeyError("the encryption codec needs at least one key")
        self.current_id = keys[0][0]
        self._by_id: Mapping[str, AESGCM] = {kid: AESGCM(k) for kid, k in keys}

    def seal(self, plain: bytes, aad: bytes | None = None) -> tuple[str, bytes]:
        """``(key id, nonce + ciphertext)`` of ``plain`` under the current key."""
        nonce = os.urandom(NONCE_BYTES)
        return self.current_id, nonce + self._by_id[self.current_id].encrypt(nonce, plain, aad)

    def knows(self, key_id: str) -> bool:
        """Whether ``key_id`` is one of the keys."""
        return key_id in self._by_id

    def open(self, key_id: str, sealed: bytes, aad: bytes | None = None) -> bytes:
        """The plaintext of ``sealed``; `CodecKeyError` for an unknown key id and
        `CiphertextError` for ciphertext that does not authenticate."""
        aes = self._by_id.get(key_id)
        if aes is None:
            raise CodecKeyError(
                f"encrypted with key '{key_id}', which is not in AGENT_CODEC_KEYS; add it "
                "back (old keys must stay to read old runs)"
            )
        try:
            return aes.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError) as err:  # ValueError: too short to hold a nonce
            raise CiphertextError(
                f"ciphertext does not decrypt with key '{key_id}' (corrupt, forged, or a "
                "different key under the same id)"
            ) from err


class EncryptionCodec(PayloadCodec):
    """Encrypts with the current key; decrypts with whichever key a payload names.

    Payloads that are not encrypted pass through decoding unchanged (what a client
    needs to read runs written before the keys were set).
    """

    def __init__(self, keys: Sequence[tuple[str, bytes]] | Keyring) -> None:
        self.keyring = keys if isinstance(keys, Keyring) else Keyring(keys)

    @classmethod
    def from_env(cls) -> "EncryptionCodec | None":
        """The codec configured by ``AGENT_CODEC_KEYS``, or None when unset."""
        spec = os.environ.get("AGENT_CODEC_KEYS")
        return cls(parse_keys(spec)) if spec else None

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload whole (metadata included) into a new payload."""
        return self.encode_sync(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt payloads this codec encrypted; pass others through unchanged."""
        return self.decode_sync(payloads)

    def encode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        """`encode` without a loop, for the codec server (no I/O happens here)."""
        out = []
        for p in payloads:
            key_id, sealed = self.keyring.seal(p.SerializeToString())
            out.append(
                Payload(metadata={"encoding": ENCODING, KEY_ID_META: key_id.encode()}, data=sealed)
            )
        return out

    def decode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        """`decode` without a loop, for the codec server."""
        return [self._decode_one(p) for p in payloads]

    def _decode_one(self, p: Payload) -> Payload:
        if p.metadata.get("encoding") != ENCODING:
            return p
        key_id = p.metadata.get(KEY_ID_META, b"").decode(errors="replace")
        try:
            plain = self.keyring.open(key_id, p.data)
        except (CodecKeyError, CiphertextError) as err:
            raise type(err)(f"payload was {err}") from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded

    def refusing(self) -> "RefusingCodec":
        """This codec as a worker uses it: nothing unencrypted gets through."""
        return RefusingCodec(self.keyring)


class RefusingCodec(EncryptionCodec):
    """A worker's codec: payloads it cannot decrypt become a refusal sentinel.

    Refused: a plaintext payload, one encrypted under a key the worker does not have, and
    ciphertext that does not authenticate. It never raises on them: an exception while
    decoding a workflow activation fails the workflow task, which Temporal retries
    forever, so one unencrypted signal (anyone with the ``temporal`` CLI can send one)
    would wedge the run. The workflow instead receives ``{"__refused_payload__": reason}``
    (`domain.refused`) and refuses the start input, signal or update with that reason.
    """

    def _decode_one(self, p: Payload) -> Payload:
        if p.metadata.get("encoding") != ENCODING:
            return refused(PLAINTEXT_REFUSED)
        try:
            return super()._decode_one(p)
        except (CodecKeyError, CiphertextError, DecodeError) as err:
            return refused(f"encrypted payload refused: {err}")


def refused(reason: str) -> Payload:
    """The sentinel payload that stands for a refused one (see `domain.refused`)."""
    return Payload(metadata={"encoding": b"json/plain"}, data=refusal_json(reason))


def new_key() -> str:
    """A fresh random 32-byte key, base64-encoded."""
    return base64.b64encode(os.urandom(32)).decode()
