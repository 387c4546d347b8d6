"""The bare Temporal floor: the same plan-then-tool loop with nothing else.

No budgets, validation, search attributes or details: ask the model for a plan, run its
tool tasks, repeat until the plan is empty, then ask for the answer. The only approval is
a bare ``approve`` signal awaited before ``launch_rocket`` (for the memory floor). The
activities (`bench.floors`) do the same work as durable-agents' ones. This module
imports nothing but Temporal, so the sandbox loads it cheaply.
"""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_attempts=3),
}


@workflow.defn(name="BenchFloorLoop")
class FloorLoop:
    """One run of the floor loop; returns how many tool tasks ran."""

    def __init__(self) -> None:
        self._approved = False

    @workflow.signal
    def approve(self) -> None:
        """Let the pending ``launch_rocket`` run."""
        self._approved = True

    @workflow.run
    async def run(self, goal: str) -> int:
        """Plan, execute, repeat; then answer."""
        done = 0
        iteration = 0
        while True:
            iteration += 1
            tasks: list[dict[str, Any]] = await workflow.execute_activity(
                "floor_plan", args=[goal, iteration], result_type=list[dict[str, Any]], **_OPTIONS
            )
            if not tasks:
                break
            for task in tasks:
                if task.get("tool") == "launch_rocket":
                    await workflow.wait_condition(lambda: self._approved)
                if task.get("local"):  # a tool declared local, as durable-agents runs it
                    await workflow.execute_local_activity(
                        "floor_tool", task, result_type=dict, **_OPTIONS
                    )
                else:
                    await workflow.execute_activity(
                        "floor_tool", task, result_type=dict, **_OPTIONS
                    )
                done += 1
        await workflow.execute_activity("floor_answer", goal, result_type=str, **_OPTIONS)
        return done
