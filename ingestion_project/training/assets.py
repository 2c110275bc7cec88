"""The model asset (train, register, promote) and its predictions asset (score new data)."""

from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
import pandas as pd

from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.catalog.spec import ModelSpec
from ingestion_project.datasets.versions import (
    DatasetError,
    DatasetRegistry,
    NoPassingVersionError,
    dataset_registry,
    load_version,
    stores_from_resources,
)
from ingestion_project.metadata import frame_table, table
from ingestion_project.records import DatasetVersionRecord, ModelVersionRecord, WindowPerformance
from ingestion_project.training.estimators import DroppedRows
from ingestion_project.training.lifecycle import train_and_register
from ingestion_project.training.registry import ModelRegistry
from ingestion_project.training.scoring import (
    PREDICTION,
    PROBABILITY,
    live_metrics,
    predictions_path,
    score,
    write_predictions,
)


def model_registry(context: dg.AssetExecutionContext, catalog: ProjectCatalog) -> ModelRegistry:
    registry = catalog.registry
    return ModelRegistry(getattr(context.resources, registry.datastore), registry.prefix)


def latest_dataset(
    context: dg.AssetExecutionContext, catalog: ProjectCatalog, name: str
) -> DatasetVersionRecord:
    """The latest version that passed its checks; an error says why there is none."""
    registry = dataset_registry(
        getattr(context.resources, catalog.registry.datastore), catalog.registry.prefix
    )
    return registry.require_latest(name)


def build_model_asset(name: str, catalog: ProjectCatalog, code_version: str) -> dg.AssetsDefinition:
    spec = catalog.models[name]
    dataset = catalog.datasets[spec.train_on]

    @dg.asset(
        name=name,
        group_name="models",
        deps=[spec.train_on],
        description=spec.description
        or f"{spec.estimator.kind} model of '{spec.target}', trained on '{spec.train_on}'.",
        code_version=code_version,
        required_resource_keys={dataset.datastore, catalog.registry.datastore},
        kinds={"scikit-learn"},
        tags=dict(spec.tags),
        owners=list(spec.owners),
    )
    def model_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        dataset_record = latest_dataset(context, catalog, spec.train_on)
        models = model_registry(context, catalog)
        latest = models.versions.latest(name)
        if latest is not None and already_trained(latest, dataset_record, code_version):
            context.log.info(
                f"{name} version {latest.version} was already trained on {spec.train_on} "
                f"v{dataset_record.version} with this declaration: nothing to train."
            )
            return dg.MaterializeResult(
                metadata={
                    "model_version": latest.version,
                    "trained": False,
                    "decision": f"skipped: v{latest.version} already trained on "
                    f"{spec.train_on} v{dataset_record.version}",
                    **trained_by(latest),
                },
                data_version=dg.DataVersion(f"v{latest.version}"),
            )
        stores = stores_from_resources(
            context.resources, [dataset.datastore, catalog.registry.datastore]
        )
        source = dataset_record
        if spec.train_window is not None and spec.train_window.versions is not None:
            registry = dataset_registry(
                getattr(context.resources, catalog.registry.datastore), catalog.registry.prefix
            )
            source = rows_of_last_versions(dataset_record, registry, spec.train_window.versions)
        frame = load_version(source, stores, dataset)
        record = train_and_register(
            name,
            spec,
            dataset_record,
            frame,
            models,
            run_id=context.run.run_id,
            code_version=code_version,
            timestamp_column=dataset.timestamp_column,
        )
        metric = spec.metric_name
        context.log.info(
            f"Registered {name} version {record.version} ({metric} "
            f"{record.metrics[metric]}); {record.decision}."
        )
        if record.promoted:
            from ingestion_project.monitoring.alerting import alert_promotion

            previous = record.compared_with.champion_version if record.compared_with else None
            alert_promotion(context, catalog, record, previous)
        champion = models.champion(name)
        comparison = record.compared_with
        gate: dict[str, Any] = {}
        if comparison is not None and comparison.p_value is not None:
            gate = {
                "gate_method": comparison.method,
                "gate_difference": comparison.difference,
                "gate_p_value": comparison.p_value,
                f"champion_{metric}": comparison.champion_metrics.get(metric),
            }
        dropped = record.dropped
        return dg.MaterializeResult(
            metadata={
                "model_version": record.version,
                "trained": True,
                "task": spec.task_name,
                **({"champion_version": champion.version} if champion else {}),
                "promoted": record.promoted,
                "decision": record.decision,
                **{f"holdout_{key}": float(value) for key, value in record.metrics.items()},
                **{key: value for key, value in gate.items() if value is not None},
                "trained_on": f"{spec.train_on} v{dataset_record.version}",
                "trained_on_version": dataset_record.version,
                "train_rows": record.train_rows,
                "holdout_rows": record.holdout_rows,
                "dropped_rows": dropped.missing_target + dropped.missing_features if dropped else 0,
                "rows_left_out": _left_out(record),
                "features": ", ".join(spec.features),
                "versions": model_versions_table(
                    models.versions.all(name)[::-1][:VERSIONS_SHOWN], metric
                ),
            },
            data_version=dg.DataVersion(f"v{record.version}"),
        )

    return model_asset


