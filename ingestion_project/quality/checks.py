"""Declared dataset checks as blocking Dagster asset checks on the version just registered."""

from collections.abc import Iterator, Mapping

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
    op_name: str, datasets: Mapping[str, DatasetSpec], registry_spec: RegistrySpec
) -> list[dg.AssetChecksDefinition]:
    """The checks of one catalog's datasets as one subsettable multi-check.

    A dataset's version is loaded once for all of its selected checks; one op per catalog
    rather than per dataset keeps a project of thousands of datasets quick to load.
    """
    named: dict[str, dict[str, CheckSpec]] = {}
    for name, spec in datasets.items():
        taken: set[str] = set()
        named[name] = {
            check_name(check, index, taken): check for index, check in enumerate(spec.checks)
        }
    specs = [
        dg.AssetCheckSpec(
            name=check, asset=name, blocking=True, description=check_description(declared)
        )
        for name, checks in named.items()
        for check, declared in checks.items()
    ]
    if not specs:
        return []
    stores = {spec.datastore for spec in datasets.values() if spec.checks}

    @dg.multi_asset_check(
        specs=specs,
        name=op_name,
        can_subset=True,
        required_resource_keys=stores | {registry_spec.datastore},
    )
    def dataset_checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        selected: dict[str, list[str]] = {}
        for key in context.selected_asset_check_keys:
            selected.setdefault(key.asset_key.to_user_string(), []).append(key.name)
        registry = dataset_registry(
            getattr(context.resources, registry_spec.datastore), registry_spec.prefix
        )
        for name, check_names in sorted(selected.items()):
            spec = datasets[name]
            record = registry.latest(name)
            if record is None:
                raise dg.Failure(f"dataset '{name}' has no version yet: materialize it first.")
            stores = stores_from_resources(
                context.resources, [spec.datastore, registry_spec.datastore]
            )
            frame = load_version(record, stores, spec)
            wanted = {check: named[name][check] for check in check_names}
            for outcome in run_checks(frame, wanted):
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
