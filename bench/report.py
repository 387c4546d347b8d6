"""The machine the numbers came from, the targets they are judged by, and the table."""

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

HISTORY_BYTES_LIMIT = 4096
FLATNESS_LIMIT = 1.5


def machine() -> dict[str, Any]:
    """Cores, CPU model, Python and temporalio versions, OS."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "temporalio": importlib.metadata.version("temporalio"),
        "openai": importlib.metadata.version("openai"),
        "platform": platform.platform(),
        # The machine may be shared: a high load average makes every number slower.
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def _checkpoints(metric: dict[str, Any] | None) -> dict[int, float]:
    if not metric:
        return {}
    return {int(k): float(v) for k, v in metric.items() if k.isdigit()}


def targets(result: dict[str, Any]) -> dict[str, bool | None]:
    """Each target: True met, False missed, None not measured."""
    ratio = result.get("overhead_ratio_vs_floor_temporal")
    peer_ratio = result.get("overhead_ratio_vs_langgraph")
    per_step = _checkpoints(result.get("history_bytes_per_step"))
    values = list(per_step.values())
    flat = max(values) / min(values) <= FLATNESS_LIMIT if values and min(values) > 0 else None
    recovery = result.get("recovery_s")
    mid_tool = result.get("mid_tool_recovery_s")
    throughput = result.get("throughput_steps_per_s")
    cpu = _get(result, "cpu_s_per_step", "total")
    memory = result.get("memory_kib_per_waiting_run")
    floor_memory = _get(result, "floors", "floor_temporal", "memory_kib_per_waiting_run")
    stream_p50 = _get(result, "stream_token_latency_ms", "p50")
    stream_bytes = _get(result, "stream_history_bytes_per_1000_tokens", "beyond_text")
    stream_extra = result.get("stream_extra_step_ratio")
    return {
        "stream_token_p50_le_250ms": None if stream_p50 is None else stream_p50 <= 250,
        "stream_history_le_4kb_per_1000_tokens_beyond_text": (
            None if stream_bytes is None else stream_bytes <= 4096
        ),
        "stream_extra_step_le_10pct": None if stream_extra is None else stream_extra <= 0.10,
        "overhead_ratio_le_1.1": None if ratio is None else ratio <= 1.1,
        "overhead_ratio_vs_langgraph_le_3": None if peer_ratio is None else peer_ratio <= 3,
        "throughput_ge_40_steps_per_s": None if throughput is None else throughput >= 40,
        "cpu_per_step_le_40ms": None if cpu is None else cpu <= 0.040,
        "history_bytes_per_step_flat": flat,
        "history_bytes_per_step_le_4kb": (
            all(v <= HISTORY_BYTES_LIMIT for v in values) if values else None
        ),
        "long_run_completed": result.get("long_run_completed"),
        "recovery_le_2s": None if recovery is None else recovery <= 2.0,
        "mid_tool_recovery_le_15s": None if mid_tool is None else mid_tool <= 15.0,
        "memory_le_2x_floor": (
            None if memory is None or not floor_memory else memory <= 2 * floor_memory
        ),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"
    return str(value)


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


COLUMNS = ("durable", "floor_temporal", "langgraph", "floor_asyncio")


def table(result: dict[str, Any]) -> str:
    """The numbers of ``result`` as a fixed-width table."""
    floors = result.get("floors") or {}
    ft = floors.get("floor_temporal") or {}
    contenders = result.get("contenders") or {}

    def each(*path: str) -> tuple[Any, ...]:
        return tuple(_get(contenders, name, *path) for name in COLUMNS)

    rows: list[tuple[Any, ...]] = [
        ("metric", "durable-agents", "floor_temporal", "langgraph", "floor_asyncio"),
        *[(f"step time {p} (ms, 0 ms model)", *each(p)) for p in ("p50", "p99")],
        ("CPU s/step, one run at a time", *each("cpu_s_per_step", "total")),
        ("durable writes/step, one run at a time", *each("writes_per_step")),
        (
            "durable-agents, tool as an activity: p50 ms",
            _get(contenders, "durable_activity_tool", "p50"),
            None,
            None,
            None,
        ),
        (
            "overhead ratio (durable-agents p50 / this p50)",
            None,
            result.get("overhead_ratio_vs_floor_temporal"),
            result.get("overhead_ratio_vs_langgraph"),
            None,
        ),
        (
            "throughput (steps/s)",
            result.get("throughput_steps_per_s"),
            ft.get("throughput_steps_per_s"),
            None,
            None,
        ),
        *[
            (
                f"CPU s/step under load ({part})",
                _get(result, "cpu_s_per_step", part),
                _get(ft, "cpu_s_per_step", part),
                None,
                None,
            )
            for part in ("worker", "server", "total")
        ],
        (
            "server writes/step under load",
            _get(result, "throughput", "durable", "writes_per_step"),
            _get(result, "throughput", "floor_temporal", "writes_per_step"),
            None,
            None,
        ),
    ]
    size = result.get("history_bytes_per_step") or {}
    events = result.get("history_events_per_step") or {}
    current = size.get("current_execution") or {}
    for step in sorted(_checkpoints(size)):
        rows.append((f"history B/step @ {step} (all exec.)", size[str(step)], None, None, None))
        rows.append(
            (f"history B/step @ {step} (current exec.)", current.get(str(step)), None, None, None)
        )
        rows.append((f"history events/step @ {step}", events.get(str(step)), None, None, None))
    recovery = result.get("recovery") or {}
    sticky = _fmt(recovery.get("sticky_timeout_s"))
    rows.append(("long run completed", result.get("long_run_completed"), None, None, None))
    for name, r in (recovery.get("situations") or {}).items():
        rows.append(
            (f"recovery s, {name} (sticky {sticky} s)", r.get("recovery_s"), None, None, None)
        )
        rows.append(
            (
                f"recovery s, {name} (SDK default 10 s)",
                r.get("with_default_sticky_s"),
                None,
                None,
                None,
            )
        )
        if "worker_start_s" in r:
            rows.append(
                (f"  of which worker start s, {name}", r["worker_start_s"], None, None, None)
            )
    rows += [
        (
            "memory KiB / waiting run",
            result.get("memory_kib_per_waiting_run"),
            ft.get("memory_kib_per_waiting_run"),
            None,
            None,
        ),
    ]
    latency = result.get("stream_token_latency_ms") or {}
    stream_bytes = result.get("stream_history_bytes_per_1000_tokens") or {}
    rows += [
        ("stream token latency p50 ms", latency.get("p50"), None, None, None),
        ("stream token latency p99 ms", latency.get("p99"), None, None, None),
        ("stream history B / 1000 tokens", stream_bytes.get("total"), None, None, None),
        ("  of which beyond the text", stream_bytes.get("beyond_text"), None, None, None),
        ("stream extra step time", result.get("stream_extra_step_ratio"), None, None, None),
    ]
    for name, met in (result.get("targets") or {}).items():
        rows.append((f"target {name}", met, None, None, None))
    cells = [[_fmt(c) if i else str(c) for i, c in enumerate(row)] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    server = result.get("server")
    if server:
        lines.append("")
        lines.append(f"server: {server.get('storage')}, pragmas {server.get('sqlite_pragmas')}")
        lines.append(f"  dynamic config {server.get('dynamic_config')}")
        lines.append(f"  running (read back) {server.get('running')}")
    return "\n".join(lines)
