"""The file-editor's change ledger: one row per write or delete, and the bytes it replaced.

It lives in ``data_dir/file-editor/backups``, beside the workspace and never inside it,
so the agent can neither read nor tamper with its own undo information. A change is
recorded *before* its effect, keyed by the tool call's idempotency key:

1. the previous bytes are saved as ``<write_id>.bak`` (atomically);
2. a ``pending`` row is inserted (key, write_id, path, whether the file existed, hashes);
3. the effect happens (atomic write, or unlink);
4. the row becomes ``done`` with the result the tool returned.

A retry of the same call (a worker crashed somewhere in 1-4) finds the row and skips
straight to 3, so it never takes a second backup, and never one of its own output.
Crashing between 1 and 2 leaves a ``.bak`` without a row; the retry rewrites the same file
(the workspace file was not touched yet), so there is still one backup per write.

An undo keeps what it replaces too (`Ledger.keep_replaced`), before its effect: the bytes
it overwrites or deletes go to ``replaced-<sha256>.bak``, named by their content (two
undos replacing the same bytes share one copy), and a ``kept`` row ties the copy to the
undo call, so a retry that finds the effect already done still reports where it is.
"""

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durable_agents import ToolFailedError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE, write_id TEXT NOT NULL UNIQUE, op TEXT NOT NULL,
    path TEXT NOT NULL, existed INTEGER NOT NULL, mode INTEGER,
    old_sha256 TEXT, new_sha256 TEXT, state TEXT NOT NULL, result TEXT);
CREATE TABLE IF NOT EXISTS undos (key TEXT PRIMARY KEY, write_id TEXT NOT NULL, result TEXT);
CREATE TABLE IF NOT EXISTS kept (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, path TEXT NOT NULL);
"""
_COLUMNS = "key, write_id, op, path, existed, mode, old_sha256, new_sha256, state, result"


def digest(data: bytes) -> str:
    """The SHA-256 of ``data``, hex: how the ledger recognises contents."""
    return hashlib.sha256(data).hexdigest()


def write_id_for(idempotency_key: str) -> str:
    """The public id of the change made under ``idempotency_key`` (stable across retries)."""
    return "w" + digest(idempotency_key.encode())[:16]


def backup_root(data_dir: Path, workspace: Path) -> Path:
    """The backup directory, refused if it overlaps the workspace (the agent could edit it)."""
    root = (data_dir / "file-editor" / "backups").resolve()
    if root.is_relative_to(workspace) or workspace.is_relative_to(root):
        raise ToolFailedError(
            f"the backup store {root} and the workspace {workspace} overlap; point "
            "FILE_EDITOR_WORKSPACE at a directory outside the agent data directory"
        )
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass(frozen=True)
class Change:
    """One recorded write or delete. ``new_sha256`` is None for a delete."""

    key: str
    write_id: str
    op: str
    path: str
    existed: bool
    mode: int | None
    old_sha256: str | None
    new_sha256: str | None
    state: str = "pending"
    result: dict[str, Any] | None = None


def _change(row: tuple[Any, ...]) -> Change:
    key, write_id, op, path, existed, mode, old, new, state, result = row
    loaded = json.loads(result) if result else None
    return Change(key, write_id, op, path, bool(existed), mode, old, new, state, loaded)


class Ledger:
    """The SQLite ledger and backup files under one backup directory (blocking calls)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # autocommit: each statement is its own transaction unless BEGIN is explicit.
        conn = sqlite3.connect(self.root / "ledger.sqlite3", timeout=10.0, isolation_level=None)
        with closing(conn):
            conn.executescript(_SCHEMA)
            yield conn

    def _one(self, where: str, value: str) -> Change | None:
        with self._db() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM changes WHERE {where} = ?", (value,))
            found = row.fetchone()
        return _change(found) if found else None

    def by_key(self, key: str) -> Change | None:
        """The change made under idempotency key ``key``, if any."""
        return self._one("key", key)

    def by_write_id(self, write_id: str) -> Change | None:
        """The change called ``write_id``, if any."""
        return self._one("write_id", write_id)

    def later_changes(self, change: Change) -> list[str]:
        """Write ids of changes to the same path made after ``change`` and not undone."""
        with self._db() as conn:
            rows = conn.execute(
                "SELECT write_id FROM changes WHERE path = ? AND state != 'undone' AND seq > "
                "(SELECT seq FROM changes WHERE write_id = ?) ORDER BY seq",
                (change.path, change.write_id),
            ).fetchall()
        return [r[0] for r in rows]

    def _backup_path(self, write_id: str) -> Path:
        return self.root / f"{write_id}.bak"

    @staticmethod
    def _save(target: Path, data: bytes) -> None:
        """Write ``target`` atomically and durably: a crash leaves all of it or none."""
        tmp = target.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(target)

    def keep_replaced(self, key: str, data: bytes) -> None:
        """Keep ``data``, bytes the undo call ``key`` is about to overwrite or delete."""
        target = self.root / f"replaced-{digest(data)}.bak"
        if not target.is_file():
            self._save(target, data)
        with self._db() as conn:
            conn.execute("INSERT INTO kept (key, path) VALUES (?, ?)", (key, str(target)))

    def kept_by(self, key: str) -> str | None:
        """Where the undo call ``key`` last kept what it replaced, if it replaced anything."""
        with self._db() as conn:
            found = conn.execute(
                "SELECT path FROM kept WHERE key = ? ORDER BY seq DESC LIMIT 1", (key,)
            ).fetchone()
        return found[0] if found else None

    def begin(self, change: Change, previous: bytes | None) -> None:
        """Save the previous bytes (if the file existed), then record ``change`` as pending."""
        if previous is not None:
            self._save(self._backup_path(change.write_id), previous)
        with self._db() as conn:
            conn.execute(
                f"INSERT INTO changes ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL)",
                (
                    change.key,
                    change.write_id,
                    change.op,
                    change.path,
                    int(change.existed),
                    change.mode,
                    change.old_sha256,
                    change.new_sha256,
                ),
            )

    def finish(self, key: str, result: dict[str, Any]) -> None:
        """Mark the change made under ``key`` done, with the result its tool returned."""
        with self._db() as conn:
            conn.execute(
                "UPDATE changes SET state = 'done', result = ? WHERE key = ? AND state = 'pending'",
                (json.dumps(result, sort_keys=True), key),
            )

    def backup(self, write_id: str) -> bytes:
        """The bytes change ``write_id`` replaced."""
        path = self._backup_path(write_id)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ToolFailedError(f"the backup of {write_id} is missing from {self.root}") from None

    def undo_result(self, key: str) -> dict[str, Any] | None:
        """What the undo made under idempotency key ``key`` returned, if it finished."""
        with self._db() as conn:
            found = conn.execute("SELECT result FROM undos WHERE key = ?", (key,)).fetchone()
        return json.loads(found[0]) if found else None

    def mark_undone(self, write_id: str, key: str, result: dict[str, Any]) -> None:
        """Record, in one transaction, that ``write_id`` was undone by the call ``key``."""
        with self._db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE changes SET state = 'undone' WHERE write_id = ?", (write_id,))
            conn.execute(
                "INSERT OR REPLACE INTO undos (key, write_id, result) VALUES (?, ?, ?)",
                (key, write_id, json.dumps(result, sort_keys=True)),
            )
            conn.execute("COMMIT")
