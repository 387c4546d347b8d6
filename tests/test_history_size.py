"""History stays flat per step with large model replies: they go to the payload store.

A 200-step run whose every step gets a ~20 KB model reply, continued as new every 100
iterations, must cost about as many history bytes per step at step 200 as at step 20,
and no reply may be inlined in the history.
"""

import hashlib
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from bench.agent import Goal, bench_spec, install, respond_execute
from bench.history import long_run
from durable_agents._activities.payload_store import (
    DEFAULT_INLINE_LIMIT,
    PREVIEW_CHARS,
    LocalPayloadStore,
)
from durable_agents._domain import contract
from durable_agents._domain.errors import ErrorType
from durable_agents._domain.run import Outcome, RunStatus
from durable_agents._workers.config import WorkerSettings
from durable_agents.testing.scripted_model import RecordedRequest, Reply, ScriptedModelServer
from tests.support.agents import LocalAgents

REPLY_BYTES = 20 * 1024
STEPS = 200


@pytest.mark.e2e
@pytest.mark.timeout(300)
async def test_history_bytes_per_step_stay_flat(
    agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    install(model)
    goal = Goal(f"hist-{uuid.uuid4().hex[:8]}", STEPS, kind="llm", reply=REPLY_BYTES)
    result = await long_run(agents, goal, checkpoints=(20, STEPS), continue_as_new_every=100)

    assert result["long_run_completed"] is True
    per_step = result["history_bytes_per_step"]
    early, late = per_step["20"], per_step[str(STEPS)]
    assert late <= 1.5 * early, f"history grows per step: {early:.0f} B -> {late:.0f} B"
    # A reply inlined in the history would cost more than the reply itself, every step.
    assert late < REPLY_BYTES, per_step
    breakdown = result["history_breakdown"]
    assert breakdown["executions"] >= 2  # continued as new on the way
    results = breakdown["bytes_per_step_by_activity"][f"{contract.LLM_COMPLETE}:execute result"]
    assert results < DEFAULT_INLINE_LIMIT, breakdown
    assert model.count(purpose="execute") == STEPS
    # Search attributes are upserted once per iteration, not after every call.
    assert breakdown["events_per_step_by_event_type"]["upsert_workflow_search_attributes"] <= 1.1
    # A task's prompt refers to the observations its plan sent instead of repeating them
    # (inline, the window's previews alone would be observation_window * PREVIEW_CHARS).
    task_input = breakdown["bytes_per_step_by_activity"][f"{contract.LLM_COMPLETE}:execute input"]
    window = bench_spec(agents.catalog, STEPS, 100).limits.observation_window
    assert task_input < 0.75 * window * PREVIEW_CHARS, breakdown


@pytest.mark.unit
def test_payload_store_round_trip(tmp_path: Path) -> None:
    store = LocalPayloadStore(tmp_path / "payloads")
    data = ("x" * REPLY_BYTES).encode()

    ref = store.put(data, "p" * (PREVIEW_CHARS + 50))
    assert ref.key == hashlib.sha256(data).hexdigest()  # content-addressed
    assert ref.size_bytes == len(data)
    assert len(ref.preview) == PREVIEW_CHARS
    assert store.get(ref) == data

    again = store.put(data, "another preview")  # a retried activity writes it again
    assert again.key == ref.key
    assert store.get(again) == data
    assert [p.name for p in (tmp_path / "payloads").rglob("*") if p.is_file()] == [ref.key]

    other = store.put(b"other bytes", "")
    assert other.key != ref.key and store.get(other) == b"other bytes"
    with pytest.raises(KeyError):
        store.get(ref.model_copy(update={"key": "0" * 64}))


@pytest.mark.e2e
async def test_prompt_parts_the_store_lost_are_sent_again_inline(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    worker_settings: WorkerSettings,
) -> None:
    install(model)
    goal = Goal(f"lost-{uuid.uuid4().hex[:8]}", 5, kind="llm", reply=REPLY_BYTES)
    payloads = worker_settings.data_dir / "payloads"

    def execute(request: RecordedRequest) -> Reply:
        if model.count(purpose="execute") == 3:  # the store loses all it held
            for stored in [p for p in payloads.rglob("*") if p.is_file()]:
                stored.unlink()
        return respond_execute(request)

    model.set_responder("execute", execute)
    handle = await agents.start_run(
        bench_spec(agents.catalog, goal.steps), goal.text(), request_id=goal.tag
    )
    report = await agents.result(handle.workflow_id)

    assert report.status is RunStatus.COMPLETED
    assert [s.outcome for s in report.steps] == [Outcome.OK] * goal.steps
    history = await agents.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
    missed = [
        e.activity_task_failed_event_attributes.failure.application_failure_info.type
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    # The next prompt referred to what was lost: one attempt failed (not retried blindly),
    # the same prompt went again inline, and no model saw a broken prompt.
    assert missed == [ErrorType.PAYLOAD_MISSING]
    assert model.count(purpose="plan") == goal.steps + 1
