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
    per_step = _checkpoints(result.get("history_bytes_per_step"))
    values = list(per_step.values())
    flat = max(values) / min(values) <= FLATNESS_LIMIT if values and min(values) > 0 else None
    recovery = result.get("recovery_s")
    return {
        "overhead_ratio_le_1.3": None if ratio is None else ratio <= 1.3,
        "history_bytes_per_step_flat": flat,
        "history_bytes_per_step_le_4kb": (
            all(v <= HISTORY_BYTES_LIMIT for v in values) if values else None
        ),
        "long_run_completed": result.get("long_run_completed"),
        "recovery_le_2s": None if recovery is None else recovery <= 2.0,
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


def table(result: dict[str, Any]) -> str:
    """The numbers of ``result`` as a fixed-width table."""
    floors = result.get("floors") or {}
    ft, fa = floors.get("floor_temporal") or {}, floors.get("floor_asyncio") or {}
    rows: list[tuple[str, Any, Any, Any]] = [
        ("metric", "durable-agents", "floor_temporal", "floor_asyncio"),
        *[
            (
                f"step time {p} (ms, 0 ms model)",
                _get(result, "overhead_ms_per_step", p),
                _get(ft, "overhead_ms_per_step", p),
                _get(fa, "overhead_ms_per_step", p),
            )
            for p in ("p50", "p99")
        ],
        (
            "overhead ratio vs temporal floor",
            result.get("overhead_ratio_vs_floor_temporal"),
            1.0,
            None,
        ),
        (
            "throughput (steps/s)",
            result.get("throughput_steps_per_s"),
            ft.get("throughput_steps_per_s"),
            None,
        ),
        *[
            (
                f"CPU s/step ({part})",
                _get(result, "cpu_s_per_step", part),
                _get(ft, "cpu_s_per_step", part),
                None,
            )
            for part in ("worker", "server", "total")
        ],
    ]
    size = result.get("history_bytes_per_step") or {}
    events = result.get("history_events_per_step") or {}
    current = size.get("current_execution") or {}
    for step in sorted(_checkpoints(size)):
        rows.append((f"history B/step @ {step} (all exec.)", size[str(step)], None, None))
        rows.append(
            (f"history B/step @ {step} (current exec.)", current.get(str(step)), None, None)
        )
        rows.append((f"history events/step @ {step}", events.get(str(step)), None, None))
    recovery = result.get("recovery") or {}
    sticky = _fmt(recovery.get("sticky_timeout_s"))
    rows.append(("long run completed", result.get("long_run_completed"), None, None))
    for name, r in (recovery.get("situations") or {}).items():
        rows.append((f"recovery s, {name} (sticky {sticky} s)", r.get("recovery_s"), None, None))
        rows.append(
            (f"recovery s, {name} (SDK default 10 s)", r.get("with_default_sticky_s"), None, None)
        )
        if "worker_start_s" in r:
            rows.append((f"  of which worker start s, {name}", r["worker_start_s"], None, None))
    rows += [
        (
            "memory KiB / waiting run",
            result.get("memory_kib_per_waiting_run"),
            ft.get("memory_kib_per_waiting_run"),
            None,
        ),
    ]
    for name, met in (result.get("targets") or {}).items():
        rows.append((f"target {name}", met, None, None))
    cells = [[_fmt(c) if i else str(c) for i, c in enumerate(row)] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
