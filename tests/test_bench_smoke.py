"""The benchmark harness at smoke size: it runs end to end and reports every metric.

``python -m bench --smoke`` runs in a subprocess with its own dev server and model
process (the numbers themselves are not judged here, only their presence and types).
"""

import json
import subprocess
import sys
from datetime import datetime
from typing import Any

import pytest

from tests.support.processes import REPO

pytestmark = pytest.mark.e2e

METRICS = (
    "overhead_ms_per_step",
    "overhead_ratio_vs_floor_temporal",
    "throughput_steps_per_s",
    "cpu_s_per_step",
    "history_bytes_per_step",
    "history_events_per_step",
    "long_run_completed",
    "recovery_s",
    "memory_kib_per_waiting_run",
    "stream_token_latency_ms",
    "stream_history_bytes_per_1000_tokens",
    "stream_extra_step_ratio",
    "contenders",
    "server",
    "machine",
    "timestamp",
    "floors",
)


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _checkpoints(metric: dict[str, Any]) -> dict[int, Any]:
    return {int(k): v for k, v in metric.items() if k.isdigit()}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def test_smoke_reports_every_metric(smoke: tuple[dict[str, Any], str]) -> None:
    result, _ = smoke
    assert not [k for k in METRICS if k not in result]
    assert result["smoke"] is True
    datetime.fromisoformat(result["timestamp"])
    machine = result["machine"]
    assert isinstance(machine["cores"], int) and machine["cores"] >= 1
    assert isinstance(machine["python"], str) and isinstance(machine["temporalio"], str)

    for timings in (
        result["overhead_ms_per_step"],
        result["floors"]["floor_temporal"]["overhead_ms_per_step"],
        result["floors"]["floor_asyncio"]["overhead_ms_per_step"],
    ):
        assert _positive(timings["p50"]) and _positive(timings["p99"])
        assert timings["p99"] >= timings["p50"]
    assert _positive(result["overhead_ratio_vs_floor_temporal"])

    # Every contender's step times, CPU and durable writes, from the same interleaved runs;
    # the LangGraph peer is measured when the bench extra is installed, else skipped.
    contenders = result["contenders"]
    measured = ["durable", "durable_activity_tool", "floor_temporal", "floor_asyncio"]
    if "skipped" in contenders["langgraph"]:
        assert "langgraph is not installed" in contenders["langgraph"]["skipped"]
    else:
        measured.append("langgraph")
        assert _positive(result["overhead_ratio_vs_langgraph"])
    for name in measured:
        c = contenders[name]
        assert _positive(c["p50"]) and c["p99"] >= c["p50"], name
        assert _positive(c["cpu_s_per_step"]["total"]), name
        assert c["writes_per_step"] >= 0, name
    assert contenders["floor_asyncio"]["writes_per_step"] == 0
    assert _positive(contenders["durable"]["writes_per_step"])
    # The server configuration the run used, as passed and as read back from the server.
    server = result["server"]
    assert server["sqlite_pragmas"]["journal_mode"] == "wal"
    assert server["running"]["journal_mode"] == "wal"
    assert server["running"]["synchronous"] == server["sqlite_pragmas"]["synchronous"]

    assert _positive(result["throughput_steps_per_s"])
    assert _positive(result["floors"]["floor_temporal"]["throughput_steps_per_s"])
    cpu = result["cpu_s_per_step"]
    assert _positive(cpu["total"]) and cpu["total"] >= cpu["worker"] >= 0


def test_smoke_history_recovery_and_memory(smoke: tuple[dict[str, Any], str]) -> None:
    result, _ = smoke
    assert result["long_run_completed"] is True
    for key in ("history_bytes_per_step", "history_events_per_step"):
        metric = result[key]
        at = _checkpoints(metric)
        assert sorted(at) == result["sizes"]["checkpoints"]
        assert all(_positive(v) for v in at.values())
        assert isinstance(metric["note"], str) and metric["note"]
        assert set(metric["current_execution"]) == {str(k) for k in at}
    assert _positive(result["recovery_s"])
    assert _positive(result["recovery"]["worker_start_s"])
    memory = result["memory_kib_per_waiting_run"]
    assert isinstance(memory, float | int) and not isinstance(memory, bool)


def test_smoke_streaming(smoke: tuple[dict[str, Any], str]) -> None:
    result, stdout = smoke
    latency = result["stream_token_latency_ms"]
    assert _positive(latency["p50"]) and latency["p99"] >= latency["p50"] and latency["samples"]
    history = result["stream_history_bytes_per_1000_tokens"]
    # Streamed text is not in the history: no token batch, and bytes on a par with a run
    # that did not stream (the two histories differ only by ids and sizes).
    assert history["token_batch_updates"] == 0 and isinstance(history["total"], int)
    assert isinstance(result["stream_extra_step_ratio"], float)
    assert "stream token latency p50 ms" in stdout


def test_smoke_prints_a_table(smoke: tuple[dict[str, Any], str]) -> None:
    _, stdout = smoke
    assert "durable-agents" in stdout and "floor_temporal" in stdout
    assert "recovery" in stdout and "history B/step" in stdout
    assert "langgraph" in stdout and "server: sqlite file" in stdout
