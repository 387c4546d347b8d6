"""Prompt parts travel once: later prompts refer to what the payload store holds.

The workflow side (`PromptMemory`) and the activity side (`AgentActivities.render`) must
agree exactly: a compacted prompt renders to the same text as the prompt as built, its
size is known without the text, and a sliding observation window costs one reference
plus the new steps.
"""

import json
from pathlib import Path

import pytest

from durable_agents._activities.agent_activities import AgentActivities
from durable_agents._activities.offline_model import OfflineProvider
from durable_agents._activities.payload_store import LocalPayloadStore
from durable_agents._activities.tool_api import ToolRegistry
from durable_agents._domain.llm import Message, PayloadRef
from durable_agents._domain.plan import TaskKind
from durable_agents._domain.prompts import parse_observations, planner_messages, task_messages
from durable_agents._domain.run import Outcome, StepRecord
from durable_agents._workflows.prompt_memory import PromptMemory
from tests.support import test_agent

pytestmark = pytest.mark.unit


def _step(n: int) -> StepRecord:
    preview = f"output of step {n} " * 12
    return StepRecord(
        iteration=n,
        task_id=f"t{n}",
        kind=TaskKind.LLM,
        label=f"llm: t{n}",
        outcome=Outcome.OK,
        output_preview=preview,
        output_ref=PayloadRef(key=f"{n:064x}", size_bytes=20_000),
    )


def _activities(tmp_path: Path) -> AgentActivities:
    return AgentActivities(
        provider=OfflineProvider({}),
        tools=ToolRegistry([]),
        store=LocalPayloadStore(tmp_path / "payloads"),
        data_dir=tmp_path,
    )


def _refs(messages: list[Message]) -> int:
    return sum(1 for m in messages for p in m.parts if p.ref)


def _inline_bytes(messages: list[Message]) -> int:
    return sum(len(p.text.encode()) for m in messages for p in m.parts)


def test_compacted_prompts_render_exactly_and_slide_by_reference(tmp_path: Path) -> None:
    spec = test_agent.build_spec()
    window = spec.limits.observation_window
    acts, memory = _activities(tmp_path), PromptMemory()
    steps = [_step(n) for n in range(1, window + 1)]
    for iteration in range(window + 1, window + 6):
        for built in (
            planner_messages(spec, "a goal", steps, "", [], iteration),
            task_messages(spec, "a goal", "do it", steps),
        ):
            sent = memory.compact(built)
            rendered = acts.render(sent)
            assert rendered == [{"role": m.role, "content": m.inline_text()} for m in built]
            assert [m.byte_size() for m in sent] == [len(r["content"].encode()) for r in rendered]
            assert len(parse_observations(rendered[-1]["content"])) == window
            memory.learn(built)
            if built[-1].parts[-1].text.startswith("\nTASK"):  # the task sees its plan's window
                assert _refs(sent) <= 2 and _inline_bytes(sent) < 200
        steps.append(_step(iteration))
    # The last plan: its head and the window minus its newest step are one reference,
    # the newest step inline.
    last = memory.compact(planner_messages(spec, "a goal", steps, "", [], 99))
    inline = [json.loads(p.text) for m in last for p in m.parts if p.text.startswith("{")]
    assert [o["task"] for o in inline] == [steps[-1].task_id]
    assert _refs(last) == 1


def test_a_reference_the_store_lost_is_a_clear_error(tmp_path: Path) -> None:
    spec = test_agent.build_spec()
    steps = [_step(n) for n in range(1, 4)]
    memory = PromptMemory()
    built = planner_messages(spec, "a goal", steps, "", [], 4)
    _activities(tmp_path).render(memory.compact(built))
    memory.learn(built)
    with pytest.raises(Exception, match="share one payload store"):
        _activities(tmp_path / "elsewhere").render(memory.compact(built))
