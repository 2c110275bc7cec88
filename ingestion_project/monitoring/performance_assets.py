"""Model performance per scored window: estimated when scored, realized when labels arrive.

Each version of the scoring dataset is a window. When the model scores it, a classifier's
performance is estimated from its calibrated probabilities (CBPE); when the window's ground
truth arrives (a labels dataset joined on a key, often the history dataset's later versions),
the realized metric of the model version that made those predictions is recorded beside it.
The performance asset materializes once per newly labelled window, so the UI plots the series.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.catalog.spec import ModelSpec
from ingestion_project.datasets.versions import (
    dataset_registry,
    load_version,
    stores_from_resources,
)
from ingestion_project.datastores.base import FileDatastore
from ingestion_project.metadata import table
from ingestion_project.monitoring.alerting import alert_performance_drop
from ingestion_project.records import (
    ModelVersionRecord,
    WindowPerformance,
    read_record,
    record_json,
)
from ingestion_project.training.estimators import PREDICTION, PROBABILITY, metrics, target_values
from ingestion_project.training.scoring import read_predictions

WINDOWS_SHOWN = 24


def performance_asset_name(model: str) -> str:
    return f"{model}_performance"


def window_path(prefix: str, model: str, dataset: str, version: int) -> str:
    return f"{prefix}/performance/{model}/{dataset}_v{version:06d}.json"


def load_window(store: FileDatastore, path: str) -> WindowPerformance | None:
    try:
        payload = store.read_bytes(path)
    except FileNotFoundError:
        return None
    return read_record(WindowPerformance, payload, f"window performance '{path}'")


def save_window(store: FileDatastore, path: str, record: WindowPerformance) -> None:
    store.write_bytes(path, record_json(record))


def estimate(spec: ModelSpec, model: ModelVersionRecord, scored: pd.DataFrame) -> dict[str, float]:
    """The model's metrics on scored rows estimated from probabilities (classifiers only)."""
    if spec.task_name != "classification" or model.calibration is None:
        return {}
    from ingestion_project.monitoring.performance import Calibrator, estimate_performance

    probabilities = scored[PROBABILITY].dropna().to_numpy(dtype=float)
    if len(probabilities) == 0:
        return {}
    figures = estimate_performance(probabilities, Calibrator.from_dict(model.calibration))
    wanted = ("auc", "log_loss", "brier", "accuracy", "f1")
    return {key: round(float(figures[key]), 4) for key in wanted if key in figures}


def build_performance_asset(
    name: str, catalog: ProjectCatalog, code_version: str
) -> dg.AssetsDefinition:
    spec = catalog.models[name]
    scoring, labels = spec.scoring, spec.labels
    assert scoring is not None and labels is not None, "cross-checked in the project"
    labels_dataset = catalog.datasets[labels.dataset]
    label_column = labels.column or spec.target
    metric = spec.metric_name
    stores = {scoring.datastore, labels_dataset.datastore, catalog.registry.datastore}
    prefix = catalog.registry.prefix

    @dg.asset(
        name=performance_asset_name(name),
        group_name="monitoring",
        deps=[f"{name}_predictions", labels.dataset],
        description=f"Realized {metric} of '{name}' on each scored window once its labels "
        f"arrive in '{labels.dataset}' (joined on {', '.join(labels.key)}), beside the estimate "
        "made when it was scored.",
        code_version=code_version,
        required_resource_keys=stores,
        kinds={"scikit-learn"},
        tags=dict(spec.tags),
        owners=list(spec.owners),
        output_required=False,
    )
    def performance_asset(context: dg.AssetExecutionContext) -> Iterator[Any]:
        registry_store = getattr(context.resources, catalog.registry.datastore)
        labels_record = dataset_registry(registry_store, prefix).latest(labels.dataset)
        if labels_record is None:
            context.log.info(f"No version of '{labels.dataset}' yet: no labels to compare.")
            return
        frame = load_version(
            labels_record,
            stores_from_resources(
                context.resources, [labels_dataset.datastore, catalog.registry.datastore]
            ),
            labels_dataset,
        )
        truth = pd.DataFrame(frame[[*labels.key, label_column]]).drop_duplicates(
            subset=list(labels.key)
        )
        predictions_store = getattr(context.resources, scoring.datastore)
        windows = []
        for info in predictions_store.list_files(f"{scoring.path.strip('/')}/{name}/*.parquet"):
            updated = _realize(
                info.path, predictions_store, registry_store, truth, labels_record.version
            )
            if updated is not None:
                windows.append(updated)
        if not windows:
            context.log.info("No scored window has new labels yet.")
            return
        windows.sort(key=lambda record: record.dataset_version)
        for record in windows:
            alert_performance_drop(
                context,
                catalog,
                name,
                model_version=record.model_version,
                value=(record.realized or {}).get(metric),
                reference=record.reference,
                kind="realized",
                window=record.window,
            )
        for record in windows[:-1]:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=performance_asset_name(name), metadata=_metadata(record, metric)
                )
            )
        history = _history(registry_store, prefix, name)
        yield dg.MaterializeResult(
            metadata={
                **_metadata(windows[-1], metric),
                "windows": windows_table(history[-WINDOWS_SHOWN:][::-1], metric),
            }
        )

    def _realize(
        path: str,
        predictions_store: FileDatastore,
        registry_store: FileDatastore,
        truth: pd.DataFrame,
        labels_version: int,
    ) -> WindowPerformance | None:
        model_version, dataset, dataset_version = _window_of(path)
        record_path = window_path(prefix, name, dataset, dataset_version)
        known = load_window(registry_store, record_path)
        if known is not None and known.model_version != model_version:
            return None  # a later champion re-scored it; the window belongs to the first scorer
        if known is not None and known.realized and known.labelled_rows >= known.rows:
            return None  # every row already labelled: nothing new can come of reading it again
        scored = read_predictions(predictions_store, path)
        columns = [column for column in (PREDICTION, PROBABILITY) if column in scored.columns]
        keyed = _comparable_keys(pd.DataFrame(scored[[*labels.key, *columns]]), truth, labels.key)
        joined = keyed.merge(truth, on=labels.key, how="inner")
        joined = joined.rename(columns={label_column: spec.target})
        labelled = int(joined[spec.target].notna().sum())
        if labelled == 0 or (known is not None and known.labelled_rows == labelled):
            return None
        realized = metrics(target_values(joined, spec), pd.DataFrame(joined[columns]), spec)
        base = known or WindowPerformance(
            model=name,
            model_version=model_version,
            dataset=dataset,
            dataset_version=dataset_version,
            metric=metric,
            rows=len(scored),
        )
        record = base.model_copy(
            update={
                "realized": realized,
                "labelled_rows": labelled,
                "labels_version": labels_version,
            }
        )
        save_window(registry_store, record_path, record)
        return record

    return performance_asset


