"""Declared dataset checks as Dagster asset checks: their specs, and their results on a version.

A version is judged by its checks before it is recorded (``quality.gate``); the results the op
yields are that recorded verdict, so the data is not validated twice. They are blocking: a
failed check stops what depends on the dataset in the same run, and the failed version is never
taken as latest by anything that runs later.
"""

from collections.abc import Callable, Iterator

import dagster as dg
import pandas as pd

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.metadata import markdown_table
from ingestion_project.quality.expectations import check_description, run_checks
from ingestion_project.quality.gate import (
    checks_fingerprint,
    failure_row,
    judged_by,
    named_checks,
    quality_report,
    quality_word,
)
from ingestion_project.records import DatasetVersionRecord, QualityReport

__all__ = ["check_results", "check_specs", "named_checks"]


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
    wanted: set[str],
    data: Callable[[], pd.DataFrame],
) -> Iterator[dg.AssetCheckResult]:
    """The wanted checks of one dataset on version ``record``.

    The recorded verdict when the version was judged by the checks declared now; otherwise
    (recorded before checks were, or judged by other checks) the checks run on ``data()``.
    """
    quality = record.quality if judged_by(record, spec) else None
    if quality is None:
        checks = {
            check: declared for check, declared in named_checks(spec).items() if check in wanted
        }
        quality = quality_report(checks_fingerprint(spec), run_checks(data(), checks))
    yield from _results(name, record, quality, wanted)


def _results(
    name: str, record: DatasetVersionRecord, quality: QualityReport, wanted: set[str]
) -> Iterator[dg.AssetCheckResult]:
    for verdict in quality.checks:
        if verdict.name not in wanted:
            continue
        failures = [failure_row(item) for item in quality.failures if item.check == verdict.name]
        yield dg.AssetCheckResult(
            asset_key=name,
            check_name=verdict.name,
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "dataset_version": record.version,
                "dataset_quality": quality_word(record),
                "expectations": verdict.expectations,
                "failures": dg.MetadataValue.md(markdown_table(failures)),
            },
        )
