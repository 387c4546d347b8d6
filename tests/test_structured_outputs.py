"""Structured outputs: plan and evaluation calls send their JSON schema (strict) where the
route says the endpoint takes it, and ``json_object`` otherwise. The scripted model refuses
a schema that breaks strict mode's rules and a scripted reply that breaks the schema, as a
strict endpoint would, so these tests fail if either side is wrong."""

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from durable_agents._domain.run import Outcome, RunStatus
from durable_agents._domain.spec import AgentSpec, ModelRoute, ModelRouting
from durable_agents._domain.structured import plan_json_schema, strict_problems
from durable_agents._domain.tools import ToolSpec
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support import test_agent
from tests.support.agents import LocalAgents

pytestmark = pytest.mark.e2e


def _strict_task(task_id: str, tool: str, criteria: list[str], **args: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "kind": "tool",
        "tool": tool,
        "args": args,
        "prompt": None,
        "depends_on": [],
        "critical": False,
        "success_criteria": criteria,
        "confidence": 1.0,
    }


def _strict_plan(*tasks: dict[str, Any], done: bool = True) -> Reply:
    return Reply.json({"rationale": "test", "done": done, "tasks": list(tasks)})


def _spec(name: str, structured: bool) -> AgentSpec:
    route = ModelRoute(model="gpt-4o-mini", max_tokens=512, structured_outputs=structured)
    plain = ModelRoute(model="gpt-4o-mini", max_tokens=512)
    models = ModelRouting(plan=route, execute=plain, evaluate=route, summarize=plain)
    return test_agent.build_spec().model_copy(update={"name": name, "models": models})


async def test_plan_and_evaluation_send_their_schema_where_the_route_supports_it(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    # seconds=null: strict mode sends every optional argument; the plan activity drops it.
    task = _strict_task("go", "record_effect", ["the name is recorded"], name="x", seconds=None)
    model.enqueue(_strict_plan(task), purpose="plan")
    model.enqueue(Reply.json({"judgement": "ok", "reason": "recorded"}), purpose="evaluate")
    model.enqueue(Reply.text("done"), purpose="summarize")
    handle = await agents.start_run(_spec("strict-agent", True), "record x")
    report = await asyncio.wait_for(agents.result(handle.workflow_id), 60)
    assert report.status is RunStatus.COMPLETED, report.errors
    assert report.steps[0].outcome is Outcome.OK
    assert [e[1] for e in test_agent.executions(worker_settings.data_dir)] == ["x"]
    by_purpose = {r.purpose: r for r in model.requests}
    plan, evaluation = by_purpose["plan"], by_purpose["evaluate"]
    assert plan.response_format == "json_schema" and evaluation.response_format == "json_schema"
    assert plan.json_schema is not None and evaluation.json_schema is not None
    assert (plan.json_schema["name"], plan.json_schema["strict"]) == ("plan", True)
    tool_names = plan.json_schema["schema"]["properties"]["tasks"]["items"]["properties"]["tool"]
    assert "record_effect" in tool_names["anyOf"][0]["enum"]
    assert evaluation.json_schema["schema"]["properties"]["judgement"]["enum"] == [
        "ok",
        "soft",
        "hard",
        "critical",
    ]
    assert by_purpose["summarize"].response_format is None


async def test_without_the_flag_calls_ask_for_a_json_object_as_before(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(Reply.json({"rationale": "none", "done": True, "tasks": []}), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")
    handle = await agents.start_run(_spec("plain-agent", False), "nothing")
    report = await asyncio.wait_for(agents.result(handle.workflow_id), 60)
    assert report.status is RunStatus.COMPLETED
    (plan,) = [r for r in model.requests if r.purpose == "plan"]
    assert plan.response_format == "json_object" and plan.json_schema is None


class FreeForm(BaseModel):
    """Arguments strict mode cannot describe."""

    data: dict[str, Any]


def test_free_form_arguments_fall_back_to_json_object_and_test_tools_are_strict() -> None:
    schema = plan_json_schema(test_agent.TOOLS.specs())
    assert schema is not None and strict_problems(schema["schema"]) == []
    free = ToolSpec(name="free", description="d", args_schema=FreeForm.model_json_schema())
    assert plan_json_schema([free]) is None


def _post(model: ScriptedModelServer, response_format: dict[str, Any]) -> httpx.Response:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": response_format,
    }
    return httpx.post(f"{model.base_url}/chat/completions", json=body, timeout=10)


def test_the_scripted_model_refuses_what_a_strict_endpoint_would(
    model: ScriptedModelServer, tmp_path: Path
) -> None:
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    refused = _post(
        model,
        {"type": "json_schema", "json_schema": {"name": "p", "schema": loose, "strict": True}},
    )
    assert refused.status_code == 400
    assert "additionalProperties must be false" in refused.text
    tight = {**loose, "required": ["a"], "additionalProperties": False}
    model.enqueue(Reply.json({"a": 1}))
    broken = _post(
        model,
        {"type": "json_schema", "json_schema": {"name": "p", "schema": tight, "strict": True}},
    )
    assert broken.status_code == 400 and "breaks the requested schema" in broken.text
    model.enqueue(Reply.json({"a": "fine"}))
    ok = _post(
        model,
        {"type": "json_schema", "json_schema": {"name": "p", "schema": tight, "strict": True}},
    )
    assert ok.status_code == 200
    assert json.loads(ok.json()["choices"][0]["message"]["content"]) == {"a": "fine"}
