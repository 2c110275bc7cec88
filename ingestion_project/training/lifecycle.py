"""Train a challenger, compare it with the champion on the same newest data, register, promote."""

from __future__ import annotations

import pandas as pd

from ingestion_project.catalog.spec import ModelSpec
from ingestion_project.records import (
    ChampionComparison,
    DatasetVersionRecord,
    ModelArtifact,
    ModelEstimator,
    ModelLineage,
    ModelVersionRecord,
    TrainedOn,
)
from ingestion_project.training.estimators import evaluate, is_better, train
from ingestion_project.training.registry import ModelRegistry


def train_and_register(
    name: str,
    spec: ModelSpec,
    dataset_record: DatasetVersionRecord,
    frame: pd.DataFrame,
    models: ModelRegistry,
    *,
    run_id: str | None,
    code_version: str,
) -> ModelVersionRecord:
    """Register the next model version; it becomes champion only if it beats the current one."""
    what = f"dataset '{spec.train_on}' version {dataset_record.version}"
    trained = train(frame, spec, what)
    champion = models.champion(name)
    comparison: ChampionComparison | None = None
    if champion is None:
        promoted, reason = True, "first version of the model"
    else:
        champion_metrics = evaluate(models.load_artifact(champion), trained.holdout, spec)
        promoted = is_better(spec.metric, trained.metrics, champion_metrics)
        comparison = ChampionComparison(
            champion_version=champion.version, champion_metrics=champion_metrics
        )
        verdict = "beats" if promoted else "does not beat"
        reason = (
            f"{spec.metric} {trained.metrics[spec.metric]} on the newest {len(trained.holdout)} "
            f"rows {verdict} champion v{champion.version}'s {champion_metrics[spec.metric]}"
        )
    artifact_path, artifact_sha = models.save_artifact(name, trained.pipeline)

    def build(version: int) -> ModelVersionRecord:
        return ModelVersionRecord(
            model=name,
            version=version,
            estimator=ModelEstimator(kind=spec.estimator.kind, params=dict(spec.estimator.params)),
            features=list(spec.features),
            categorical=list(spec.categorical),
            target=spec.target,
            metric=spec.metric,
            metrics=trained.metrics,
            train_rows=trained.train_rows,
            holdout_rows=len(trained.holdout),
            compared_with=comparison,
            promoted=promoted,
            decision=reason,
            artifact=ModelArtifact(path=artifact_path, sha256=artifact_sha),
            lineage=ModelLineage(
                run_id=run_id,
                code_version=code_version,
                trained_on=TrainedOn(
                    dataset=spec.train_on,
                    version=dataset_record.version,
                    fingerprint=dataset_record.fingerprint,
                ),
            ),
        )

    record = models.versions.register(name, build)
    if promoted:
        models.promote(record, reason)
    return record