def _comparable_keys(scored: pd.DataFrame, truth: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """``scored`` with each key column in the labels' type, so the join matches like values.

    Predictions files keep parsed timestamps while a labels file may hold text, or the other
    way round; a key that is a timestamp on either side is compared as a timestamp.
    """
    out = scored.copy()
    for column in key:
        ours, theirs = out[column], truth[column]
        if ours.dtype == theirs.dtype:
            continue
        if pd.api.types.is_datetime64_any_dtype(theirs):
            out[column] = pd.to_datetime(ours, errors="coerce")
            if getattr(theirs.dt, "tz", None) is not None and out[column].dt.tz is None:
                out[column] = out[column].dt.tz_localize(theirs.dt.tz)
        elif pd.api.types.is_datetime64_any_dtype(ours):
            truth[column] = pd.to_datetime(theirs, errors="coerce")
        else:
            out[column] = ours.astype(str)
            truth[column] = theirs.astype(str)
    return out


def _window_of(path: str) -> tuple[int, str, int]:
    """(model version, dataset, dataset version) from a predictions file's name."""
    stem = path.rsplit("/", 1)[-1].removesuffix(".parquet")
    model_part, dataset_part = stem.split("__", 1)
    dataset, version = dataset_part.rsplit("_v", 1)
    return int(model_part.removeprefix("model_v")), dataset, int(version)


def _metadata(record: WindowPerformance, metric: str) -> dict[str, Any]:
    realized = (record.realized or {}).get(metric)
    estimated = (record.estimated or {}).get(metric)
    figures: dict[str, Any] = {
        "window": record.window,
        "model_version": record.model_version,
        "labelled_rows": record.labelled_rows,
        "evidence_key": f"labels:{record.dataset}:v{record.dataset_version}",
    }
    if realized is not None:
        figures[f"realized_{metric}"] = float(realized)
    if record.reference is not None:
        figures[f"reference_{metric}"] = float(record.reference)
    if estimated is not None:
        figures[f"estimated_{metric}"] = float(estimated)
        if realized is not None:
            figures["estimation_error"] = round(estimated - realized, 4)
    return figures


def _history(store: FileDatastore, prefix: str, model: str) -> list[WindowPerformance]:
    records = (
        load_window(store, info.path)
        for info in store.list_files(f"{prefix}/performance/{model}/*.json")
    )
    return [record for record in records if record is not None]


def windows_table(records: list[WindowPerformance], metric: str) -> dg.TableMetadataValue:
    """The latest scored windows, newest first: estimated beside realized, one narrow row each."""
    columns = [
        dg.TableColumn("window", "string"),
        dg.TableColumn("model_version", "int"),
        dg.TableColumn(f"estimated_{metric}", "float", description="when it was scored"),
        dg.TableColumn(f"realized_{metric}", "float", description="once its labels arrived"),
        dg.TableColumn("labelled_rows", "int"),
    ]
    rows = [
        {
            "window": record.window,
            "model_version": record.model_version,
            f"estimated_{metric}": (record.estimated or {}).get(metric),
            f"realized_{metric}": (record.realized or {}).get(metric),
            "labelled_rows": record.labelled_rows,
        }
        for record in records
    ]
    return table(rows, columns)
