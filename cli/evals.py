"""``agentctl eval``: run a dataset of cases on the runtime, per variant; a CI gate."""

import asyncio
import os
from pathlib import Path

import typer

from durable_agents._cli.app import app, connect_client, err, out, run_async, temporal_settings
from durable_agents._cli.eval_render import markdown, print_eval, print_regressions
from durable_agents._cli.render import to_json
from durable_agents._client.evals import EvalRunner
from durable_agents._domain.eval_cases import Dataset, DatasetError, parse_dataset
from durable_agents._domain.eval_report import EvalReport, regressions

PANEL = "Change an agent safely"
EXIT_REGRESSED = 10


def load_dataset(path: Path) -> Dataset:
    """The dataset in ``path`` (``.toml`` read as TOML, anything else as JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DatasetError(f"cannot read the dataset {path}: {e.strerror}") from None
    return parse_dataset(text, toml=path.suffix == ".toml")


def load_baseline(path: Path) -> EvalReport:
    """A report written by ``agentctl eval --json`` (or ``--out``)."""
    try:
        return EvalReport.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DatasetError(f"cannot read the baseline {path}: {e.strerror}") from None
    except ValueError:
        raise DatasetError(
            f"{path} is not an eval report: write one with `agentctl eval DATASET --out FILE`"
        ) from None


@app.command("eval", rich_help_panel=PANEL)
@run_async
async def eval_(
    dataset: Path | None = typer.Argument(
        None, help="The dataset: a JSON or TOML file of cases (or --from-runs)."
    ),
    from_runs: str | None = typer.Option(
        None,
        "--from-runs",
        help="Re-run the finished runs this visibility query matches against the current "
        "code, their model replies replayed, and report what differs (needs no model).",
    ),
    limit: int = typer.Option(20, min=1, help="With --from-runs: runs at most."),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="With --from-runs: the data the re-run's tools work on (a copy of it as it was "
        "before the runs; default: a new empty directory) and the payload store they read.",
    ),
    concurrency: int | None = typer.Option(
        None, min=1, help="Runs at a time (default: the dataset's, else 4)."
    ),
    baseline: Path | None = typer.Option(
        None, help="A report to hold each variant against (from --out or --json)."
    ),
    max_regression: float | None = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="The success rate may drop this much (0.05 = 5 points) before the exit is "
        f"{EXIT_REGRESSED}; without --baseline, against the first variant.",
    ),
    out_file: Path | None = typer.Option(None, "--out", help="Also write the report as JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    as_markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table."),
    case_timeout: float = typer.Option(
        600.0, min=1.0, help="Seconds a run may take before its case fails."
    ),
) -> None:
    """Run every case of DATASET as real runs, per variant, and compare the variants.

    A variant with spec overrides (a prompt, model routes, tools, limits) runs on a worker
    of this process with the patched specs (AGENT_PLUGINS, the environment's model).
    """
    from durable_agents._workers.state_checks import PluginStateChecks

    if from_runs is not None:
        try:
            await _from_runs(from_runs, limit, data_dir, as_json, case_timeout)
        except ImportError as e:  # AGENT_PLUGINS unset or wrong: the message says how
            err.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None
        return
    if dataset is None:
        err.print("[red]error:[/] name a DATASET file, or re-run finished runs with --from-runs")
        raise typer.Exit(2)
    try:
        cases = load_dataset(dataset)
        base = load_baseline(baseline) if baseline else None
    except DatasetError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    if concurrency:
        cases = cases.model_copy(update={"concurrency": concurrency})
    try:
        plugins = os.environ.get("AGENT_PLUGINS")
        checks = PluginStateChecks.load(plugins) if _has_state(cases) else None
    except ImportError as e:  # state checks are plugin code: AGENT_PLUGINS names them
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    client = await connect_client()
    runner = EvalRunner(client.temporal, client.task_queue, checks, case_timeout_s=case_timeout)
    report = await _run(runner, cases)
    gate = max_regression if max_regression is not None else (0.0 if base else None)
    found = [] if gate is None else regressions(report, base, gate)
    if out_file:
        await asyncio.to_thread(out_file.write_text, report.model_dump_json(indent=2), "utf-8")
    if as_json:
        out.print_json(to_json(report))
    elif as_markdown:
        out.print(markdown(report, found), markup=False, highlight=False)
    else:
        print_eval(out, report, found)
    raise typer.Exit(EXIT_REGRESSED if found else 0)


async def _run(runner: EvalRunner, dataset: Dataset) -> EvalReport:
    """The eval; variants with spec overrides run on workers of this process."""
    if not any(v.overrides for v in dataset.variants):
        return await runner.run(dataset)
    from durable_agents._workers.eval_variants import (
        OverrideError,
        override_catalogs,
        override_workers,
    )
    from durable_agents._workers.own_worker import own_worker_settings

    plugins = os.environ.get("AGENT_PLUGINS")
    try:
        settings = own_worker_settings(temporal_settings(), plugins)
        catalogs = override_catalogs(settings, dataset)  # every patch, before any run
    except (ImportError, OverrideError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    async with override_workers(runner.temporal, settings, dataset, catalogs) as served:
        for variant in served.variants:
            if variant.overrides:
                changed = "; ".join(
                    f"{agent}: {', '.join(sorted(patch)) or 'as loaded'}"
                    for agent, patch in variant.overrides.items()
                )
                err.print(
                    f"{variant.name}: runs on this eval's own worker ({variant.task_queue}, "
                    f"data in {variant.data_dir}) with specs overridden: {changed}",
                    highlight=False,
                )
        return await runner.run(served)


def _has_state(dataset: Dataset) -> bool:
    return any(c.expect.state for c in dataset.cases)


async def _from_runs(
    query: str, limit: int, data_dir: Path | None, as_json: bool, case_timeout: float
) -> None:
    from durable_agents.testing.regression import RecordedRunsRerun, settings_for_rerun

    client = await connect_client()
    settings = settings_for_rerun(temporal_settings(), os.environ.get("AGENT_PLUGINS"), data_dir)
    rerun = RecordedRunsRerun(client.temporal, settings, case_timeout_s=case_timeout)
    results = await rerun.rerun_query(query, limit, read_from=data_dir)
    if as_json:
        out.print_json(to_json([r.model_dump(mode="json") for r in results]))
    else:
        print_regressions(out, results)
    changed = [r for r in results if r.differences or r.error]
    raise typer.Exit(EXIT_REGRESSED if changed else 0)
