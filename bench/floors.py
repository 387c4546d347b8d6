"""The floors: the same model and tool work without durable-agents around it.

`FloorWork` calls the scripted model through the project's `OpenAIProvider` (the real
``openai`` client) and runs the test agent's tools through their registry, exactly the
functions durable-agents' activities use. ``floor_temporal`` wraps them in bare activities
driven by `bench.floor_workflow.FloorLoop`; ``floor_asyncio`` calls them in a plain loop.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench.agent import Goal
from bench.floor_workflow import FloorLoop
from durable_agents._activities.openai_provider import OpenAIProvider
from durable_agents._activities.tool_api import ToolContext
from durable_agents._domain.llm import LlmCall, Message
from durable_agents._domain.prompts import planner_messages
from durable_agents._domain.spec import AgentSpec
from tests.support.test_agent import TOOLS


def _rendered(messages: list[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.inline_text()} for m in messages]


@dataclass
class FloorWork:
    """One model call per plan, one tool call per task: nothing more."""

    provider: OpenAIProvider
    spec: AgentSpec
    data_dir: Path

    def _call(self, purpose: str, messages: list[Message], json_mode: bool) -> LlmCall:
        route = self.spec.models.plan
        return LlmCall(
            purpose=purpose,
            agent=self.spec.name,
            model=route.model,
            messages=messages,
            max_tokens=route.max_tokens,
            json_mode=json_mode,
        )

    async def plan(self, goal: str, iteration: int) -> list[dict[str, Any]]:
        """Ask the planner for iteration ``iteration``; return its tasks."""
        messages = planner_messages(self.spec, goal, [], "", [], iteration)
        reply = await self.provider.complete(
            self._call("plan", messages, json_mode=True), _rendered(messages)
        )
        tasks: list[dict[str, Any]] = json.loads(reply.text)["tasks"]
        for task in tasks:  # the floor loop runs a tool declared local as a local activity
            task["local"] = task.get("kind") == "tool" and TOOLS.get(task["tool"]).spec.local
        return tasks

    async def tool(self, task: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        """Run one tool task."""
        tool = TOOLS.get(task["tool"])
        output: dict[str, Any] = await tool.fn(tool.args_model.model_validate(task["args"]), ctx)
        return output

    async def answer(self, goal: str) -> str:
        """Ask for the final answer."""
        messages = [
            Message(role="system", text=self.spec.system_prompt),
            Message(role="user", text=f"GOAL: {goal}\n\nWrite the final answer."),
        ]
        reply = await self.provider.complete(
            self._call("summarize", messages, json_mode=False), _rendered(messages)
        )
        return reply.text


class FloorActivities:
    """`FloorWork` as bare Temporal activities."""

    def __init__(self, work: FloorWork) -> None:
        self.work = work

    @activity.defn(name="floor_plan")
    async def floor_plan(self, goal: str, iteration: int) -> list[dict[str, Any]]:
        """Plan one iteration."""
        return await self.work.plan(goal, iteration)

    @activity.defn(name="floor_tool")
    async def floor_tool(self, task: dict[str, Any]) -> dict[str, Any]:
        """Run one tool task, keyed like durable-agents' ``invoke_tool``."""
        info = activity.info()
        ctx = ToolContext(
            idempotency_key=f"{info.workflow_id}/{info.activity_id}",
            workflow_id=info.workflow_id or "floor",
            attempt=info.attempt,
            data_dir=self.work.data_dir,
            heartbeat=activity.heartbeat,
        )
        return await self.work.tool(task, ctx)

    @activity.defn(name="floor_answer")
    async def floor_answer(self, goal: str) -> str:
        """The final answer."""
        return await self.work.answer(goal)


def floor_work(base_url: str, spec: AgentSpec, data_dir: Path) -> FloorWork:
    """A `FloorWork` talking to the scripted model at ``base_url``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return FloorWork(OpenAIProvider.from_settings("bench-key", base_url), spec, data_dir)


@asynccontextmanager
async def floor_worker(
    client: Client, task_queue: str, work: FloorWork, **options: Any
) -> AsyncIterator[Worker]:
    """A plain worker for the floor loop, with the same slot settings as ours."""
    acts = FloorActivities(work)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[FloorLoop],
        activities=[acts.floor_plan, acts.floor_tool, acts.floor_answer],
        graceful_shutdown_timeout=timedelta(seconds=10),
        **options,
    )
    async with worker:
        yield worker


async def start_floor(
    client: Client, task_queue: str, goals: Sequence[Goal]
) -> list[WorkflowHandle[Any, Any]]:
    """Start one floor workflow per goal."""
    return await asyncio.gather(
        *(
            client.start_workflow(
                FloorLoop.run,
                g.text(),
                id=f"floor-{g.tag}",
                task_queue=task_queue,
                request_eager_start=True,  # as durable-agents' client asks
            )
            for g in goals
        )
    )


async def run_floor_temporal(client: Client, task_queue: str, goals: Sequence[Goal]) -> None:
    """Start one floor workflow per goal and wait for all of them."""
    handles = await start_floor(client, task_queue, goals)
    await asyncio.gather(*(h.result() for h in handles))


async def run_floor_asyncio(work: FloorWork, goal: Goal) -> None:
    """The floor loop with no durability at all."""
    iteration = 0
    while True:
        iteration += 1
        tasks = await work.plan(goal.text(), iteration)
        if not tasks:
            break
        for task in tasks:
            ctx = ToolContext(
                idempotency_key=f"asyncio-{goal.tag}/{iteration}-{task['id']}",
                workflow_id=f"asyncio-{goal.tag}",
                attempt=1,
                data_dir=work.data_dir,
            )
            await work.tool(task, ctx)
    await work.answer(goal.text())