VERSIONS_SHOWN = 10


def model_versions_table(
    records: Sequence[ModelVersionRecord], metric: str
) -> dg.TableMetadataValue:
    """The latest model versions, newest first, by the model's one metric: a narrow table."""
    columns = [
        dg.TableColumn("version", "int"),
        dg.TableColumn(metric, "float", description="on its holdout window"),
        dg.TableColumn("promoted", "bool"),
        dg.TableColumn("trained_on", "string", description="the dataset version"),
        dg.TableColumn("registered", "string", description="UTC, to the minute"),
        dg.TableColumn("run", "string", description="the run that trained it: first 8"),
    ]
    rows = [
        {
            "version": item.version,
            metric: item.metrics.get(metric),
            "promoted": item.promoted,
            "trained_on": f"{item.lineage.trained_on.dataset} v{item.lineage.trained_on.version}",
            "registered": item.registered_at,
            "run": (item.lineage.run_id or "")[:8],
        }
        for item in records
    ]
    return table(rows, columns)


def trained_by(record: ModelVersionRecord) -> dict[str, dg.DagsterRunMetadataValue]:
    """A link to the run that trained ``record``, when Dagster trained it."""
    run_id = record.lineage.run_id
    return {"trained_by_run": dg.MetadataValue.dagster_run(run_id)} if run_id else {}


def _left_out(record: ModelVersionRecord) -> str:
    """'none of 2,786 rows dropped', or how many were dropped and why, for the UI."""
    dropped = record.dropped
    if dropped is None:
        return "not recorded"
    return DroppedRows(dropped.total, dropped.missing_target, dropped.missing_features).describe()


def rows_of_last_versions(
    record: DatasetVersionRecord, registry: DatasetRegistry, versions: int
) -> DatasetVersionRecord:
    """The version with only the files that arrived in its last ``versions`` versions."""
    older_number = record.version - versions
    if older_number < 1:
        return record
    older = registry.get(record.dataset, older_number)
    originals = (record.source_manifest or record.manifest).columns
    earlier = (older.source_manifest or older.manifest).columns
    before = set(zip(earlier.paths, earlier.etags, strict=True))
    pairs = zip(originals.paths, originals.etags, strict=True)
    keep = [index for index, pair in enumerate(pairs) if pair not in before]
    update: dict[str, object] = {"manifest": record.manifest.subset(keep)}
    if record.source_manifest is not None:
        update["source_manifest"] = record.source_manifest.subset(keep)
    return record.model_copy(update=update)


def already_trained(
    model_record: ModelVersionRecord, dataset_record: DatasetVersionRecord, code_version: str
) -> bool:
    """Same data version and same declaration: training again would only repeat the last run."""
    lineage = model_record.lineage
    return (
        lineage.trained_on.fingerprint == dataset_record.fingerprint
        and lineage.code_version == code_version
    )


def record_window(
    context: dg.AssetExecutionContext,
    catalog: ProjectCatalog,
    spec: ModelSpec,
    model_record: ModelVersionRecord,
    dataset_record: DatasetVersionRecord,
    scored: pd.DataFrame,
) -> dict[str, float]:
    """Keep the window's estimated performance (classifiers) until its labels arrive.

    The window belongs to the model version that scored it first: a later champion re-scoring
    the same data does not replace the record.
    """
    from ingestion_project.monitoring.alerting import alert_performance_drop
    from ingestion_project.monitoring.performance_assets import (
        estimate,
        load_window,
        save_window,
        window_path,
    )

    store = getattr(context.resources, catalog.registry.datastore)
    path = window_path(
        catalog.registry.prefix, model_record.model, dataset_record.dataset, dataset_record.version
    )
    known = load_window(store, path)
    if known is not None:
        return dict(known.estimated or {}) if known.model_version == model_record.version else {}
    figures = estimate(spec, model_record, scored)
    reference = model_record.metrics.get(spec.metric_name)
    alert_performance_drop(
        context,
        catalog,
        model_record.model,
        model_version=model_record.version,
        value=figures.get(spec.metric_name),
        reference=reference,
        kind="estimated",
        window=f"{dataset_record.dataset} v{dataset_record.version}",
    )
    save_window(
        store,
        path,
        WindowPerformance(
            model=model_record.model,
            model_version=model_record.version,
            dataset=dataset_record.dataset,
            dataset_version=dataset_record.version,
            metric=spec.metric_name,
            rows=len(scored),
            reference=model_record.metrics.get(spec.metric_name),
            estimated=figures or None,
        ),
    )
    return figures


