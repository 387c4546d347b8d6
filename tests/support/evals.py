"""What the eval tests share: a dataset of db-tuner and file-editor cases, the data they
work on, and a model that is worse by construction (it plans nothing)."""

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from temporalio.client import Client

from durable_agents._workers.build import build_worker
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from examples.db_tuner.data import default_db_path, generate
from examples.file_editor.sandbox import workspace_root

FILES = {
    "a.txt": "alpha\n",
    "b.txt": "beta\n",
    "docs/notes.md": "notes\n",
    "server.log": "started\n",
    "readme.rst": "read me\n",
}


def prepare_data(data_dir: Path) -> None:
    """A small shop database and a workspace of a few files, in a worker's data dir."""
    generate(default_db_path(data_dir), scale=0.05)
    root = workspace_root(data_dir)
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def lazy_model(model: ScriptedModelServer) -> ScriptedModelServer:
    """A model that never plans any work and says it is done: worse by construction."""
    model.set_responder(
        "plan", lambda _: Reply.json({"rationale": "nothing to do", "done": True, "tasks": []})
    )
    model.set_responder("*", lambda _: Reply.text("Nothing needed doing."))
    return model


def _db_case(case_id: str, goal: str) -> dict[str, Any]:
    return {
        "id": case_id,
        "agent": "db-tuner",
        "goal": goal,
        "approvals": "reject",
        "expect": {
            "status": "completed",
            "answer": ["non_empty", "contains:q1"],
            "tools_called": ["explain_query", "time_query"],
            "tools_not_called": ["drop_index"],
            "state": ["slow_queries_indexed"],
        },
    }


def _header_case(case_id: str, goal: str, state: str, mentions: str) -> dict[str, Any]:
    return {
        "id": case_id,
        "agent": "file-editor",
        "goal": goal,
        "expect": {
            "answer": ["non_empty", f"contains:{mentions}"],
            "tools_called": ["list_files", "read_file"],
            "tools_not_called": ["delete_file", "force_undo_write"],
            "state": [state],
        },
    }


def _list_case(case_id: str, goal: str, mentions: str) -> dict[str, Any]:
    return {
        "id": case_id,
        "agent": "file-editor",
        "goal": goal,
        "expect": {
            "answer": [f"contains:{mentions}", "max_len:4000"],
            "tools_called": ["list_files"],
            "tools_not_called": ["write_file", "delete_file"],
            "state": ["file_exists:a.txt"],
        },
    }


CASES: list[dict[str, Any]] = [
    _db_case("db-fast", "Make the slow queries of the shop database faster."),
    _db_case("db-speed", "Speed up the queries in the slow query log."),
    _db_case("db-index", "Index what the slow queries need, measuring before and after."),
    _db_case("db-tune", "Tune the shop database for its slow queries."),
    _header_case(
        "fe-txt",
        'Add the header "# eval" to every .txt file.',
        "header_everywhere:# eval",
        "# eval",
    ),
    _header_case(
        "fe-txt-again",
        'Put the header "# eval" on every .txt file.',
        "header_everywhere:# eval",
        "# eval",
    ),
    _header_case(
        "fe-md",
        'Add the header "<!-- reviewed -->" to every .md file.',
        "header_everywhere:.md=<!-- reviewed -->",
        "reviewed",
    ),
    _header_case(
        "fe-log",
        'Add the header "# log" to every .log file.',
        "header_everywhere:.log=# log",
        "server.log",
    ),
    _list_case("fe-list", "List what the workspace holds.", "a.txt"),
    _list_case("fe-which", "Tell me which files exist.", "readme.rst"),
]


def dataset(variants: list[dict[str, Any]], concurrency: int = 4) -> dict[str, Any]:
    """The test dataset under ``variants``."""
    return {"name": "examples", "concurrency": concurrency, "variants": variants, "cases": CASES}


def write_dataset(path: Path, variants: list[dict[str, Any]]) -> Path:
    """The dataset as a JSON file."""
    path.write_text(json.dumps(dataset(variants), indent=2))
    return path


@asynccontextmanager
async def variant_worker(
    client: Client, base: WorkerSettings, root: Path, model: ScriptedModelServer | None
) -> AsyncIterator[dict[str, str]]:
    """A worker version of its own (queue, data dir, model); yields its dataset variant."""
    queue = f"eval-{uuid.uuid4().hex[:10]}"
    data_dir = root / queue
    prepare_data(data_dir)
    settings = replace(
        base,
        temporal=replace(base.temporal, task_queue=queue),
        data_dir=data_dir,
        openai_api_key="scripted" if model else None,
        openai_base_url=model.base_url if model else None,
    )
    async with build_worker(client, settings):
        yield {"task_queue": queue, "data_dir": str(data_dir)}
