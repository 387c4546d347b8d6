"""The generated agentctl reference matches the code, and the README names every command."""

from pathlib import Path

import pytest

from durable_agents._cli.reference import REFERENCE, command_paths, reference

pytestmark = pytest.mark.unit
README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_reference_is_what_the_commands_say() -> None:
    assert REFERENCE.read_text() == reference(), (
        "docs/agentctl.md is out of date: run `python -m durable_agents._cli.reference --write`"
    )


def test_the_readme_names_every_command() -> None:
    text = README.read_text()
    missing = [" ".join(p) for p in command_paths() if f"agentctl {' '.join(p)}" not in text]
    assert not missing, f"README.md does not mention: {', '.join(missing)}"
