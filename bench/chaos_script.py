"""The scripted model behind the chaos harness: one plan per run, tagged by its goal.

Every run's goal reads ``chaos run <tag>``; the responders find the tag in the messages, so
replies depend only on the request (a retried or replayed call gets the same answer). The
first plan of a run has real side effects: two parallel ``record_effect`` tasks, a slow one
(so kills land mid-activity), an irreversible ``launch_rocket`` after it, and two parallel
``llm`` tasks. Once the rocket shows in the observations, the planner says it is done.

Optionally (``plan_fault_rate``) the responders themselves misbehave: plans naming unknown
tools, truncated plans, text that is not JSON, truncated task outputs.
"""

from __future__ import annotations

import random
import re
import threading
from typing import Any

from durable_agents.testing.scripted_model import RecordedRequest, Reply, ScriptedModelServer
from tests.support.plans import plan_reply, tool_task

_TAG = re.compile(r"chaos run (r\d+)")
SLOW_EFFECT_S = 1.5


def goal_for(tag: str) -> str:
    """The goal of run ``tag`` (the responders recognise runs by it)."""
    return f"chaos run {tag}: record effects, launch the rocket, write two notes"


def effect_names(tag: str) -> list[str]:
    """The record_effect names of run ``tag``, in plan order."""
    return [f"{tag}-e1", f"{tag}-e2", f"{tag}-slow"]


def rocket_name(tag: str) -> str:
    """The launch_rocket name of run ``tag``."""
    return f"{tag}-rocket"


def _llm_task(task_id: str) -> dict[str, Any]:
    return {"id": task_id, "kind": "llm", "prompt": f"write note {task_id}", "depends_on": []}


def full_plan(tag: str) -> list[dict[str, Any]]:
    """The tasks of a run's first plan."""
    e1, e2, slow = effect_names(tag)
    return [
        tool_task("e1", "record_effect", name=e1),
        tool_task("e2", "record_effect", name=e2),
        tool_task("slow", "record_effect", depends_on=["e1"], name=slow, seconds=SLOW_EFFECT_S),
        tool_task("rocket", "launch_rocket", depends_on=["slow"], name=rocket_name(tag)),
        _llm_task("l1"),
        _llm_task("l2"),
    ]


def _text(record: RecordedRequest) -> str:
    parts: list[str] = []
    for message in record.body.get("messages") or []:
        if isinstance(message, dict):
            content = message.get("content")
            parts.append(content if isinstance(content, str) else str(content))
    return "\n".join(parts)


class ChaosScript:
    """Responders for the plan, execute, evaluate and summarize purposes."""

    def __init__(self, seed: int, plan_fault_rate: float = 0.0) -> None:
        self._rng = random.Random(seed)
        self._rate = plan_fault_rate
        self._lock = threading.Lock()
        self._answered: set[int] = set()
        self.scripted_faults: dict[str, int] = {}

    def install(self, model: ScriptedModelServer) -> None:
        """Make ``model`` answer with these responders."""
        model.set_responder("plan", self._plan)
        model.set_responder("execute", self._execute)
        model.set_responder("summarize", self._summarize)
        model.set_responder("*", self._other)

    def _fault(self) -> str | None:
        with self._lock:
            if self._rate <= 0 or self._rng.random() >= self._rate:
                return None
            kind = self._rng.choice(["unknown_tool", "truncated", "not_json"])
            self.scripted_faults[kind] = self.scripted_faults.get(kind, 0) + 1
            return kind

    def _mark(self, record: RecordedRequest) -> None:
        with self._lock:
            self._answered.add(id(record))

    def _tag(self, record: RecordedRequest) -> str:
        found = _TAG.search(_text(record))
        return found.group(1) if found else "r?"

    def _plan(self, record: RecordedRequest) -> Reply:
        self._mark(record)
        text, tag = _text(record), self._tag(record)
        if '"task": "rocket"' in text:
            return plan_reply(done=True, rationale=f"{tag}: all done")
        fault = self._fault()
        tasks = full_plan(tag)
        if fault == "unknown_tool":
            return plan_reply(tool_task("w", "warp_drive", name=tag), *tasks[:1])
        reply = plan_reply(*tasks, done=True, rationale=f"{tag}: effects, rocket, notes")
        if fault == "truncated":
            return Reply.truncated(reply.content or "")
        if fault == "not_json":
            return Reply.text("Sure! Here is my plan: do the things.")
        return reply

    def _execute(self, record: RecordedRequest) -> Reply:
        self._mark(record)
        note = f"{self._tag(record)}: a short note"
        if self._fault() == "truncated":
            return Reply.truncated(note)
        return Reply.text(note, delay_s=0.2)

    def _summarize(self, record: RecordedRequest) -> Reply:
        self._mark(record)
        return Reply.text(f"{self._tag(record)}: effects recorded, rocket launched")

    def _other(self, record: RecordedRequest) -> Reply:
        self._mark(record)
        return Reply.json({"ok": True, "score": 1.0, "reason": "fine"})

    def injected_faults(self, model: ScriptedModelServer) -> int:
        """Completions the server faulted on its own (not answered by a responder)."""
        with self._lock:
            answered = set(self._answered)
        server = sum(
            1
            for r in model.requests
            if r.path == "/v1/chat/completions" and r.status and id(r) not in answered
        )
        return server + sum(self.scripted_faults.values())
