"""Train a challenger, judge it against the champion on the newest labelled window, register.

The challenger learns from the rows before the window (within ``train_window``); both models
score the window; the promotion gate decides; a promoted challenger is then refit on every row
(the window included) when ``promotion.refit`` says so. Every decision is recorded with its
figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ingestion_project.catalog.spec import ModelSpec
from ingestion_project.records import (
    ChampionComparison,
    DatasetVersionRecord,
    DroppedRowsRecord,
    ModelArtifact,
    ModelEstimator,
    ModelLineage,
    ModelVersionRecord,
    TrainedOn,
)
from ingestion_project.training.estimators import (
    PROBABILITY,
    TrainingData,
    fit,
    metrics,
    predict,
    prepare_training,
    target_values,
)
from ingestion_project.training.promotion import compare
from ingestion_project.training.registry import ModelRegistry
from ingestion_project.training.windows import split_newest_window, within_days


@dataclass(frozen=True)
class Challenge:
    """A trained challenger, its figures on the newest window and the gate's decision."""

    pipeline: Any
    data: TrainingData
    learn_rows: int
    window_rows: int
    window: str
    metrics: dict[str, float]
    promoted: bool
    decision: str
    comparison: ChampionComparison | None
    # Classifiers: probabilities calibrated on the window, to estimate performance without labels.
    calibrator: Any = None


def challenge(
    frame: pd.DataFrame,
    spec: ModelSpec,
    champion: tuple[int, Any] | None,
    *,
    timestamp_column: str | None,
    what: str,
) -> Challenge:
    """Everything promotion needs, from a dataset's rows; no registry involved (backtests)."""
    if spec.train_window is not None and spec.train_window.days is not None:
        frame = within_days(frame, timestamp_column, spec.train_window.days, what)
    data = prepare_training(frame, spec, what)
    split = split_newest_window(data.frame, spec, timestamp_column, what)
    learn = prepare_training(split.learn, spec, what)
    pipeline = fit(learn, spec)
    window_labels = target_values(split.window, spec)
    challenger_predictions = predict(pipeline, split.window, spec)
    figures = metrics(window_labels, challenger_predictions, spec)
    calibrator = None
    if spec.task_name == "classification":
        from ingestion_project.monitoring.performance import fit_calibrator

        labelled = window_labels.notna() & challenger_predictions[PROBABILITY].notna()
        calibrator = fit_calibrator(
            np.asarray(window_labels[labelled], dtype=float),
            challenger_predictions.loc[labelled, PROBABILITY].to_numpy(dtype=float),
        )
    comparison: ChampionComparison | None = None
    if champion is None:
        promoted, decision = True, "first version of the model"
    else:
        number, champion_pipeline = champion
        try:
            champion_predictions = predict(champion_pipeline, split.window, spec)
        except (KeyError, ValueError) as error:
            promoted = True
            decision = f"champion v{number} cannot score the declared features ({error})"
        else:
            gate = compare(window_labels, champion_predictions, challenger_predictions, spec)
            promoted, decision = gate.promote, gate.reason
            comparison = ChampionComparison(
                champion_version=number,
                champion_metrics=metrics(window_labels, champion_predictions, spec),
                method=gate.method,
                difference=round(gate.difference, 6),
                p_value=round(gate.p_value, 6),
                min_effect=spec.promotion.min_effect,
                alpha=spec.promotion.alpha,
            )
    if promoted and spec.promotion.refit:
        pipeline = fit(data, spec)
    return Challenge(
        pipeline=pipeline,
        data=data,
        learn_rows=len(learn.features),
        window_rows=len(split.window),
        window=split.description,
        metrics=figures,
        promoted=promoted,
        decision=f"{decision} (judged on {split.description})",
        comparison=comparison,
        calibrator=calibrator,
    )


def train_and_register(
    name: str,
    spec: ModelSpec,
    dataset_record: DatasetVersionRecord,
    frame: pd.DataFrame,
    models: ModelRegistry,
    *,
    run_id: str | None,
    code_version: str,
    timestamp_column: str | None = None,
) -> ModelVersionRecord:
    """Register the next model version; it becomes champion only if the gate says so."""
    what = f"dataset '{spec.train_on}' version {dataset_record.version}"
    champion_record = models.champion(name)
    champion = (
        (champion_record.version, models.load_artifact(champion_record))
        if champion_record is not None
        else None
    )
    result = challenge(frame, spec, champion, timestamp_column=timestamp_column, what=what)
    artifact_path, artifact_sha = models.save_artifact(name, result.pipeline)
    dropped = result.data.dropped

    def build(version: int) -> ModelVersionRecord:
        return ModelVersionRecord(
            model=name,
            version=version,
            task=spec.task_name,
            positive_above=spec.positive_above,
            window=result.window,
            calibration=result.calibrator.to_dict() if result.calibrator is not None else None,
            dropped=DroppedRowsRecord(
                total=dropped.total,
                missing_target=dropped.missing_target,
                missing_features=dropped.missing_features,
            ),
            estimator=ModelEstimator(kind=spec.estimator.kind, params=dict(spec.estimator.params)),
            features=list(spec.features),
            categorical=list(spec.categorical),
            target=spec.target,
            metric=spec.metric_name,
            metrics=result.metrics,
            train_rows=result.learn_rows,
            holdout_rows=result.window_rows,
            compared_with=result.comparison,
            promoted=result.promoted,
            decision=result.decision,
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
    if result.promoted:
        models.promote(record, result.decision)
    return record
