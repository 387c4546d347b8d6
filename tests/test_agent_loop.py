"""The agent loop: task graphs, parallelism, evaluation, replanning and every error path."""

import json
import time
from collections import Counter

import pytest

from durable_agents._domain.permissions import Effect, PermissionMatrix, PermissionRule
from durable_agents._domain.run import Outcome, RunStatus
from durable_agents._domain.spec import ModelRoute, ModelRouting
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing import report_within
from durable_agents.testing.scripted_model import RecordedRequest, Reply, ScriptedModelServer
from tests.support import test_agent
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task

pytestmark = pytest.mark.e2e


def _prompt(request: RecordedRequest) -> str:
    return "\n".join(m["content"] for m in request.body["messages"])


def _plans(model: ScriptedModelServer) -> list[RecordedRequest]:
    return [r for r in model.requests if r.purpose == "plan" and r.status == 200]


async def _run(agents: LocalAgents, goal: str = "test", **kw):
    handle = await agents.start_run("test-agent", goal, **kw)
    return await report_within(agents, handle.workflow_id)


async def test_independent_tasks_overlap_and_dependencies_hold(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    model.enqueue(
        plan_reply(
            tool_task("a", "record_effect", name="a", seconds=1.0),
            tool_task("b", "record_effect", name="b", seconds=1.0),
            tool_task("c", "record_effect", name="c", depends_on=["a", "b"]),
        ),
        purpose="plan",
    )
    model.enqueue(Reply.text("ok"), purpose="summarize")
    report = await _run(agents)
    assert report.status is RunStatus.COMPLETED
    t = test_agent.timings(worker_settings.data_dir)
    assert t["a"][0] < t["b"][1] and t["b"][0] < t["a"][1], "a and b did not overlap"
    assert t["c"][0] >= max(t["a"][1], t["b"][1]), "c started before its dependencies ended"
    assert [s.task_id for s in report.steps] == ["a", "b", "c"]  # recorded in plan order


async def test_invalid_plan_is_replanned_and_never_executed(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    model.enqueue(
        plan_reply(
            tool_task("x", "drop_tabel", name="orders"),
            tool_task("y", "record_effect", name="bad", depends_on=["x", "zz"]),
        ),
        plan_reply(tool_task("y", "record_effect", name="good")),
        purpose="plan",
    )
    model.enqueue(Reply.text("ok"), purpose="summarize")
    report = await _run(agents)
    assert report.status is RunStatus.COMPLETED
    assert test_agent.effects(worker_settings.data_dir) == ["good"]
    second = _prompt(_plans(model)[1])
    assert "unknown tool 'drop_tabel'; known tools:" in second
    assert "depends on unknown task 'zz'" in second


async def test_reply_breaking_the_schema_goes_back_to_the_planner(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(
        Reply.text("Sure! Here is my plan: first I will..."),
        Reply.json({"tasks": [{"kind": "tool"}]}),
        plan_reply(tool_task("t", "record_effect", name="z")),
        purpose="plan",
    )
    model.enqueue(Reply.text("ok"), purpose="summarize")
    report = await _run(agents)
    assert report.status is RunStatus.COMPLETED
    prompts = [_prompt(r) for r in _plans(model)]
    assert "the reply is not JSON" in prompts[1]
    assert "tasks.0.id: Field required" in prompts[2]
    assert model.count(purpose="plan") == 3  # one call each: no blind retry


async def test_429_waits_for_retry_after_then_succeeds(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(
        Reply.fault(429, retry_after=1.5),
        plan_reply(tool_task("t", "record_effect", name="r")),
        purpose="plan",
    )
    model.enqueue(Reply.text("ok"), purpose="summarize")
    report = await _run(agents)
    assert report.status is RunStatus.COMPLETED
    first, second = [r for r in model.requests if r.purpose == "plan"]
    assert first.status == 429 and second.status == 200
    # The policy's own backoff would retry after 0.2 s; Retry-After says 1.5 s.
    assert second.received_at - first.received_at >= 1.4


async def test_5xx_and_malformed_bodies_are_retried(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(
        Reply.fault(503),
        Reply.malformed(),
        plan_reply(tool_task("t", "record_effect", name="r")),
        purpose="plan",
    )
    model.enqueue(Reply.fault(500), Reply.text("ok"), purpose="summarize")
    report = await _run(agents)
    assert report.status is RunStatus.COMPLETED
    assert model.count(purpose="plan") == 3 and model.count(purpose="summarize") == 2


async def test_permanent_error_fails_fast_then_uses_the_fallback_model(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    spec = agents.catalog.plugin("test-agent").build_spec()
    route = ModelRoute(model="gpt-4o-mini", fallbacks=["gpt-4.1-nano"], max_tokens=256)
    spec = spec.model_copy(
        update={"models": ModelRouting(plan=route, execute=route, evaluate=route, summarize=route)}
    )
    model.enqueue(
        Reply.fault(401, message="bad key for this model"),
        plan_reply(tool_task("t", "record_effect", name="f")),
        purpose="plan",
    )
    model.enqueue(Reply.text("ok"), purpose="summarize")
    handle = await agents.start_run(spec, "fallback")
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    plans = [r for r in model.requests if r.purpose == "plan"]
    assert [(r.model, r.status) for r in plans] == [("gpt-4o-mini", 401), ("gpt-4.1-nano", 200)]


async def test_permanent_error_without_fallback_fails_the_run_after_one_attempt(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(Reply.fault(404, message="model not found"), purpose="plan")
    report = await _run(agents)
    assert report.status is RunStatus.FAILED
    assert "404" in report.errors[-1]
    assert model.count(purpose="plan") == 1


async def test_tool_input_error_is_replanned_with_the_failure_in_the_prompt(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    model.enqueue(
        plan_reply(tool_task("v1", "check_value", value=3)),
        plan_reply(tool_task("v2", "check_value", value=4)),
        purpose="plan",
    )
    model.enqueue(Reply.text("4 is even"), purpose="summarize")
    report = await _run(agents)
    assert report.status is RunStatus.COMPLETED
    assert [(s.task_id, s.outcome, s.attempts) for s in report.steps] == [
        ("v1", Outcome.HARD, 1),
        ("v2", Outcome.OK, 1),
    ]
    assert "value must be even, got 3" in _prompt(_plans(model)[1])
    started = [e[1] for e in test_agent.executions(worker_settings.data_dir, "started")]
    assert started.count("3") == 1  # a semantic error is never retried blindly
    assert report.replans == 1


async def test_non_critical_task_failing_after_retries_is_skipped(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    model.enqueue(
        plan_reply(
            tool_task("f", "flaky", name="down", failures=99),
            tool_task("g", "record_effect", name="still"),
        ),
        purpose="plan",
    )
    model.enqueue(Reply.text("partial"), purpose="summarize")
    report = await _run(agents)
    assert report.status is RunStatus.COMPLETED
    flaky = report.steps[0]
    assert flaky.outcome is Outcome.SKIPPED and flaky.attempts == 3
    assert "service busy" in (flaky.why or "")
    started = Counter(e[1] for e in test_agent.executions(worker_settings.data_dir, "started"))
    assert started["down"] == 3  # max_attempts of the tool's RetrySpec


async def test_critical_task_failing_is_replanned_then_escalated(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.set_responder(
        "plan",
        lambda r: plan_reply(
            tool_task(
                f"c{len(model.requests)}",
                "flaky",
                critical=True,
                name=f"core{len(model.requests)}",
                failures=99,
            )
        ),
    )
    report = await _run(agents)
    assert report.status is RunStatus.ESCALATED
    assert report.replans == 4  # max_replans=3, then escalate
    assert "still failing after 3 replans" in report.errors[-1]
    assert all(s.outcome is Outcome.HARD for s in report.steps)
    assert "Run ended with status escalated" in report.answer


async def test_oscillation_stops_after_k_repeats(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    model.set_responder(
        "plan", lambda r: plan_reply(tool_task(f"v{len(model.requests)}", "check_value", value=7))
    )
    report = await _run(agents)
    assert report.status is RunStatus.ESCALATED
    started = [e[1] for e in test_agent.executions(worker_settings.data_dir, "started")]
    assert started.count("7") == 3  # max_repeats; the 4th proposal is refused unexecuted
    assert any("not attempted again" in (s.why or "") for s in report.steps)


async def test_a_b_a_b_pattern_is_refused(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    values = iter([1, 3, 1, 3, 1, 3, 1, 3])
    model.set_responder(
        "plan",
        lambda r: plan_reply(
            tool_task(f"v{len(model.requests)}", "check_value", value=next(values))
        ),
    )
    report = await _run(agents)
    assert report.status is RunStatus.ESCALATED
    assert "A-B-A-B" in " ".join(s.why or "" for s in report.steps)
    started = [e[1] for e in test_agent.executions(worker_settings.data_dir, "started")]
    assert started == ["1", "3", "1"]


async def test_evaluation_model_judges_criteria_code_cannot_check(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    task = tool_task("e1", "record_effect", name="draft")
    task["success_criteria"] = ["non_empty", "the effect name reads like a final version"]
    model.enqueue(
        plan_reply(task), plan_reply(tool_task("e2", "record_effect", name="final")), purpose="plan"
    )
    model.enqueue(
        Reply.json({"judgement": "hard", "reason": "'draft' is not final"}), purpose="evaluate"
    )
    model.enqueue(Reply.text("final recorded"), purpose="summarize")
    report = await _run(agents)
    assert report.status is RunStatus.COMPLETED
    assert report.steps[0].outcome is Outcome.HARD and report.steps[0].why == "'draft' is not final"
    evaluate = next(r for r in model.requests if r.purpose == "evaluate")
    assert "reads like a final version" in _prompt(evaluate)
    assert "non_empty" not in _prompt(evaluate)  # checked by code, not sent to the model


async def test_subagent_usage_rolls_up_into_the_parent(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    sub = {"id": "s1", "kind": "subagent", "prompt": "record the child effect", "depends_on": []}
    plans = iter([plan_reply(sub), plan_reply(tool_task("k", "record_effect", name="child"))])
    model.set_responder("plan", lambda r: next(plans))
    model.enqueue(
        Reply.text("child done", usage=(100, 10)),
        Reply.text("parent done", usage=(100, 10)),
        purpose="summarize",
    )
    report = await _run(agents)
    assert report.status is RunStatus.COMPLETED, report.errors
    child = report.steps[0]
    assert child.outcome is Outcome.OK and child.output["answer"] == "child done"
    assert child.usage.llm_calls == 2 and child.usage.tool_calls == 1
    assert report.usage.llm_calls == 4  # parent plan + answer, child plan + answer
    assert report.usage.tool_calls == 1
    desc = await agents.temporal.get_workflow_handle(report.workflow_id).describe()
    children = [
        wf
        async for wf in agents.temporal.list_workflows(f"ParentWorkflowId = '{report.workflow_id}'")
    ]
    assert desc.status is not None and len(children) == 1


def test_plan_json_format_is_parseable() -> None:
    assert json.loads(json.dumps({"tasks": []}))["tasks"] == []
    assert time.monotonic() > 0


async def test_identical_cacheable_call_is_a_hit_with_zero_tokens(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    spec = agents.catalog.plugin("test-agent").build_spec()
    route = ModelRoute(model="gpt-4o-mini", max_tokens=256, cache=True)
    spec = spec.model_copy(
        update={"models": ModelRouting(plan=route, execute=route, evaluate=route, summarize=route)}
    )
    model.enqueue(plan_reply(tool_task("t", "record_effect", name="c")), purpose="plan")
    model.enqueue(Reply.text("first answer"), purpose="summarize")
    first = await agents.start_run(spec, "same goal")
    report1 = await agents.result(first.workflow_id)
    second = await agents.start_run(spec, "same goal")
    report2 = await agents.result(second.workflow_id)
    assert report1.status is report2.status is RunStatus.COMPLETED
    # Run 2 asked the same questions (same goal, same observations): both were hits.
    assert model.count(purpose="plan") == 1 and model.count(purpose="summarize") == 1
    assert report1.usage.cache_hits == 0 and report1.usage.input_tokens > 0
    assert report2.usage.cache_hits == 2 and report2.usage.llm_calls == 2
    assert report2.usage.tokens == 0 and report2.usage.cost_micros == 0
    assert report2.answer == "first answer"


async def test_circuit_breaker_opens_fails_fast_and_closes_after_a_probe(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    model.enqueue(
        plan_reply(
            tool_task("f1", "fragile", name="f1", fail=True),
            tool_task("f2", "fragile", name="f2", fail=True, depends_on=["f1"]),
            tool_task("f3", "fragile", name="f3", depends_on=["f2"]),
            tool_task("wait", "record_effect", name="wait", seconds=2.0, depends_on=["f3"]),
            tool_task("f4", "fragile", name="f4", depends_on=["wait"]),
            tool_task("f5", "fragile", name="f5", depends_on=["f4"]),
        ),
        purpose="plan",
    )
    model.enqueue(Reply.text("ok"), purpose="summarize")
    report = await _run(agents)
    outcomes = {s.task_id: s for s in report.steps}
    assert outcomes["f1"].outcome is outcomes["f2"].outcome is Outcome.SKIPPED
    assert outcomes["f3"].outcome is Outcome.SKIPPED  # refused while open: fail fast
    assert "CircuitOpen" in (outcomes["f3"].why or "")
    assert outcomes["f4"].outcome is Outcome.OK  # the half-open probe succeeded
    assert outcomes["f5"].outcome is Outcome.OK  # closed again
    started = [
        e[1]
        for e in test_agent.executions(worker_settings.data_dir, "started")
        if e[0] == "fragile"
    ]
    assert started == ["f1", "f2", "f4", "f5"]  # f3 never reached the tool


async def test_permission_denied_plan_goes_back_to_the_planner(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    spec = agents.catalog.plugin("test-agent").build_spec()
    spec = spec.model_copy(
        update={
            "permissions": PermissionMatrix(
                rules=[
                    PermissionRule(effect=Effect.ALLOW),
                    PermissionRule(tool="record_effect", resource="*", effect=Effect.DENY),
                ]
            )
        }
    )
    model.enqueue(
        plan_reply(tool_task("w", "record_effect", name="forbidden")),
        plan_reply(tool_task("c", "check_value", value=2)),
        purpose="plan",
    )
    model.enqueue(Reply.text("checked instead"), purpose="summarize")
    handle = await agents.start_run(spec, "try")
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    assert test_agent.effects(worker_settings.data_dir) == []  # never executed
    assert "permission denied for role 'agent'" in _prompt(_plans(model)[1])


async def test_model_timeout_is_retried(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(
        Reply.hang(8), plan_reply(tool_task("t", "record_effect", name="late")), purpose="plan"
    )
    model.enqueue(Reply.text("ok"), purpose="summarize")
    report = await _run(agents)
    assert report.status is RunStatus.COMPLETED
    assert model.count(purpose="plan") == 2  # the hung attempt timed out after 5 s


async def test_critical_evaluation_halts_and_escalates_with_context(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    risky = tool_task("r", "record_effect", name="risky")
    risky["success_criteria"] = ["nothing irreversible happened"]
    model.enqueue(
        plan_reply(risky, tool_task("n", "record_effect", name="next", depends_on=["r"])),
        purpose="plan",
    )
    model.enqueue(
        Reply.json({"judgement": "critical", "reason": "it deleted data"}), purpose="evaluate"
    )
    report = await _run(agents)
    assert report.status is RunStatus.ESCALATED
    assert report.steps[0].outcome is Outcome.CRITICAL
    assert "critical failure in record_effect(risky): it deleted data" in report.errors[-1]
    assert test_agent.effects(worker_settings.data_dir) == ["risky"]  # "next" never ran
    assert model.count(purpose="plan") == 1  # halted: no replan
