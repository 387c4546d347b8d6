"""The Temporal versions the project runs, read from ``deploy/temporal/versions.env``.

That file is the one source of truth: ``make cluster`` builds these versions, and tests
keep docker-compose.yml's image tags and the README equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VERSIONS_FILE = Path(__file__).resolve().parent.parent / "deploy" / "temporal" / "versions.env"


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a shell-style env file (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"{path}: not KEY=value: {line!r}")
            out[key.strip()] = value.strip().strip('"')
    return out


@dataclass(frozen=True)
class TemporalVersions:
    """Server (and its SQL tool), Web UI, and the release the upgrade test moves to."""

    server: str
    ui: str
    upgrade: str

    @classmethod
    def load(cls, path: Path = VERSIONS_FILE) -> TemporalVersions:
        """Read ``versions.env``."""
        env = read_env_file(path)
        return cls(
            server=env["TEMPORAL_VERSION"],
            ui=env["TEMPORAL_UI_VERSION"],
            upgrade=env["TEMPORAL_UPGRADE_VERSION"],
        )
