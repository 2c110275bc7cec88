"""The drift asset: scoring data and predictions against the champion's own training data."""

import dagster as dg

from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.datasets.versions import (
    dataset_registry,
    load_version,
    stores_from_resources,
)
from ingestion_project.monitoring.drift import compute_drift, drift_markdown
from ingestion_project.monitoring.results import drift_result_id, save_result
from ingestion_project.training.assets import latest_dataset, model_registry, predictions_asset_name
from ingestion_project.training.scoring import (
    PREDICTION,
    PROBABILITY,
    predictions_path,
    read_predictions,
    score,
)

DRIFT_SHARE = "drift_share"
THRESHOLD = "threshold"
DRIFT_DETECTED = "drift_detected"
RESULT_ID = "drift_result_id"


def build_drift_asset(name: str, catalog: ProjectCatalog, code_version: str) -> dg.AssetsDefinition:
    monitor = catalog.monitors[name]
    model_spec = catalog.models[monitor.model]
    scoring = model_spec.scoring
    assert scoring is not None
    target_name = catalog.monitor_target(name)
    target = catalog.datasets[target_name]
    baseline = catalog.datasets[model_spec.train_on]
    features = catalog.monitor_features(name)
    categorical = [column for column in features if column in model_spec.categorical]
    stores = {target.datastore, baseline.datastore, scoring.datastore, catalog.registry.datastore}

    @dg.asset(
        name=name,
        group_name="monitoring",
        deps=[predictions_asset_name(monitor.model), target_name],
        description=monitor.description
        or f"Drift of '{target_name}' and the predictions of '{monitor.model}' against the "
        f"data the champion was trained on; retraining when drift share >= {monitor.threshold}.",
        code_version=code_version,
        required_resource_keys=stores,
        kinds={"evidently"},
    )
    def drift_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        models = model_registry(context, catalog)
        model_record = models.require_champion(monitor.model)
        trained_on = model_record.lineage.trained_on
        registry_store = getattr(context.resources, catalog.registry.datastore)
        datasets = dataset_registry(registry_store, catalog.registry.prefix)
        baseline_record = datasets.get(trained_on.dataset, trained_on.version)
        target_record = latest_dataset(context, catalog, target_name)
        pipeline = models.load_artifact(model_record)

        baseline_frame = load_version(
            baseline_record, stores_from_resources(context.resources, stores), baseline
        )
        what = f"baseline {baseline_record.dataset} v{baseline_record.version}"
        baseline_scored = score(pipeline, baseline_frame, model_spec, what)
        current = read_predictions(
            getattr(context.resources, scoring.datastore),
            predictions_path(scoring.path, model_record, target_record),
        )
        output = PROBABILITY if model_spec.task_name == "classification" else PREDICTION
        columns = [*features, output]
        result, html = compute_drift(baseline_scored, current, columns, categorical=categorical)
        result_id = drift_result_id(
            name, model_record, baseline_record, target_record, features, monitor.threshold
        )
        detected = result.drift_share >= monitor.threshold
        payload = {
            "monitor": name,
            "id": result_id,
            **result.to_dict(),
            "threshold": monitor.threshold,
            "drift_detected": detected,
            "lineage": {
                "run_id": context.run.run_id,
                "model": [model_record.model, model_record.version],
                "baseline": [baseline_record.dataset, baseline_record.version],
                "target": [target_record.dataset, target_record.version],
            },
        }
        paths = save_result(registry_store, catalog.registry.prefix, name, result_id, payload, html)
        context.log.info(
            f"Drift share {result.drift_share:.2f} (threshold {monitor.threshold}); drifted: "
            f"{', '.join(result.drifted_columns) or 'none'}."
        )
        return dg.MaterializeResult(
            metadata={
                DRIFT_SHARE: result.drift_share,
                THRESHOLD: monitor.threshold,
                DRIFT_DETECTED: detected,
                RESULT_ID: result_id,
                "drifted_columns": ", ".join(result.drifted_columns) or "none",
                "model_version": model_record.version,
                "baseline": f"{baseline_record.dataset} v{baseline_record.version}",
                "target": f"{target_record.dataset} v{target_record.version}",
                "evidence_key": f"data:{target_record.dataset}:v{target_record.version}",
                "features": dg.MetadataValue.md(drift_markdown(result)),
                "report_path": paths["report"],
            },
            data_version=dg.DataVersion(result_id),
        )

    return drift_asset
