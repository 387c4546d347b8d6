"""Approvers' private keys on the machine a person decides from.

``agentctl keygen NAME`` makes ``NAME.key`` (private, mode 0600) and ``NAME.pub`` in the
key directory (``AGENT_KEYS_DIR``, default ``~/.config/durable-agents/keys``); the public
key goes into the workers' ``AGENT_APPROVER_KEYS_FILE``. A decision made ``--as NAME``
is signed with ``NAME.key`` when it exists.
"""

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durable_agents._domain.signatures import new_private_key, public_key_of, sign

DEFAULT_KEYS_DIR = Path.home() / ".config" / "durable-agents" / "keys"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,199}$")


class KeyringError(ValueError):
    """A key name or file is unusable; the message says what to do."""


@dataclass(frozen=True)
class ApproverKeyring:
    """The private keys in one directory, by approver name."""

    directory: Path

    @classmethod
    def from_env(cls) -> "ApproverKeyring":
        """The directory named by ``AGENT_KEYS_DIR``, or the default."""
        return cls(Path(os.environ.get("AGENT_KEYS_DIR") or DEFAULT_KEYS_DIR))

    def _path(self, name: str, suffix: str) -> Path:
        if not _NAME.fullmatch(name):
            raise KeyringError(
                f"'{name}' cannot name a key: use letters, digits and _.@- (up to 200)"
            )
        return self.directory / f"{name}{suffix}"

    def generate(self, name: str, *, overwrite: bool = False) -> str:
        """Make a key pair for ``name``; returns the public key (base64)."""
        private = self._path(name, ".key")
        if private.exists() and not overwrite:
            raise KeyringError(f"{private} exists; pass --force to replace it")
        self.directory.mkdir(parents=True, exist_ok=True)
        key = new_private_key()
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
        public = public_key_of(key)
        self._path(name, ".pub").write_text(public + "\n")
        return public

    def sign(self, name: str, message: dict[str, Any]) -> str | None:
        """``name``'s signature of ``message``, or None when this keyring has no key for it."""
        try:
            private = self._path(name, ".key")
        except KeyringError:
            return None
        if not private.exists():
            return None
        return sign(private.read_text().strip(), message)


def add_public_key(approvers_file: Path, name: str, public_key: str) -> None:
    """Add (or replace) ``name``'s public key in a workers' approver keys file."""
    keys: dict[str, str] = {}
    if approvers_file.exists():
        loaded = json.loads(approvers_file.read_text() or "{}")
        if not isinstance(loaded, dict):
            raise KeyringError(f"{approvers_file} must hold a JSON object")
        keys = {str(k): str(v) for k, v in loaded.items()}
    keys[name] = public_key
    approvers_file.parent.mkdir(parents=True, exist_ok=True)
    approvers_file.write_text(json.dumps(keys, indent=2, sort_keys=True) + "\n")
