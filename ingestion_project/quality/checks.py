"""Declared dataset checks: their Dagster check specs, and their results on a dataset version.

The checks run in the op that registers the dataset, on the data it has just read (or on the
version's files when only the checks are run), so a version is read once for registration and
all of its checks. They are blocking: a failed check stops what depends on the dataset.
"""

from collections.abc import Iterator, Mapping

import dagster as dg
import pandas as pd

from ingestion_project.catalog.spec import CheckSpec, DatasetSpec
from ingestion_project.metadata import markdown_table
from ingestion_project.quality.expectations import check_description, check_name, run_checks
from ingestion_project.records import DatasetVersionRecord


def named_checks(spec: DatasetSpec) -> dict[str, CheckSpec]:
    """The dataset's declared checks by their asset-check names ('not_null', 'between_2')."""
    taken: set[str] = set()
    return {check_name(check, index, taken): check for index, check in enumerate(spec.checks)}


def check_specs(name: str, spec: DatasetSpec) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            name=check, asset=name, blocking=True, description=check_description(declared)
        )
        for check, declared in named_checks(spec).items()
    ]


def check_results(
    name: str,
    spec: DatasetSpec,
    record: DatasetVersionRecord,
    frame: pd.DataFrame,
    wanted: set[str],
) -> Iterator[dg.AssetCheckResult]:
    """Run the wanted checks of one dataset on ``frame``, the data of version ``record``."""
    checks: Mapping[str, CheckSpec] = {
        check: declared for check, declared in named_checks(spec).items() if check in wanted
    }
    for outcome in run_checks(frame, checks):
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
