"""A cache of model replies, shared by every run of a worker and by workers on one machine.

A call at temperature 0 with the same model, messages and parameters gets (near enough)
the same answer, so paying for it twice is waste: agents re-ask the same questions across
runs, and a replanned run re-asks what it asked before. The cache is one SQLite file in
the worker's data directory (``<data_dir>/llm-cache.sqlite``); WAL mode lets readers and
one writer of several processes work at once, and a busy timeout makes writers queue
instead of failing.

Only complete replies (``finish_reason == "stop"``) may be stored: a reply cut at
``max_tokens`` (``length``) or by a content filter is an accident of one call, and caching
it would hand the same broken answer to every later run, which could then never recover by
simply asking again.

The cache is an optimisation, never a source of failure: any SQLite error is logged and
treated as a miss (or a skipped write).
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_FILE = "llm-cache.sqlite"
# Bump when the key's inputs or their meaning change: old entries then simply never match.
KEY_VERSION = 1
_BUSY_TIMEOUT_S = 5.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    model TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID
"""


@dataclass(frozen=True)
class CachedReply:
    """A stored reply, with the usage of the call that first produced it."""

    text: str
    model: str
    finish_reason: str
    input_tokens: int
    output_tokens: int


class ResponseCache:
    """Model replies by `ResponseCache.key`, in the SQLite file ``path``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._ready = False

    @staticmethod
    def key(
        model: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        json_mode: bool,
        provider: str = "",
        json_schema: dict[str, Any] | None = None,
    ) -> str:
        """SHA-256 (hex) of the canonical JSON of everything that shapes the reply;
        ``provider`` names the endpoint (a base URL, ``offline``): the same model name on
        another gateway, or played by the offline model, is a different model.
        """
        canonical = json.dumps(
            {
                "v": KEY_VERSION,
                "provider": provider,
                "model": model,
                "messages": messages,
                "max_tokens": max_tokens,
                # 0 and 0.0 are the same temperature but not the same JSON.
                "temperature": float(temperature),
                "json_mode": json_mode,
                # Keys of calls without a schema stay what they were.
                **({"json_schema": json_schema} if json_schema is not None else {}),
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    async def get(self, key: str) -> CachedReply | None:
        """The reply stored under ``key``, or None (also when the file is unusable)."""
        try:
            return await asyncio.to_thread(self._get, key)
        except sqlite3.Error as err:
            self._ready = False  # the file may have been replaced: set it up again
            log.warning("llm cache read failed, treated as a miss: %s", err)
            return None

    async def put(self, key: str, reply: CachedReply) -> None:
        """Store ``reply`` under ``key``; the first writer wins, later ones are no-ops.

        Replies that are not complete (``finish_reason != "stop"``) are not stored.
        """
        if reply.finish_reason != "stop":
            return
        try:
            await asyncio.to_thread(self._put, key, reply)
        except sqlite3.Error as err:
            self._ready = False
            log.warning("llm cache write failed, reply not cached: %s", err)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One short-lived connection per operation: nothing is shared between threads,
        # and connecting to a local file costs far less than the model call it saves.
        if not self._ready:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, timeout=_BUSY_TIMEOUT_S)
        try:
            if not self._ready:
                # WAL is a property of the file (set once, kept); schema creation is
                # idempotent, so racing processes are harmless.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(_SCHEMA)
                self._ready = True
            # Losing the last few entries on power loss is fine for a cache.
            conn.execute("PRAGMA synchronous=NORMAL")
            with conn:  # one transaction, committed on success
                yield conn
        finally:
            conn.close()

    def _get(self, key: str) -> CachedReply | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT text, model, finish_reason, input_tokens, output_tokens"
                " FROM replies WHERE key = ?",
                (key,),
            ).fetchone()
        return None if row is None else CachedReply(*row)

    def _put(self, key: str, reply: CachedReply) -> None:
        row = {"key": key, "created_at": time.time(), **asdict(reply)}
        with self._connect() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO replies VALUES (:key, :text, :model, :finish_reason,"
                " :input_tokens, :output_tokens, :created_at)",
                row,
            )
