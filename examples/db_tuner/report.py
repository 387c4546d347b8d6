"""The db-tuner's final answer, written from the observations by the offline model.

For each logged slow query: its time before and after the index changes and the
speed-up, then the indexes created, the unused indexes and what happened to them (dropped,
refused by a person, already gone), and every task that did not succeed, with why.
"""

from examples.db_tuner.observations import Findings, SlowQuery


def _short(sql: str, limit: int = 90) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _query_lines(f: Findings, q: SlowQuery) -> list[str]:
    lines = [f"- q{q.id}: {_short(q.sql)}", f"    logged: {q.calls:,} calls, avg {q.avg_ms} ms"]
    before, after = f.before_ms.get(q.sql), f.after_ms.get(q.sql)
    plan_before, plan_after = f.explains.get(q.sql), f.explains_after.get(q.sql)
    if before is not None:
        scans = ", ".join((plan_before or {}).get("scanned_tables", []))
        lines.append(f"    before: {before:.3f} ms" + (f" (full scan of {scans})" if scans else ""))
    else:
        lines.append("    before: not measured")
    if after is not None:
        used = ", ".join((plan_after or {}).get("indexes_used", []))
        speedup = ""
        if before is not None and after <= before:
            speedup = f", {before / max(after, 1e-6):.1f}x faster"
        elif before is not None:  # an index the planner uses can still lose to a scan
            speedup = f", {after / max(before, 1e-6):.1f}x slower"
        lines.append(f"    after:  {after:.3f} ms" + (f" using {used}" if used else "") + speedup)
    elif f.created:
        lines.append("    after:  not measured")
    return lines


def _saving(f: Findings) -> str | None:
    """Time saved over the logged number of calls, from the measured medians."""
    saved_ms = sum(
        q.calls * (f.before_ms[q.sql] - f.after_ms[q.sql])
        for q in f.slow_queries or []
        if q.sql in f.before_ms and q.sql in f.after_ms
    )
    if saved_ms <= 0:
        return None
    return f"Over the logged calls that is about {saved_ms / 1000:,.1f} s of query time saved."


def _drop_lines(f: Findings) -> list[str]:
    lines = []
    for name, drop in f.drops.items():
        if drop.get("dropped"):
            lines.append(f"- {name}: dropped; restore with: {drop.get('restore_sql')}")
        elif drop.get("outcome") == "ok":
            lines.append(f"- {name}: nothing to drop ({drop.get('reason', 'absent')})")
        elif drop.get("outcome") == "denied":
            lines.append(f"- {name}: kept; the drop was refused: {drop.get('why')}")
        else:
            lines.append(f"- {name}: kept, the drop failed ({drop.get('why')})")
    return lines


def write_report(f: Findings) -> str:
    """A plain-text report of the run, for the user who asked for it."""
    if f.tables is None or f.slow_queries is None:
        why = "; ".join(str(x.get("why")) for x in f.failures) or "no observations"
        return f"Database tuning report\n\nThe database could not be inspected: {why}"
    lines = ["Database tuning report", "", "Slow queries (from slow_query_log):"]
    for q in f.slow_queries:
        lines += _query_lines(f, q)
    saving = _saving(f)
    if saving:
        lines += ["", saving]
    made = [
        f"- {c['index']} on {c['table']}({', '.join(c['columns'])})"
        + ("" if c.get("created") else " (already existed)")
        for c in f.created
    ]
    lines += ["", "Indexes created:", *(made or ["- none: no logged query scanned a table"])]
    if f.created:
        lines.append(
            "Statistics: " + ("refreshed with ANALYZE." if f.analyzed else "not refreshed.")
        )
    drops = _drop_lines(f)
    lines += ["", "Unused indexes:", *(drops or ["- none found"])]
    problems = [
        f"- {x.get('call')}: {x.get('outcome')}: {x.get('why')}"
        for x in f.failures
        if x.get("tool") != "drop_index"  # reported with the unused indexes
    ]
    if problems:
        lines += ["", "Not done:", *problems]
    return "\n".join(lines)
