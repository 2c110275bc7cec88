"""Drift results: identified by their inputs, so the same comparison always has the same id."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ingestion_project.datastores.base import FileDatastore
from ingestion_project.records import DatasetVersionRecord, ModelVersionRecord


def drift_result_id(
    monitor: str,
    model_record: ModelVersionRecord,
    baseline_record: DatasetVersionRecord,
    target_record: DatasetVersionRecord,
    features: list[str],
    threshold: float,
) -> str:
    """Hash of everything the result depends on; the retrain sensor's run key is built from it."""
    payload = json.dumps(
        {
            "monitor": monitor,
            "model": [model_record.model, model_record.version],
            "baseline": [baseline_record.dataset, baseline_record.fingerprint],
            "target": [target_record.dataset, target_record.fingerprint],
            "features": features,
            "threshold": threshold,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def save_result(
    store: FileDatastore,
    prefix: str,
    monitor: str,
    result_id: str,
    result: dict[str, Any],
    html: str,
) -> dict[str, str]:
    """Keep the result and the evidently report beside it; same id, same content."""
    folder = f"{prefix}/monitors/{monitor}/{result_id}"
    paths = {"result": f"{folder}/result.json", "report": f"{folder}/report.html"}
    store.write_bytes(paths["report"], html.encode())
    store.write_bytes(paths["result"], json.dumps(result, indent=2, default=str).encode())
    return paths
