"""The catalog's declared webhooks, told of drift alarms, performance drops and promotions.

Sending never fails a run: the alerts package retries a bounded number of times and logs what
it could not deliver. Nothing is sent when a project declares no ``alerts:``.
"""

from __future__ import annotations

from typing import Any, Literal

from ingestion_project.alerts.webhook import (
    Alert,
    AlertRoute,
    drift_alert,
    performance_drop_alert,
    promotion_alert,
    send_alert,
)
from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.records import DriftWindowRecord, ModelVersionRecord

DEFAULT_TOLERANCE = 0.02


def alert_routes(catalog: ProjectCatalog) -> list[AlertRoute]:
    return [
        AlertRoute(
            name=name,
            url_env=spec.webhook.env,
            events=frozenset(spec.events),
            subjects=frozenset(spec.subjects) if spec.subjects is not None else None,
        )
        for name, spec in catalog.alerts.items()
    ]


def _send(context: Any, catalog: ProjectCatalog, alert: Alert) -> None:
    routes = alert_routes(catalog)
    if routes:
        send_alert(alert, routes, log=context.log)


def alert_drift(
    context: Any, catalog: ProjectCatalog, monitor: str, record: DriftWindowRecord
) -> None:
    """A monitor alarmed on a window."""
    _send(
        context,
        catalog,
        drift_alert(
            monitor,
            record.window,
            record.drift_share,
            catalog.monitors[monitor].threshold,
            record.drifted,
            record.magnitude,
            feature_count=round(len(record.drifted) / record.drift_share)
            if record.drift_share
            else None,
        ),
    )


def alert_promotion(
    context: Any,
    catalog: ProjectCatalog,
    record: ModelVersionRecord,
    previous: int | None,
) -> None:
    """A challenger became the champion."""
    comparison = record.compared_with
    champion_value = comparison.champion_metrics.get(record.metric) if comparison else None
    _send(
        context,
        catalog,
        promotion_alert(
            record.model,
            record.version,
            previous,
            record.metric,
            record.metrics.get(record.metric, float("nan")),
            champion_value,
            record.decision,
        ),
    )


def alert_performance_drop(
    context: Any,
    catalog: ProjectCatalog,
    model: str,
    *,
    model_version: int,
    value: float | None,
    reference: float | None,
    kind: Literal["realized", "estimated"],
    window: str,
) -> bool:
    """Tell the webhooks if a window's realized or estimated metric fell beyond the tolerance.

    The tolerance is the retraining policy's (0.02 without one), in the metric's units and
    direction; returns whether it fell that far.
    """
    from ingestion_project.training.policy import metric_drop

    if value is None or reference is None or value != value or reference != reference:
        return False
    spec = catalog.models[model]
    tolerance = spec.retrain.tolerance if spec.retrain is not None else DEFAULT_TOLERANCE
    if metric_drop(spec.metric_name, reference, value) <= tolerance:
        return False
    _send(
        context,
        catalog,
        performance_drop_alert(
            model,
            model_version,
            spec.metric_name,
            value,
            reference,
            tolerance,
            kind,
            window,
        ),
    )
    return True
