"""The peer: the same agent loop as a LangGraph graph with a SQLite checkpointer.

What users would pick instead of a Temporal runtime. The graph does the same work per step
as durable-agents' bench agent: one planner call to the scripted model over HTTP through
the same `FloorWork` (the real ``openai`` client), then the planned tool through the same
registry function, then the next plan; the final answer once the plan is empty. Its state
is checkpointed to a SQLite file (``AsyncSqliteSaver``, WAL journal, SQLite's default
``synchronous=FULL``) with ``durability="sync"``: each step's checkpoint is written before
the next step starts, so a crashed process resumes from the last step (the closest
LangGraph gets to a durable run). It runs in the benchmark process.

LangGraph is a bench-only extra (``pip install -e '.[bench]'``, which ``make bench`` does);
without it the peer is skipped and reported as such.
"""

import importlib.util
import operator
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict

from bench.agent import Goal
from bench.floors import FloorWork
from durable_agents._activities.tool_api import ToolContext

MISSING = (
    "langgraph is not installed: the peer is skipped (pip install -e '.[bench]', or make bench)"
)


def available() -> bool:
    """Whether langgraph and its SQLite checkpointer can be imported."""
    return all(
        importlib.util.find_spec(m) is not None
        for m in ("langgraph", "langgraph.checkpoint.sqlite")
    )


def version() -> str | None:
    """The installed langgraph version, if any."""
    if not available():
        return None
    import importlib.metadata

    return importlib.metadata.version("langgraph")


class LoopState(TypedDict):
    """The graph's state: what the durable run keeps, reduced to the bench loop."""

    goal: str
    iteration: int
    tasks: list[dict[str, Any]]
    done: Annotated[int, operator.add]
    answer: str


class LangGraphPeer:
    """A compiled graph and its checkpointer; `run` one goal per thread."""

    def __init__(self, work: FloorWork, graph: Any) -> None:
        self.work = work
        self.graph = graph

    async def run(self, goal: Goal) -> None:
        """Run ``goal`` to its answer, checkpointing every step synchronously."""
        config = {
            "configurable": {"thread_id": f"lg-{goal.tag}"},
            "recursion_limit": 2 * goal.steps + 10,
        }
        state = LoopState(goal=goal.text(), iteration=0, tasks=[], done=0, answer="")
        await self.graph.ainvoke(state, config, durability="sync")


def _build(work: FloorWork) -> Any:
    from langgraph.graph import END, START, StateGraph

    async def plan(state: LoopState) -> dict[str, Any]:
        iteration = state["iteration"] + 1
        return {"iteration": iteration, "tasks": await work.plan(state["goal"], iteration)}

    async def tool(state: LoopState) -> dict[str, Any]:
        thread = f"lg-{Goal.parse(state['goal']).tag}"
        for task in state["tasks"]:
            ctx = ToolContext(
                idempotency_key=f"{thread}/{state['iteration']}-{task['id']}",
                workflow_id=thread,
                attempt=1,
                data_dir=work.data_dir,
            )
            await work.tool(task, ctx)
        return {"done": len(state["tasks"])}

    async def answer(state: LoopState) -> dict[str, Any]:
        return {"answer": await work.answer(state["goal"])}

    graph = StateGraph(LoopState)
    graph.add_node("plan", plan)
    graph.add_node("tool", tool)
    graph.add_node("answer", answer)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", lambda s: "tool" if s["tasks"] else "answer")
    graph.add_edge("tool", "plan")
    graph.add_edge("answer", END)
    return graph


@asynccontextmanager
async def langgraph_peer(work: FloorWork, db_file: Path) -> AsyncIterator[LangGraphPeer]:
    """The peer with its checkpoints in ``db_file`` (created, WAL journal)."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    db_file.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(db_file)) as saver:
        await saver.setup()
        yield LangGraphPeer(work, _build(work).compile(checkpointer=saver))
