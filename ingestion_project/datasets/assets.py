"""One software-defined asset per dataset: materializing it registers a version."""

from typing import Any

import dagster as dg

from ingestion_project.catalog.spec import DatasetSpec, RegistrySpec
from ingestion_project.datasets.versions import (
    Registration,
    dataset_registry,
    register_file_dataset,
    version_summary,
)
from ingestion_project.metadata import column_schema, markdown_table
from ingestion_project.registry import VersionRegistry

VERSIONS_SHOWN = 10


def build_dataset_asset(
    name: str, spec: DatasetSpec, registry_spec: RegistrySpec
) -> dg.AssetsDefinition:
    code_version = spec.fingerprint()

    @dg.asset(
        name=name,
        group_name="datasets",
        description=spec.description or f"Dataset '{name}': {spec.path} in {spec.datastore}.",
        code_version=code_version,
        required_resource_keys={spec.datastore, registry_spec.datastore},
        kinds={"pandas", spec.file_format},
        tags={key: value for key, value in spec.tags.items()},
        metadata={"datastore": spec.datastore, "path": spec.path or "", "mode": "reference"},
    )
    def dataset_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        store = getattr(context.resources, spec.datastore)
        registry = dataset_registry(
            getattr(context.resources, registry_spec.datastore), registry_spec.prefix
        )
        outcome = register_file_dataset(
            name, spec, store, registry, run_id=context.run.run_id, code_version=code_version
        )
        record = outcome.record
        if outcome.created:
            context.log.info(
                f"Registered {name} version {record['version']}: {len(record['manifest'])} "
                f"files, {record['row_count']} rows."
            )
        else:
            context.log.info(f"{name} is unchanged: still version {record['version']}.")
        return dg.MaterializeResult(
            metadata=dataset_metadata(outcome, registry),
            data_version=dg.DataVersion(record["fingerprint"]),
        )

    return dataset_asset


def dataset_metadata(outcome: Registration, registry: VersionRegistry) -> dict[str, Any]:
    record = outcome.record
    history = [version_summary(item) for item in registry.all(record["dataset"])]
    return {
        "version": record["version"],
        "new_version": outcome.created,
        "fingerprint": record["fingerprint"],
        "files": len(record["manifest"]),
        "bytes": record.get("bytes", 0),
        "dagster/row_count": record["row_count"],
        "dagster/column_schema": column_schema(record["schema"]),
        "profile": dg.MetadataValue.md(markdown_table(record["profile"])),
        "versions": dg.MetadataValue.md(markdown_table(history[-VERSIONS_SHOWN:][::-1])),
        "registered_by_run": (record.get("lineage") or {}).get("run_id") or "",
    }
