"""docs/guide.md is the code of examples/refunds, which CI runs: the two cannot differ."""

import re
from pathlib import Path

import pytest

import durable_agents
import durable_agents.testing
from durable_agents import PLAN_FORMAT

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide.md"
EXAMPLE = ROOT / "examples" / "refunds"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", GUIDE.read_text(), re.M | re.S)


def test_the_guide_shows_the_example_and_its_test_verbatim() -> None:
    shown = blocks("python")
    for path in (EXAMPLE / "__init__.py", EXAMPLE / "test_refunds.py"):
        assert path.read_text() in shown, f"docs/guide.md does not show {path.name} as it is"


def test_the_guide_shows_the_plan_format_the_prompts_carry() -> None:
    (shown,) = re.findall(r"^  ```text\n(.*?)^  ```$", GUIDE.read_text(), re.M | re.S)
    assert [line.removeprefix("  ") for line in shown.splitlines()] == PLAN_FORMAT.splitlines()


def test_the_guide_lists_the_public_api() -> None:
    text = GUIDE.read_text().split("## The public API", 1)[1]
    listed = set(re.findall(r"`(\w+)`", text))
    exported = {*durable_agents.__all__, *durable_agents.testing.__all__}
    assert exported - listed == set(), "the guide does not list these exports"
    assert listed - exported - {"durable_agents"} == set(), "the guide lists names not exported"


def test_the_example_uses_only_the_public_api() -> None:
    for path in EXAMPLE.glob("*.py"):
        assert "durable_agents._" not in path.read_text(), path