PREVIEW_ROWS = 5
PREVIEW_FEATURES = 4


def preview_table(
    scored: pd.DataFrame, spec: ModelSpec, timestamp_column: str | None
) -> dg.TableMetadataValue:
    """The first scored rows: their time, a few features and the prediction, in a narrow table."""
    outputs = [column for column in (PREDICTION, PROBABILITY) if column in scored.columns]
    wanted = [timestamp_column, *spec.features[:PREVIEW_FEATURES], *outputs]
    columns = [c for c in dict.fromkeys(wanted) if c is not None and c in scored.columns]
    return frame_table(scored.head(PREVIEW_ROWS), columns)


def predictions_asset_name(model: str) -> str:
    return f"{model}_predictions"


def build_predictions_asset(
    name: str, catalog: ProjectCatalog, code_version: str
) -> dg.AssetsDefinition:
    spec = catalog.models[name]
    scoring = spec.scoring
    assert scoring is not None
    dataset = catalog.datasets[scoring.dataset]
    asset_name = predictions_asset_name(name)

    @dg.asset(
        name=asset_name,
        group_name="models",
        deps=[name, scoring.dataset],
        description=f"Predictions of the champion '{name}' on the latest '{scoring.dataset}', "
        f"written to '{scoring.path}' in {scoring.datastore}.",
        code_version=code_version,
        required_resource_keys={dataset.datastore, scoring.datastore, catalog.registry.datastore},
        kinds={"scikit-learn", "parquet"},
        tags=dict(spec.tags),
        owners=list(spec.owners),
        output_required=False,
    )
    def predictions_asset(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        models = model_registry(context, catalog)
        model_record = models.require_champion(name)
        registry = dataset_registry(
            getattr(context.resources, catalog.registry.datastore), catalog.registry.prefix
        )
        try:
            dataset_record = registry.require_latest(scoring.dataset)
        except NoPassingVersionError as error:
            context.log.warning(f"{error} Nothing to score.")
            return
        except DatasetError:
            # Retraining before any scoring data arrived: nothing to score, so the monitor skips.
            context.log.info(f"No version of '{scoring.dataset}' yet: nothing to score.")
            return
        stores = stores_from_resources(
            context.resources, [dataset.datastore, catalog.registry.datastore]
        )
        frame = load_version(dataset_record, stores, dataset)
        pipeline = models.load_artifact(model_record)
        what = f"dataset '{scoring.dataset}' version {dataset_record.version}"
        scored = score(pipeline, frame, spec, what)
        path = predictions_path(scoring.path, model_record, dataset_record)
        written = write_predictions(getattr(context.resources, scoring.datastore), path, scored)
        metrics = live_metrics(scored, pipeline, spec) or {}
        estimated = record_window(context, catalog, spec, model_record, dataset_record, scored)
        context.log.info(
            f"Scored {len(scored)} rows of {scoring.dataset} v{dataset_record.version} with "
            f"{name} v{model_record.version} -> {path}"
            + ("" if written else " (already there, unchanged)")
        )
        metric = spec.metric_name
        reference = model_record.metrics.get(metric)
        yield dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(path),
                "datastore": scoring.datastore,
                "model_version": model_record.version,
                "dataset_version": dataset_record.version,
                "dagster/row_count": len(scored),
                "mean_prediction": round(float(scored[PREDICTION].mean()), 3),
                **{f"live_{key}": float(value) for key, value in metrics.items()},
                **{f"estimated_{key}": float(value) for key, value in estimated.items()},
                **({f"reference_{metric}": float(reference)} if reference is not None else {}),
                "evidence_key": f"data:{scoring.dataset}:v{dataset_record.version}",
                "preview": preview_table(scored, spec, dataset.timestamp_column),
            },
            data_version=dg.DataVersion(path),
        )

    return predictions_asset
