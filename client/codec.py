"""Payload encryption: AES-256-GCM with a key id in each payload's metadata.

Every payload a client or worker writes to Temporal (workflow inputs, activity arguments
and results, signals, query results) is encrypted before it leaves the process, so the
server's database never holds a prompt, a goal or a tool argument in plaintext.

Keys come from ``AGENT_CODEC_KEYS``: a comma-separated list of ``key_id:base64key``
(32-byte keys); the first one encrypts, all of them decrypt, so a key can be rotated by
putting the new one first and keeping the old ones until old runs are gone.
"""

import base64
import os
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_META = "encryption-key-id"
NONCE_BYTES = 12


class CodecKeyError(ValueError):
    """The key configuration is unusable, or a payload names a key we do not have."""


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


class EncryptionCodec(PayloadCodec):
    """Encrypts with the current key; decrypts with whichever key a payload names."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise CodecKeyError("the encryption codec needs at least one key")
        self._current_id, current = keys[0]
        self._current = AESGCM(current)
        self._by_id: Mapping[str, AESGCM] = {kid: AESGCM(k) for kid, k in keys}

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
            nonce = os.urandom(NONCE_BYTES)
            sealed = self._current.encrypt(nonce, p.SerializeToString(), None)
            out.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_META: self._current_id.encode()},
                    data=nonce + sealed,
                )
            )
        return out

    def decode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        """`decode` without a loop, for the codec server."""
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                out.append(p)
                continue
            key_id = p.metadata.get(KEY_ID_META, b"").decode()
            aes = self._by_id.get(key_id)
            if aes is None:
                raise CodecKeyError(
                    f"payload was encrypted with key '{key_id}', which is not in "
                    "AGENT_CODEC_KEYS; add it back (old keys must stay to read old runs)"
                )
            plain = aes.decrypt(p.data[:NONCE_BYTES], p.data[NONCE_BYTES:], None)
            decoded = Payload()
            decoded.ParseFromString(plain)
            out.append(decoded)
        return out


def new_key() -> str:
    """A fresh random 32-byte key, base64-encoded."""
    return base64.b64encode(os.urandom(32)).decode()
