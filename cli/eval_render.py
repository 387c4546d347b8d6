"""How an evaluation report reads: variants side by side (terminal, Markdown)."""

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from durable_agents._domain.eval_regression import RegressionResult
from durable_agents._domain.eval_report import EvalReport, Regression, VariantSummary
from durable_agents._domain.markdown import escape_markdown as _escape_dollars


def escape_markdown(text: str) -> str:
    """Text safe in a Markdown table cell (pipes and dollars escaped, one line)."""
    return _escape_dollars(text).replace("|", "\\|").replace("\n", " ")


def _rows(s: VariantSummary) -> list[tuple[str, str]]:
    failures = ", ".join(f"{k} {v}" for k, v in s.failures_by_class.items()) or "none"
    return [
        ("success", f"{s.passed}/{s.cases} ({s.success_rate:.0%})"),
        ("95% interval", f"{s.interval.low:.0%} to {s.interval.high:.0%}"),
        ("cost", f"${s.cost_usd:.4f}"),
        ("tokens", str(s.tokens)),
        ("steps", str(s.steps)),
        ("wall p50 / p95", f"{s.wall_p50_s:.1f}s / {s.wall_p95_s:.1f}s"),
        ("approvals asked", str(s.approvals)),
        ("failures by class", failures),
    ]


def table_rows(report: EvalReport) -> tuple[list[str], list[list[str]]]:
    """The header (variants) and one row per figure."""
    columns = [_rows(s) for s in report.summaries]
    names = [name for name, _ in columns[0]] if columns else []
    rows = [[name, *(col[i][1] for col in columns)] for i, name in enumerate(names)]
    return ["", *(s.variant for s in report.summaries)], rows


def print_eval(console: Console, report: EvalReport, regressions: list[Regression]) -> None:
    """The summary table, every failed case with why, and the gate's verdict."""
    header, rows = table_rows(report)
    table = Table(title=f"eval {report.dataset}")
    for name in header:
        table.add_column(escape(name))
    for row in rows:
        table.add_row(*(escape(c) for c in row))
    console.print(table)
    for r in report.results:
        if not r.passed:
            why = "; ".join(f.detail for f in r.failures)
            console.print(f"[red]FAIL[/] {escape(r.variant)} {escape(r.case_id)}: {escape(why)}")
    for line in shadow_lines(report):
        console.print(escape(line))
    for g in regressions:
        console.print(f"[red]REGRESSION[/] {escape(g.describe())}")


def shadow_lines(report: EvalReport) -> list[str]:
    """One line per shadow comparison: same plan and answer, or what differs."""
    lines = []
    for c in report.shadow:
        plan = (
            "same plan"
            if c.same_plan
            else (
                f"plan differs (only live: {', '.join(c.only_live) or '-'}; "
                f"only shadow: {', '.join(c.only_shadow) or '-'})"
            )
        )
        answer = "same answer" if c.same_answer else "answer differs"
        lines.append(f"shadow {c.shadow} vs {c.live}, {c.case_id}: {plan}, {answer}")
    return lines


def markdown(report: EvalReport, regressions: list[Regression]) -> str:
    """The report as a Markdown table, failed cases and regressions below it."""
    header, rows = table_rows(report)
    cells = [[escape_markdown(c) for c in row] for row in [header, *rows]]
    lines = [
        f"### eval {escape_markdown(report.dataset)}",
        "",
        "| " + " | ".join(cells[0]) + " |",
        "|" + "---|" * len(cells[0]),
        *("| " + " | ".join(row) + " |" for row in cells[1:]),
    ]
    failed = [r for r in report.results if not r.passed]
    if failed:
        lines += ["", "**Failed cases**", ""]
        lines += [
            f"- {escape_markdown(r.variant)} `{r.case_id}`: "
            + escape_markdown("; ".join(f.detail for f in r.failures))
            for r in failed
        ]
    if report.shadow:
        lines += ["", "**Shadow runs**", ""]
        lines += [f"- {escape_markdown(line)}" for line in shadow_lines(report)]
    if regressions:
        lines += ["", "**Regressions**", ""]
        lines += [f"- {escape_markdown(g.describe())}" for g in regressions]
    return "\n".join(lines) + "\n"


def print_regressions(console: Console, results: list[RegressionResult]) -> None:
    """Each re-run recorded run: the same, or what differs (or why it was not re-run)."""
    for r in results:
        if r.error:
            console.print(f"[yellow]SKIP[/] {escape(r.workflow_id)}: {escape(r.error)}")
        elif not r.differences:
            console.print(f"same  {escape(r.workflow_id)} (re-run {escape(r.rerun_workflow_id)})")
        else:
            console.print(
                f"[red]DIFF[/]  {escape(r.workflow_id)} (re-run {escape(r.rerun_workflow_id)})"
            )
            for d in r.differences:
                console.print(f"      {d.kind.value}: {escape(d.detail)}")
    differ = sum(bool(r.differences) for r in results)
    console.print(f"{len(results)} runs re-run, {differ} differ")
