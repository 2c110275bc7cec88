"""The `ingestion` command: run the demo, look at dataset and model versions."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import click

from ingestion_project.cli_support import loaded_project, project_option
from ingestion_project.datasets.cli_commands import datasets
from ingestion_project.labeling.cli_commands import labeling
from ingestion_project.settings import INGESTION_HOME_ENV, ingestion_home
from ingestion_project.training.cli_commands import backtest


@click.group()
def cli() -> None:
    """Declarative ingestion, versioned datasets, drift monitoring and retraining on Dagster."""


@cli.command()
@click.option("--months", default=6, show_default=True, help="How many new months arrive (1-8).")
def demo(months: int) -> None:
    """Run the whole loop on the embedded default: local datastore, SQLite Dagster instance."""
    if not 1 <= months <= 8:
        raise click.BadParameter("choose between 1 and 8 months", param_hint="--months")
    started = time.monotonic()
    home = ingestion_home()
    # The demo's definitions load from the package's own folder: point them at this home.
    os.environ[INGESTION_HOME_ENV] = str(home)
    from ingestion_project.demo.loop import reset_demo_state

    reset_demo_state(home)
    click.echo("Loading the demo catalog and its Dagster definitions...")
    import dagster as dg

    from ingestion_project.demo.loop import demo_definitions, run_demo

    dagster_home = Path(os.environ.get("DAGSTER_HOME") or home / "dagster")
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    click.echo(
        f"Working in {home} (datastores, registry); Dagster instance: "
        f"{type(instance.run_storage).__name__} configured by {dagster_home}."
    )
    report = run_demo(
        demo_definitions(),
        instance,
        home / "datastores" / "workspace_default",
        arriving=tuple(range(5, 5 + months)),
        say=click.echo,
    )
    _summary(report, home)
    click.echo(f"Done in {time.monotonic() - started:.0f} s ({report.runs} Dagster runs).")
    click.echo(
        "See it in the web UI: make ui (or, with .venv activated and DAGSTER_HOME=$PWD, dg dev)."
    )


@cli.group()
def datastores() -> None:
    """Datastores declared in the catalog."""


@datastores.command("check")
@click.argument("name", required=False)
@project_option
def datastores_check(name: str | None, project: Path | None) -> None:
    """Connect to each declared datastore (or NAME) and report ok or why not."""
    from ingestion_project.datastores.health import check_datastores

    loaded = loaded_project(project)
    catalog = loaded.catalog
    if name is not None and name not in catalog.datastores:
        declared = ", ".join(sorted(catalog.datastores))
        raise click.UsageError(f"'{name}' is not a declared datastore (declared: {declared}).")
    names = [name] if name else list(catalog.datastores)
    click.echo(f"Checking {len(names)} datastore(s) of the project at {loaded.root}...")
    failed = 0
    for report in check_datastores(catalog, ingestion_home(loaded.root), names):
        status = "ok" if report.ok else "FAILED"
        click.echo(
            f"{status:7} {report.name} ({report.kind}, {report.target}) {report.seconds:.1f}s"
        )
        if not report.ok:
            failed += 1
            click.echo(f"        {report.reason}: {report.message}")
    if failed:
        click.echo(f"{failed} of {len(names)} datastore(s) failed.")
        raise SystemExit(1)
    click.echo(f"All {len(names)} datastore(s) answered.")


def _summary(report: object, home: Path) -> None:
    from ingestion_project.datasets.versions import dataset_registry
    from ingestion_project.datastores.local import LocalDatastore
    from ingestion_project.training.registry import ModelRegistry

    store = LocalDatastore(
        name="workspace_default", root=str(home / "datastores" / "workspace_default")
    )
    datasets = dataset_registry(store, "_registry")
    models = ModelRegistry(store, "_registry")
    click.echo("\nSummary")
    for name in datasets.names():
        versions = datasets.all(name)
        failed = [f"v{record.version}" for record in versions if not record.passed]
        flagged = f" ({', '.join(failed)} FAILED checks)" if failed else ""
        latest = datasets.latest(name)
        if latest is None:
            click.echo(f"  dataset {name}: {len(versions)} versions{flagged}; none passed.")
            continue
        files = _count(len(latest.manifest), "file")
        click.echo(
            f"  dataset {name}: {len(versions)} versions{flagged}; latest v{latest.version} has "
            + (f"{latest.row_count:,} rows in " if latest.row_count is not None else "")
            + f"{files}."
        )
    for model in ("bikeshare_demand", "busy_hours"):
        champion = models.champion(model)
        for record in models.versions.all(model):
            trained = record.lineage.trained_on
            mark = " (champion)" if champion and champion.version == record.version else ""
            figure = record.metrics.get(record.metric)
            click.echo(
                f"  model {model} v{record.version}{mark}: trained on {trained.dataset} "
                f"v{trained.version}, {_metric_label(record.metric)} {figure:.4f} on its window; "
                f"promoted: {'yes' if record.promoted else 'no'}."
            )


def _metric_label(metric: str) -> str:
    return {"r2": "R²", "auc": "AUC", "mae": "MAE", "rmse": "RMSE"}.get(metric, metric)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


cli.add_command(datasets)
cli.add_command(labeling)
cli.add_command(backtest)


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="ingestion")
