"""Where large tool outputs and model replies live, so histories stay small.

Content-addressed: the key is the SHA-256 of the bytes, so writing the same content twice
(a retried activity) is harmless, and a reference can never point at changed content.
The `PayloadStore` protocol is what an S3-compatible store would implement.
"""

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

from domain.llm import PayloadRef

DEFAULT_INLINE_LIMIT = 4096
PREVIEW_CHARS = 240


class PayloadStore(Protocol):
    """Stores bytes under their digest."""

    def put(self, data: bytes, preview: str) -> PayloadRef:
        """Store ``data`` and return a reference to it."""
        ...

    def get(self, ref: PayloadRef) -> bytes:
        """The bytes ``ref`` points at (KeyError if absent)."""
        ...


class LocalPayloadStore:
    """A directory of files named by digest (``ab/abcdef…``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def put(self, data: bytes, preview: str) -> PayloadRef:
        """Write atomically (temp file + rename) so readers never see half a payload."""
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            Path(tmp).replace(path)
        return PayloadRef(key=key, size_bytes=len(data), preview=preview[:PREVIEW_CHARS])

    def get(self, ref: PayloadRef) -> bytes:
        """Read a payload back; a missing one is a clear KeyError."""
        path = self._path(ref.key)
        if not path.exists():
            raise KeyError(f"payload {ref.key} is not in the store at {self.root}")
        return path.read_bytes()


def preview_of(text: str) -> str:
    """The first characters of ``text`` on one line, for people and prompts."""
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"
