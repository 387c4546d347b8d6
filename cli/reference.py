"""The ``agentctl`` reference (docs/agentctl.md), generated from the commands' own help.

``python -m durable_agents._cli.reference --write`` regenerates it; a test fails when the file and
the code disagree, so the reference cannot drift.
"""

import os
import sys
from pathlib import Path

import typer.main
from typer.testing import CliRunner

from durable_agents._cli.app import app
from durable_agents._cli.main import COMMAND_MODULES  # noqa: F401 - registers every command on the app

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "agentctl.md"
_ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


def command_paths() -> list[list[str]]:
    """Every command and sub-command, in the order ``agentctl --help`` lists them."""
    root = typer.main.get_command(app)
    paths: list[list[str]] = []
    for name, cmd in getattr(root, "commands", {}).items():
        subs = getattr(cmd, "commands", None)
        paths += [[name, sub] for sub in subs] if subs else [[name]]
    return paths


def _help(path: list[str]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env=_ENV, prog_name="agentctl")
    lines = [line.rstrip() for line in result.output.splitlines()]
    return "\n".join(lines).strip("\n")


def reference() -> str:
    """The whole reference as Markdown."""
    parts = [
        "# agentctl reference",
        "",
        "Generated from each command's `--help` by",
        "`python -m durable_agents._cli.reference --write`;",
        "`tests/test_cli_reference.py` fails when this file and the code disagree.",
        "",
        "```text",
        _help([]),
        "```",
    ]
    for path in command_paths():
        parts += ["", f"## agentctl {' '.join(path)}", "", "```text", _help(path), "```"]
    return "\n".join(parts) + "\n"


def main() -> None:
    """Print the reference, or write it to docs/agentctl.md with ``--write``."""
    os.environ.update(_ENV)
    text = reference()
    if "--write" in sys.argv[1:]:
        REFERENCE.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
