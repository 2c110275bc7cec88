"""Which rows a monitor compares: its baseline and its target, streamed in batches.

A baseline is the champion's training data (scored by the champion, when predictions are
monitored), a pinned dataset version, a time window of a dataset or its latest passing version.
A target is a dataset's latest passing version or a model's predictions, whole or one time window.
Rows are read batch by batch (``iter_version_batches``), so memory follows the batch size and the
summaries, not the data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from ingestion_project.catalog.spec import DatasetSpec, ModelSpec
from ingestion_project.datasets.versions import DatasetRegistry, iter_version_batches
from ingestion_project.datasets.windows import in_zone
from ingestion_project.datastores.base import FileDatastore
from ingestion_project.records import DatasetVersionRecord, ModelVersionRecord
from ingestion_project.training.scoring import (
    PREDICTION,
    PROBABILITY,
    predictions_path,
    read_predictions,
    score,
)

Frames = Callable[[], Iterator[pd.DataFrame]]


class MonitorDataError(Exception):
    """A monitor's baseline or target cannot be read; the message says what to do."""


@dataclass(frozen=True)
class RowSource:
    """Rows to compare, read lazily, and what identifies them (for ids and cached summaries)."""

    label: str
    identity: dict[str, Any]
    frames: Frames
    columns: list[str] = field(default_factory=list)

    def key(self, *extra: Any) -> str:
        """A short hash of the identity and ``extra`` (columns, settings)."""
        payload = json.dumps([self.identity, *extra], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def output_column(spec: ModelSpec) -> str:
    """The column that carries a model's output: the probability of a classifier."""
    return PROBABILITY if spec.task_name == "classification" else PREDICTION


def _schema_columns(record: DatasetVersionRecord, extra: Sequence[str] = ()) -> list[str]:
    return [column.name for column in record.table_schema or []] + list(extra)


def version_rows(
    record: DatasetVersionRecord,
    stores: dict[str, FileDatastore],
    spec: DatasetSpec,
    *,
    window: tuple[datetime | None, datetime | None] = (None, None),
    model: tuple[Any, ModelSpec] | None = None,
) -> Frames:
    """A version's rows batch by batch, cut to ``window``, scored by ``model`` if given."""

    def frames() -> Iterator[pd.DataFrame]:
        for batch in iter_version_batches(record, stores, spec):
            frame = batch.to_pandas()
            if window != (None, None):
                frame = in_window(frame, spec.timestamp_column, *window)
            if frame.empty:
                continue
            if model is not None:
                pipeline, model_spec = model
                what = f"{record.dataset} v{record.version}"
                frame = score(pipeline, frame, model_spec, what)
            yield frame

    return frames


def in_window(
    frame: pd.DataFrame, column: str | None, start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    """The rows whose timestamp is in [start, end); naive stamps are read in the window's zone."""
    if column is None or column not in frame.columns:
        raise MonitorDataError(
            f"time windows are cut by the timestamp column '{column}', which the rows lack "
            f"(they have: {', '.join(map(str, frame.columns))}). Declare the dataset's "
            "timestamp_column."
        )
    zone = (start or end).tzinfo if (start or end) is not None else None  # type: ignore[union-attr]
    stamps = pd.to_datetime(frame[column], errors="coerce")
    if zone is not None:
        stamps = in_zone(stamps, zone)
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= stamps >= start
    if end is not None:
        keep &= stamps < end
    return frame.loc[keep.to_numpy()]


def champion_baseline(
    model_record: ModelVersionRecord,
    pipeline: Any,
    model_spec: ModelSpec,
    datasets: DatasetRegistry,
    stores: dict[str, FileDatastore],
    dataset_spec: DatasetSpec,
    *,
    with_predictions: bool,
) -> RowSource:
    """The data the champion learnt from, scored by it when predictions are compared too."""
    trained_on = model_record.lineage.trained_on
    record = datasets.get(trained_on.dataset, trained_on.version)
    scored_by = (pipeline, model_spec) if with_predictions else None
    return RowSource(
        label=f"{record.dataset} v{record.version}",
        identity={
            "baseline": "champion",
            "model": [model_record.model, model_record.version],
            "dataset": [record.dataset, record.version, record.fingerprint],
            "predictions": with_predictions,
        },
        frames=version_rows(record, stores, dataset_spec, model=scored_by),
        columns=_schema_columns(record, [output_column(model_spec)] if with_predictions else []),
    )


def dataset_baseline(
    record: DatasetVersionRecord,
    stores: dict[str, FileDatastore],
    spec: DatasetSpec,
    window: tuple[datetime | None, datetime | None],
    *,
    model: tuple[Any, ModelSpec] | None = None,
    model_version: int | None = None,
) -> RowSource:
    """A dataset version, or a time window of it; scored by ``model`` when outputs are watched."""
    start, end = window
    label = f"{record.dataset} v{record.version}"
    if start or end:
        label += (
            f" from {start.date() if start else 'its start'} to {end.date() if end else 'its end'}"
        )
    return RowSource(
        label=label,
        identity={
            "baseline": "dataset",
            "dataset": [record.dataset, record.version, record.fingerprint],
            "window": [str(start), str(end)],
            "scored_by": model_version,
        },
        frames=version_rows(record, stores, spec, window=window, model=model),
        columns=_schema_columns(record, [output_column(model[1])] if model else []),
    )


def dataset_target(
    record: DatasetVersionRecord,
    stores: dict[str, FileDatastore],
    spec: DatasetSpec,
    window: tuple[datetime | None, datetime | None] = (None, None),
) -> RowSource:
    """A dataset version's rows, or those of one time window."""
    return RowSource(
        label=f"{record.dataset} v{record.version}",
        identity={
            "target": "dataset",
            "dataset": [record.dataset, record.version, record.fingerprint],
            "window": [str(window[0]), str(window[1])],
        },
        frames=version_rows(record, stores, spec, window=window),
        columns=_schema_columns(record),
    )


def predictions_target(
    store: FileDatastore,
    folder: str,
    model_record: ModelVersionRecord,
    record: DatasetVersionRecord,
) -> RowSource:
    """The predictions the champion wrote for a scoring dataset version (features included)."""
    path = predictions_path(folder, model_record, record)
    if not store.exists(path):
        raise MonitorDataError(
            f"no predictions of {model_record.model} v{model_record.version} for "
            f"{record.dataset} v{record.version} at {path}. Materialize "
            f"{model_record.model}_predictions first."
        )

    def frames() -> Iterator[pd.DataFrame]:
        yield read_predictions(store, path)

    return RowSource(
        label=f"{record.dataset} v{record.version} scored by {model_record.model} "
        f"v{model_record.version}",
        identity={
            "target": "predictions",
            "model": [model_record.model, model_record.version],
            "dataset": [record.dataset, record.version, record.fingerprint],
        },
        frames=frames,
        columns=_schema_columns(record),
    )


def predictions_in_window(
    store: FileDatastore,
    folder: str,
    model: str,
    timestamp_column: str | None,
    window: tuple[datetime, datetime],
) -> RowSource:
    """Every prediction a model made for rows of one time window, by the version that made it.

    A scoring version may have been scored again by a later champion; the window keeps the first
    scoring of each, what was live when the data arrived.
    """
    first_scoring: dict[tuple[str, int], tuple[int, str]] = {}
    for info in store.list_files(f"{folder.strip('/')}/{model}/*.parquet"):
        stem = info.path.rsplit("/", 1)[-1].removesuffix(".parquet")
        model_part, dataset_part = stem.split("__", 1)
        dataset, version = dataset_part.rsplit("_v", 1)
        number = int(model_part.removeprefix("model_v"))
        key = (dataset, int(version))
        if key not in first_scoring or number < first_scoring[key][0]:
            first_scoring[key] = (number, info.path)
    paths = [path for _, (_, path) in sorted(first_scoring.items())]

    def frames() -> Iterator[pd.DataFrame]:
        for path in paths:
            frame = in_window(read_predictions(store, path), timestamp_column, *window)
            if not frame.empty:
                yield frame

    return RowSource(
        label=f"predictions of {model}",
        identity={"target": "predictions", "model": model, "files": paths},
        frames=frames,
    )
