"""What a user can type wrong gets one line naming the value and what is allowed, exit 2.

Each command line runs as a user would type it (a subprocess of ``agentctl``); none needs a
server: bad values are refused before anything connects (TEMPORAL_ADDRESS points nowhere).
"""

import os
import subprocess
import sys

import pytest
import typer

import durable_agents._cli.main  # noqa: F401 - importing it registers every command on the app
from durable_agents._cli.app import app
from tests.support.processes import REPO

NOWHERE = {**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:9", "COLUMNS": "200"}


def agentctl(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``agentctl ARGS`` and capture what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "durable_agents._cli.main", *args],
        cwd=REPO,
        env=NOWHERE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "value", "allowed"),
    [
        (["run", "db-tuner", "goal", "--budget-usd", "-1"], "-1.0", "0 or more"),
        (["run", "db-tuner", "goal", "--max-iterations", "0"], "0", "1 or more"),
        (["run", "db-tuner", "goal", "--budget-usd", "lots"], "lots", "number"),
        (["extend-budget", "run-x", "--usd", "-1"], "-1.0", "more than 0"),
        (["extend-budget", "run-x", "--usd", "nan"], "nan", "more than 0"),
        (["list", "--status", "bogus"], "bogus", "'budget_exhausted'"),
        (["list", "--limit", "0"], "0", "1 or more"),
        (["report", "--since", "yesterday"], "yesterday", "24h"),
        (["ledger", "adjust", "ana", "--usd", "0", "--reason", "x", "--as", "op"], "0.0", "other"),
        (["approve"], "run", "Missing argument"),
        (["no-such-command"], "no-such-command", "No such command"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], value: str, allowed: str) -> None:
    done = agentctl(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert value in lines[0] and allowed in lines[0], lines[0]
    assert lines[0].startswith("error: ") and "--help" in lines[0]
    assert done.stdout == ""


def test_list_status_help_lists_the_values() -> None:
    done = agentctl("list", "--help")
    assert done.returncode == 0
    flat = "".join(done.stdout.split())  # the help wraps in a table
    assert "running|awaiting_approval|completed|failed|escalated|budget_exhausted" in flat


def _commands(group: typer.core.TyperGroup, path: str = "agentctl") -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name, command in group.commands.items():
        if isinstance(command, typer.core.TyperGroup):
            found += _commands(command, f"{path} {name}")
        else:
            found.append((f"{path} {name}", command))
    return found


def test_every_option_and_argument_has_help_text() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    missing = [
        f"{path} {param.name}"
        for path, command in _commands(root)
        for param in command.params  # type: ignore[attr-defined]
        if param.name != "help" and not (getattr(param, "help", None) or "").strip()
    ]
    assert missing == []
