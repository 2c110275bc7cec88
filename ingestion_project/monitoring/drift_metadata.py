"""What the web UI shows of a drift window: plotted numbers, and tables with schemas.

Numbers (``drift_share``, ``drift_magnitude``, ``prediction_drift``) are plain floats so the UI
plots them across materializations and partitions: drift over time. Per-feature results (drift,
then data quality, in two narrow tables) and the recent windows are ``MetadataValue.table`` with
a schema, which the UI lays out, not markdown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import dagster as dg

from ingestion_project.drift.engine import FeatureDrift
from ingestion_project.metadata import table
from ingestion_project.monitoring.measure import WindowDrift
from ingestion_project.records import DriftWindowRecord

DRIFT_SHARE = "drift_share"
DRIFT_MAGNITUDE = "drift_magnitude"
DRIFT_DETECTED = "drift_detected"
DRIFT_ALARM = "drift_alarm"
THRESHOLD = "threshold"
PREDICTION_DRIFT = "prediction_drift"

_FEATURE_COLUMNS = [
    dg.TableColumn("feature", "string"),
    dg.TableColumn("drifted", "bool"),
    dg.TableColumn("why", "string", description="distribution, nulls, or both"),
    dg.TableColumn("method", "string"),
    dg.TableColumn("p_value", "float", description="after Benjamini-Hochberg, when on"),
    dg.TableColumn("effect", "float", description="in the method's own units"),
    dg.TableColumn("contribution", "float", description="share of the drift magnitude"),
]
_QUALITY_COLUMNS = [
    dg.TableColumn("feature", "string"),
    dg.TableColumn("nulls", "string", description="null rate, baseline -> target"),
    dg.TableColumn("out_of_range", "float", description="share outside the baseline's range"),
    dg.TableColumn("unseen", "string", description="categories the baseline never had"),
    dg.TableColumn("type_errors", "int"),
]
_WINDOW_COLUMNS = [
    dg.TableColumn("window", "string"),
    dg.TableColumn("drift_share", "float"),
    dg.TableColumn("magnitude", "float"),
    dg.TableColumn("detected", "bool"),
    dg.TableColumn("alarm", "bool"),
    dg.TableColumn("drifted", "string"),
    dg.TableColumn("rows", "int"),
]


def _number(value: float | None, digits: int = 4) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


def _ordered(features: Sequence[FeatureDrift]) -> list[FeatureDrift]:
    """Drifted features first, then by contribution."""
    return sorted(features, key=lambda f: (not f.drifted, -f.contribution, f.feature))


def feature_table(features: Sequence[FeatureDrift]) -> dg.TableMetadataValue:
    """Every measured feature's drift verdict; the test statistic is in the full result."""
    rows = [
        {
            "feature": feature.feature,
            "drifted": feature.drifted,
            "why": feature.reason,
            "method": feature.method,
            "p_value": _number(feature.adjusted_p_value, 6),
            "effect": _number(feature.effect),
            "contribution": _number(feature.contribution),
        }
        for feature in _ordered(features)
    ]
    return table(rows, _FEATURE_COLUMNS)


def quality_table(features: Sequence[FeatureDrift]) -> dg.TableMetadataValue:
    """Every measured feature's data quality in the target against the baseline."""
    rows = []
    for feature in _ordered(features):
        quality = feature.quality
        unseen = ", ".join(quality.unseen_categories[:5])
        if len(quality.unseen_categories) > 5:
            unseen += ", ..."
        rows.append(
            {
                "feature": feature.feature,
                "nulls": f"{quality.baseline_null_rate:.1%} -> {quality.target_null_rate:.1%}",
                "out_of_range": _number(quality.out_of_range_rate),
                "unseen": unseen,
                "type_errors": quality.type_errors,
            }
        )
    return table(rows, _QUALITY_COLUMNS)


def windows_table(records: Sequence[DriftWindowRecord]) -> dg.TableMetadataValue:
    """The latest windows, newest first: drift over time at a glance."""
    rows = [
        {
            "window": record.window,
            "drift_share": record.drift_share,
            "magnitude": record.magnitude,
            "detected": record.detected,
            "alarm": record.alarm,
            "drifted": ", ".join(record.drifted) or "none",
            "rows": record.rows,
        }
        for record in records
    ]
    return table(rows, _WINDOW_COLUMNS)


def window_metadata(
    record: DriftWindowRecord,
    drift: WindowDrift,
    *,
    threshold: float,
    evidence_key: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata of one window's materialization."""
    metadata: dict[str, Any] = {
        DRIFT_SHARE: record.drift_share,
        DRIFT_MAGNITUDE: record.magnitude,
        DRIFT_DETECTED: record.detected,
        DRIFT_ALARM: record.alarm,
        THRESHOLD: threshold,
        "drifted_columns": ", ".join(record.drifted) or "none",
        "window": record.window,
        "baseline": record.baseline,
        "target": record.target,
        "rows": record.rows,
        "evidence_key": evidence_key,
        "features": feature_table(drift.report.features),
        "feature_quality": quality_table(drift.report.features),
        "result_path": dg.MetadataValue.path(record.report),
    }
    if drift.prediction is not None:
        metadata[PREDICTION_DRIFT] = _number(drift.prediction.distance)
        metadata["prediction_drifted"] = drift.prediction.drifted
    metadata.update(extra or {})
    return metadata
