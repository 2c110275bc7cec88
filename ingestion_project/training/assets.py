"""The model asset (train, register, promote) and its predictions asset (score new data)."""

from collections.abc import Iterator

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
from ingestion_project.metadata import markdown_table
from ingestion_project.records import DatasetVersionRecord, ModelVersionRecord, WindowPerformance
from ingestion_project.training.estimators import DroppedRows
from ingestion_project.training.lifecycle import train_and_register
from ingestion_project.training.registry import ModelRegistry
from ingestion_project.training.scoring import (
    PREDICTION,
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
        history = [
            {
                "version": item.version,
                **item.metrics,
                "trained_on": f"{spec.train_on} v{item.lineage.trained_on.version}",
                "promoted": item.promoted,
            }
            for item in models.versions.all(name)
        ]
        champion = models.champion(name)
        comparison = record.compared_with
        gate = {}
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
                "champion_version": champion.version if champion else None,
                "promoted": record.promoted,
                "decision": record.decision,
                **{f"holdout_{key}": value for key, value in record.metrics.items()},
                **gate,
                "trained_on": f"{spec.train_on} v{dataset_record.version}",
                "train_rows": record.train_rows,
                "holdout_rows": record.holdout_rows,
                "dropped_rows": dropped.missing_target + dropped.missing_features if dropped else 0,
                "rows_left_out": _left_out(record),
                "features": ", ".join(spec.features),
                "versions": dg.MetadataValue.md(markdown_table(history[::-1][:10])),
            },
            data_version=dg.DataVersion(f"v{record.version}"),
        )

    return model_asset


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
    originals = record.source_manifest or record.manifest
    before = {(entry.path, entry.etag) for entry in (older.source_manifest or older.manifest)}
    keep = [
        index for index, entry in enumerate(originals) if (entry.path, entry.etag) not in before
    ]
    update: dict[str, object] = {"manifest": [record.manifest[index] for index in keep]}
    if record.source_manifest is not None:
        update["source_manifest"] = [record.source_manifest[index] for index in keep]
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
        description=f"Predictions of the champion '{name}' on the latest '{scoring.dataset}'.",
        code_version=code_version,
        required_resource_keys={dataset.datastore, scoring.datastore, catalog.registry.datastore},
        kinds={"parquet"},
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
        yield dg.MaterializeResult(
            metadata={
                "path": path,
                "datastore": scoring.datastore,
                "model_version": model_record.version,
                "dataset_version": dataset_record.version,
                "dagster/row_count": len(scored),
                "mean_prediction": round(float(scored[PREDICTION].mean()), 3),
                **{f"live_{key}": value for key, value in metrics.items()},
                **{f"estimated_{key}": value for key, value in estimated.items()},
                f"reference_{metric}": model_record.metrics.get(metric),
                "evidence_key": f"data:{scoring.dataset}:v{dataset_record.version}",
                "preview": dg.MetadataValue.md(
                    markdown_table(scored.head(5).to_dict(orient="records"))
                ),
            },
            data_version=dg.DataVersion(path),
        )

    return predictions_asset
