"""`ingestion backtest MODEL`: replay a declared model's policy before trusting it.

The rows come from the model's ``train_on`` dataset, its latest version that passed its checks
(or the one named with ``--version``); the policy, the promotion gate and the drift monitor are
the ones the catalog declares, so what the backtest shows is what the daemon would do.
"""

from __future__ import annotations

from pathlib import Path

import click

from ingestion_project.cli_support import explained_errors, loaded_project, project_option

PERIODS = {"day": "D", "week": "W", "month": "M", "quarter": "Q"}


@click.command()
@click.argument("model")
@project_option
@click.option(
    "--period",
    type=click.Choice(sorted(PERIODS)),
    default="month",
    show_default=True,
    help="How long one window is.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many first windows train the first model (never scored).",
)
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    default=None,
    help="Which version of the training dataset to replay (default: the latest that passed).",
)
def backtest(
    model: str, project: Path | None, period: str, warmup: int, version: int | None
) -> None:
    """Replay MODEL's declared retraining policy window by window over its labelled data.

    Prints, per window, the champion, its realized metric and what the policy decided, then
    the mean beside "never retrain", "always retrain" and the oracle best of the two.
    """
    from ingestion_project.datasets.api import Workspace
    from ingestion_project.settings import ingestion_home
    from ingestion_project.training.backtest import backtest_model

    loaded = loaded_project(project)
    catalog = loaded.catalog
    if model not in catalog.models:
        declared = ", ".join(sorted(catalog.models)) or "none"
        raise click.UsageError(f"'{model}' is not a declared model (declared: {declared}).")
    spec = catalog.models[model]
    with explained_errors():
        workspace = Workspace(catalog, ingestion_home(loaded.root), loaded.root)
        rows = workspace.get(spec.train_on, version)
        count = rows.record.row_count
        click.echo(
            f"Replaying {model} over {spec.train_on} v{rows.version}"
            + (f" ({count:,} rows)" if count is not None else "")
            + f", one window per {period}, the first {warmup} for training..."
        )
        frame = rows.to_pandas()
        result = backtest_model(
            catalog, model, frame, period=PERIODS[period], warmup=warmup, say=_progress
        )
    click.echo("")
    for line in result.lines():
        click.echo(line)


def _progress(line: str) -> None:
    click.echo(line, err=True)
