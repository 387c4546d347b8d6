"""Keys a worker holds: its own signing key, and the approvers' public keys.

- The worker key signs what runs tell their users' ledgers. Every worker of one
  deployment must share it (``AGENT_WORKER_KEY_FILE``, a secret like the codec keys);
  by default it is made once per machine under ``~/.config/durable-agents/``.
- ``AGENT_APPROVER_KEYS_FILE`` is a JSON object of approver name to Ed25519 public key
  (base64; ``agentctl keygen NAME`` makes a pair and prints the line). With it, every
  decision and budget extension must be signed by its approver; without it (the dev
  default) decisions are taken as declared and every view says so.
- ``AGENT_LEDGER_OPERATORS`` names the key holders who may correct a user's ledger
  (default: every key holder).
"""

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from durable_agents._domain.signatures import (
    SignatureError,
    check_public_key,
    new_private_key,
    public_key_of,
)

DEFAULT_KEY_DIR = Path.home() / ".config" / "durable-agents"


class KeyConfigError(ValueError):
    """A key file is missing or malformed; the message names the file and the fix."""


def load_or_create_private_key(path: Path) -> str:
    """The base64 private key in ``path``, made (mode 0600) if the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(new_private_key() + "\n")
        with contextlib.suppress(FileExistsError):  # the first writer wins
            os.link(tmp, path)
        tmp.unlink()
    key = path.read_text().strip()
    try:
        public_key_of(key)
    except SignatureError as err:
        raise KeyConfigError(f"{path}: {err}") from None
    return key


def load_public_keys(path: Path) -> dict[str, str]:
    """Approver name -> public key from a JSON file; errors name the entry to fix."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise KeyConfigError(f"cannot read approver keys file {path}: {err}") from None
    if not isinstance(raw, dict):
        raise KeyConfigError(f"{path} must hold a JSON object of name to public key")
    keys: dict[str, str] = {}
    for name, key in raw.items():
        try:
            keys[str(name)] = check_public_key(str(key))
        except SignatureError as err:
            raise KeyConfigError(f"{path}: key of '{name}': {err}") from None
    return keys


@dataclass(frozen=True)
class WorkerKeys:
    """The worker's signing key and the public keys it trusts."""

    worker_private_key: str
    approver_keys: dict[str, str] = field(default_factory=dict)
    operators: tuple[str, ...] | None = None

    @property
    def worker_public_key(self) -> str:
        """The public half of the worker key (ledgers verify with it)."""
        return public_key_of(self.worker_private_key)

    def operator_keys(self) -> dict[str, str]:
        """Keys of those who may correct a ledger."""
        if self.operators is None:
            return dict(self.approver_keys)
        return {n: k for n, k in self.approver_keys.items() if n in self.operators}

    @classmethod
    def load(
        cls,
        worker_key_file: Path | None,
        approver_keys_file: Path | None,
        operators: str | None = None,
    ) -> "WorkerKeys":
        """Read (and on first use make) the worker key; read the approvers' keys."""
        key = load_or_create_private_key(worker_key_file or DEFAULT_KEY_DIR / "worker.key")
        approvers = load_public_keys(approver_keys_file) if approver_keys_file else {}
        names = tuple(n.strip() for n in (operators or "").split(",") if n.strip())
        return cls(key, approvers, names or None)
