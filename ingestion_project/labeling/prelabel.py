"""Pre-labels: predictions of a declared model, or rows of a dataset, for each image.

A model's predictions are the file its ``<model>_predictions`` asset wrote for the champion and
the latest scoring-data version (``training.scoring.predictions_path``); a dataset's are its
latest passing version. Either way one row names one image by its path.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping

import pandas as pd

from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.datasets.versions import DatasetRegistry, load_version
from ingestion_project.datastores.base import FileDatastore
from ingestion_project.labeling.results import coerce_prediction
from ingestion_project.labeling.spec import LabelingSpec
from ingestion_project.labeling.sync import Prelabel


class PrelabelError(Exception):
    """The declared predictions cannot be read or do not fit the task."""


def read_prelabels(
    name: str,
    spec: LabelingSpec,
    catalog: ProjectCatalog,
    registry: DatasetRegistry,
    stores: Mapping[str, FileDatastore],
) -> dict[str, Prelabel]:
    """Image path -> its predicted label(s), from the declared model or dataset."""
    source = spec.prelabel
    if source is None:
        return {}
    where = f"labeling '{name}'.prelabel"
    if source.model is not None:
        frame, version = _model_predictions(source.model, catalog, registry, stores, where)
    else:
        assert source.dataset is not None
        record = registry.require_latest(source.dataset)
        frame = load_version(record, stores, catalog.datasets.get(source.dataset))
        version = f"{source.dataset} v{record.version}"
    missing = [c for c in (source.image_column, source.label_field) if c not in frame.columns]
    if source.score_column and source.score_column not in frame.columns:
        missing.append(source.score_column)
    if missing:
        raise PrelabelError(
            f"{where}: the predictions ({version}) have no column {', '.join(missing)} (columns: "
            f"{', '.join(map(str, frame.columns))}). Set image_column, label_column or "
            "score_column to the right names."
        )
    classes = set(spec.classes)
    guesses: dict[str, Prelabel] = {}
    for values in frame.to_dict(orient="records"):
        path, raw = values[source.image_column], values[source.label_field]
        if not isinstance(path, str) or raw is None:
            continue
        label = coerce_prediction(spec.task, raw, source.label_map)
        named = _classes(spec.task, label)
        if not named or not set(named) <= classes:
            continue  # predicts nothing, or a class the project does not have
        score = values.get(source.score_column) if source.score_column else None
        guesses[path] = Prelabel(label, _score(score), version)
    return guesses


def _model_predictions(
    model: str,
    catalog: ProjectCatalog,
    registry: DatasetRegistry,
    stores: Mapping[str, FileDatastore],
    where: str,
) -> tuple[pd.DataFrame, str]:
    from ingestion_project.training.registry import ModelRegistry
    from ingestion_project.training.scoring import predictions_path

    spec = catalog.models[model]
    assert spec.scoring is not None, "cross-checked when the catalog loads"
    champion = ModelRegistry(registry.store, registry.prefix).require_champion(model)
    scored = registry.require_latest(spec.scoring.dataset)
    path = predictions_path(spec.scoring.path, champion, scored)
    store = stores[spec.scoring.datastore]
    try:
        payload = store.read_bytes(path)
    except FileNotFoundError:
        raise PrelabelError(
            f"{where}: model '{model}' v{champion.version} has not scored "
            f"'{spec.scoring.dataset}' v{scored.version} yet ('{path}'). Materialize "
            f"{model}_predictions first, then sync again."
        ) from None
    return pd.read_parquet(io.BytesIO(payload)), f"{model} v{champion.version}"


def _classes(task: str, label: object) -> list[str]:
    if task == "multi_class":
        return [label] if isinstance(label, str) else []
    if task == "multi_label":
        return list(label) if isinstance(label, list) else []
    return [str(box.get("label")) for box in label] if isinstance(label, list) else []


def _score(value: object) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
