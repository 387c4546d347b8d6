"""Where large tool outputs and model replies live, so histories stay small.

Content-addressed: the key is the SHA-256 of the bytes, so writing the same content twice
(a retried activity) is harmless, and a reference can never point at changed content.
The `PayloadStore` protocol is what an S3-compatible store would implement.

With codec keys (``AGENT_CODEC_KEYS``) every blob is written encrypted at rest with the
codec's keys (a `BlobCipher`: `client.codec.Keyring`, AES-256-GCM), the key id in a small
header and the digest as associated data, so a blob cannot pass for another. References
do not change: the key and size are those of the plaintext, which workflow code computes
and recorded histories hold. Plaintext blobs written before the keys were set stay readable and are
re-written encrypted when the same content is stored again. The file names remain the
SHA-256 of the content, so someone who can list the directory can confirm a guess of a
whole blob's exact content.
"""

import hashlib
import os
import struct
import tempfile
from pathlib import Path
from typing import Protocol

from durable_agents._domain.llm import PayloadRef

DEFAULT_INLINE_LIMIT = 4096
PREVIEW_CHARS = 240
# Starts with NUL: stored content is UTF-8 text, so a plaintext blob never begins so.
SEALED_MAGIC = b"\x00durable-agents:aes-256-gcm:1\x00"
_KEY_ID_LEN = struct.Struct(">H")


class PayloadStore(Protocol):
    """Stores bytes under their digest."""

    def put(self, data: bytes, preview: str) -> PayloadRef:
        """Store ``data`` and return a reference to it."""
        ...

    def get(self, ref: PayloadRef) -> bytes:
        """The bytes ``ref`` points at (KeyError if absent)."""
        ...


class BlobCipher(Protocol):
    """Named keys that seal and open blobs (`client.codec.Keyring`, from the worker's
    ``AGENT_CODEC_KEYS``)."""

    def knows(self, key_id: str) -> bool:
        """Whether ``key_id`` names one of the keys."""
        ...

    def seal(self, plain: bytes, aad: bytes | None = None) -> tuple[str, bytes]:
        """``(key id, sealed bytes)`` of ``plain`` under the current key."""
        ...

    def open(self, key_id: str, sealed: bytes, aad: bytes | None = None) -> bytes:
        """The plaintext of ``sealed``; ValueError if it does not authenticate."""
        ...


class PayloadUnreadableError(ValueError):
    """A stored blob cannot be read back: unknown key, no keys, or corrupt content."""


class LocalPayloadStore:
    """A directory of files named by digest (``ab/abcdef…``), sealed with ``keyring``."""

    def __init__(self, root: Path, keyring: BlobCipher | None = None) -> None:
        self.root = root
        self.keyring = keyring

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def put(self, data: bytes, preview: str) -> PayloadRef:
        """Write atomically (temp file + rename) so readers never see half a payload."""
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if not self._holds(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._seal(key, data))
            Path(tmp).replace(path)
        return PayloadRef(key=key, size_bytes=len(data), preview=preview[:PREVIEW_CHARS])

    def get(self, ref: PayloadRef) -> bytes:
        """Read a payload back; a missing one is a clear KeyError, an unreadable one a
        `PayloadUnreadableError` saying which key it needs."""
        path = self._path(ref.key)
        if not path.exists():
            raise KeyError(f"payload {ref.key} is not in the store at {self.root}")
        data = self._open(ref.key, path.read_bytes())
        if hashlib.sha256(data).hexdigest() != ref.key:
            raise PayloadUnreadableError(
                f"payload {ref.key} in {self.root} does not match its digest (corrupt)"
            )
        return data

    def _holds(self, path: Path) -> bool:
        """The blob is there in the form this store writes (a plaintext one is not,
        when keys are set: storing its content again encrypts it)."""
        if not path.exists():
            return False
        if self.keyring is None:
            return True
        with path.open("rb") as fh:
            return fh.read(len(SEALED_MAGIC)) == SEALED_MAGIC

    def _seal(self, key: str, data: bytes) -> bytes:
        if self.keyring is None:
            return data
        key_id, sealed = self.keyring.seal(data, aad=key.encode())
        kid = key_id.encode()
        return SEALED_MAGIC + _KEY_ID_LEN.pack(len(kid)) + kid + sealed

    def _open(self, key: str, blob: bytes) -> bytes:
        if not blob.startswith(SEALED_MAGIC):
            return blob  # written before the keys were set
        where = f"payload {key} in {self.root}"
        rest = blob[len(SEALED_MAGIC) :]
        try:
            (n,) = _KEY_ID_LEN.unpack_from(rest)
        except struct.error:
            raise PayloadUnreadableError(f"{where} is truncated (corrupt)") from None
        key_id = rest[_KEY_ID_LEN.size : _KEY_ID_LEN.size + n].decode(errors="replace")
        sealed = rest[_KEY_ID_LEN.size + n :]
        if self.keyring is None:
            raise PayloadUnreadableError(
                f"{where} is encrypted with key '{key_id}'; set AGENT_CODEC_KEYS on this "
                "worker to read it"
            )
        if not self.keyring.knows(key_id):
            raise PayloadUnreadableError(
                f"{where} was encrypted with key '{key_id}', which is not in "
                "AGENT_CODEC_KEYS; add it back (old keys must stay to read old blobs)"
            )
        try:
            return self.keyring.open(key_id, sealed, aad=key.encode())
        except ValueError:
            raise PayloadUnreadableError(
                f"{where} does not decrypt with key '{key_id}' (corrupt, or a different key "
                "under the same id)"
            ) from None


def preview_of(text: str) -> str:
    """The first characters of ``text`` on one line, for people and prompts."""
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"
