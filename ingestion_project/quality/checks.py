"""Declared dataset checks as blocking Dagster asset checks on the version just registered."""

import dagster as dg

from ingestion_project.catalog.spec import CheckSpec, DatasetSpec, RegistrySpec
from ingestion_project.datasets.versions import (
    dataset_registry,
    load_version,
    stores_from_resources,
)
from ingestion_project.metadata import markdown_table
from ingestion_project.quality.expectations import check_description, check_name, run_checks


def build_dataset_checks(
    name: str, spec: DatasetSpec, registry_spec: RegistrySpec
) -> list[dg.AssetChecksDefinition]:
    """One multi-check per dataset so the data is loaded once for all of its checks."""
    if not spec.checks:
        return []
    taken: set[str] = set()
    named: dict[str, CheckSpec] = {
        check_name(check, index, taken): check for index, check in enumerate(spec.checks)
    }
    specs = [
        dg.AssetCheckSpec(
            name=check, asset=name, blocking=True, description=check_description(declared)
        )
        for check, declared in named.items()
    ]

    @dg.multi_asset_check(
        specs=specs,
        name=f"{name}_checks",
        required_resource_keys={spec.datastore, registry_spec.datastore},
    )
    def dataset_checks(context: dg.AssetCheckExecutionContext):
        registry = dataset_registry(
            getattr(context.resources, registry_spec.datastore), registry_spec.prefix
        )
        record = registry.latest(name)
        if record is None:
            raise dg.Failure(f"dataset '{name}' has no version yet: materialize it first.")
        stores = stores_from_resources(context.resources, [spec.datastore, registry_spec.datastore])
        frame = load_version(record, stores, spec)
        for outcome in run_checks(frame, named):
            yield dg.AssetCheckResult(
                asset_key=name,
                check_name=outcome.name,
                passed=outcome.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "dataset_version": record.version,
                    "expectations": outcome.expectations,
                    "failures": dg.MetadataValue.md(markdown_table(outcome.failures)),
                },
            )

    return [dataset_checks]
