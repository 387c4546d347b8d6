"""Per-user spending limits, from the worker's ``AGENT_USER_LIMITS_FILE``.

The file maps user names to a monthly limit in USD; ``"*"`` is the default for users not
listed. Without a file, users have no cross-run limit (each run still has its budget).
"""

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

_FILE = TypeAdapter(dict[str, float])


class UserLimits:
    """Monthly USD limits per user."""

    def __init__(self, limits: Mapping[str, float] | None = None) -> None:
        self._limits = dict(limits or {})
        bad = [u for u, v in self._limits.items() if v < 0]
        if bad:
            raise ValueError(f"negative monthly limit for: {', '.join(bad)}")

    @classmethod
    def from_file(cls, path: Path | None) -> "UserLimits":
        """Read a JSON file of user name to monthly USD limit (None: no limits)."""
        if path is None:
            return cls()
        try:
            return cls(_FILE.validate_json(Path(path).read_bytes()))
        except (OSError, ValidationError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read user limits file {path}: {err}") from err

    def update(self, limits: Mapping[str, float]) -> None:
        """Set more limits (a running worker sees them from its next run on)."""
        self._limits.update(limits)

    def limit_for(self, user: str) -> float | None:
        """The user's monthly limit in USD, or None when unlimited."""
        return self._limits.get(user, self._limits.get("*"))
