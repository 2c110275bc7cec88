"""The retraining sensor: the model's declared policy, applied to each new piece of evidence.

It watches the model's drift monitors, its predictions (estimated performance, classifiers) and
its performance asset (realized performance once labels arrived). Each new result is judged by
the policy (training.policy); a result that calls for retraining requests exactly one run. The
run key names the data the evidence is about, not the result: re-scoring and re-checking the
same data after a promotion gives the same key, so a promotion never cascades into another
retraining for the same data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from ingestion_project.catalog.spec import ModelSpec, RetrainPolicySpec
from ingestion_project.training.policy import Evidence, decide

DRIFT_SHARE = "drift_share"
DRIFT_ALARM = "drift_alarm"
THRESHOLD = "threshold"
EVIDENCE_KEY = "evidence_key"


def retrain_sensor_name(model: str) -> str:
    return f"{model}_retrain_sensor"


def retrain_schedule_name(model: str) -> str:
    return f"{model}_retrain_schedule"


def effective_policy(spec: ModelSpec, drift_monitors: Sequence[str]) -> RetrainPolicySpec | None:
    """The declared policy; without one, drift of a monitor with ``retrain: true`` retrains."""
    if spec.retrain is not None:
        return spec.retrain
    return RetrainPolicySpec(when=["drift"]) if drift_monitors else None


def build_retrain_sensor(
    model: str,
    spec: ModelSpec,
    policy: RetrainPolicySpec,
    *,
    drift_monitors: Sequence[str],
    predictions: str | None,
    performance: str | None,
    job_name: str,
) -> dg.SensorDefinition | None:
    """One sensor per model over every asset whose results the policy weighs (None if none)."""
    watched: dict[str, str] = {}
    if "drift" in policy.when:
        watched.update({monitor: "drift" for monitor in drift_monitors})
    if "performance_drop" in policy.when:
        if predictions and spec.task_name == "classification" and policy.performance != "realized":
            watched[predictions] = "estimated"
        if performance and policy.performance != "estimated":
            watched[performance] = "realized"
    if not watched:
        return None
    metric = spec.metric_name

    @dg.multi_asset_sensor(
        monitored_assets=[dg.AssetKey(name) for name in watched],
        job_name=job_name,
        name=retrain_sensor_name(model),
        description=f"Requests {job_name} when the retraining policy of '{model}' says so "
        f"({', '.join(policy.when)}), judged on each new result of {', '.join(watched)}; one run "
        "per piece of data.",
    )
    def retrain_sensor(context: dg.MultiAssetSensorEvaluationContext) -> Any:
        requests: list[dg.RunRequest] = []
        notes: list[str] = []
        for key, event in context.latest_materialization_records_by_key().items():
            if event is None or event.asset_materialization is None:
                continue
            metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
            kind = watched[key.to_user_string()]
            decision = decide(policy, metric, _evidence(kind, metadata, metric))
            context.advance_cursor({key: event})
            notes.append(f"{key.to_user_string()}: {decision.reason}")
            evidence_key = metadata.get(EVIDENCE_KEY)
            if not decision.retrain or not evidence_key:
                continue
            requests.append(
                dg.RunRequest(
                    run_key=f"{model}:{evidence_key}",
                    tags={
                        "ingestion/model": model,
                        "ingestion/evidence": str(evidence_key),
                        "ingestion/reason": decision.reason[:200],
                    },
                )
            )
        if requests:
            return requests
        return dg.SkipReason("; ".join(notes) or "no new result to judge")

    return retrain_sensor


def _evidence(kind: str, metadata: dict[str, Any], metric: str) -> Evidence:
    reference = metadata.get(f"reference_{metric}")
    if kind == "drift":
        alarm = metadata.get(DRIFT_ALARM)
        return Evidence(
            drift_share=_number(metadata.get(DRIFT_SHARE)),
            drift_threshold=_number(metadata.get(THRESHOLD)),
            drift_alarm=alarm if isinstance(alarm, bool) else None,
        )
    if kind == "estimated":
        return Evidence(
            estimated=_number(metadata.get(f"estimated_{metric}")), reference=_number(reference)
        )
    return Evidence(
        realized=_number(metadata.get(f"realized_{metric}")), reference=_number(reference)
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
