"""Model versions: an immutable record per version, the artifact beside it, a champion alias."""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass
from typing import Any

from ingestion_project.datastores.base import FileDatastore
from ingestion_project.records import AliasRecord, ModelVersionRecord
from ingestion_project.registry import RegistryError, VersionRegistry

CHAMPION = "champion"


@dataclass(frozen=True)
class ModelRegistry:
    """Where models of a catalog are versioned; artifacts live under ``{prefix}/artifacts``."""

    store: FileDatastore
    prefix: str

    @property
    def versions(self) -> VersionRegistry[ModelVersionRecord]:
        return VersionRegistry(self.store, self.prefix, "models", ModelVersionRecord)

    def save_artifact(self, model: str, pipeline: Any) -> tuple[str, str]:
        """Write the fitted pipeline first, under a unique name, so a racer never overwrites it."""
        import joblib

        buffer = io.BytesIO()
        joblib.dump(pipeline, buffer)
        payload = buffer.getvalue()
        path = f"{self.prefix}/artifacts/models/{model}/{uuid.uuid4().hex}.joblib"
        self.store.write_bytes(path, payload, overwrite=False)
        return path, hashlib.sha256(payload).hexdigest()

    def load_artifact(self, record: ModelVersionRecord) -> Any:
        import joblib

        payload = self.store.read_bytes(record.artifact.path)
        if hashlib.sha256(payload).hexdigest() != record.artifact.sha256:
            raise RegistryError(
                f"model '{record.model}' version {record.version}: the artifact at "
                f"{record.artifact.path} does not match its recorded checksum. Retrain."
            )
        return joblib.load(io.BytesIO(payload))

    def champion(self, model: str) -> ModelVersionRecord | None:
        alias = self.versions.get_alias(model, CHAMPION)
        return self.versions.get(model, alias.version) if alias else None

    def require_champion(self, model: str) -> ModelVersionRecord:
        record = self.champion(model)
        if record is None:
            raise RegistryError(
                f"model '{model}' has no champion version yet: materialize the '{model}' asset "
                f"(or run the retrain_{model} job) first."
            )
        return record

    def promote(self, record: ModelVersionRecord, reason: str) -> None:
        self.versions.set_alias(
            record.model, CHAMPION, AliasRecord(version=record.version, reason=reason)
        )
