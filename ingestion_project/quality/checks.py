"""Declared dataset checks as Dagster asset checks: their specs, and their results on a version.

A version is judged by its checks before it is recorded (``quality.gate``); the results the op
yields are that recorded verdict, so the data is not validated twice. They are blocking: a
failed check stops what depends on the dataset in the same run, and the failed version is never
taken as latest by anything that runs later.
"""

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dagster as dg
import pandas as pd

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.metadata import table
from ingestion_project.quality.expectations import check_description, run_checks
from ingestion_project.quality.gate import (
    checks_fingerprint,
    failure_row,
    judged_by,
    named_checks,
    quality_report,
    quality_word,
)
from ingestion_project.records import DatasetVersionRecord, FailedExpectation, QualityReport

__all__ = ["check_results", "check_specs", "failures_table", "named_checks"]

FAILURES_COLUMNS = [
    dg.TableColumn("check", "string"),
    dg.TableColumn("expectation", "string"),
    dg.TableColumn("column", "string"),
    dg.TableColumn("unexpected_count", "int"),
    dg.TableColumn("examples", "string", description="a few of the values that broke it"),
    dg.TableColumn("error", "string", description="why it could not be evaluated"),
]


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
        failures = [item for item in quality.failures if item.check == verdict.name]
        metadata: dict[str, Any] = {
            "dataset_version": record.version,
            "dataset_quality": quality_word(record),
            "expectations": verdict.expectations,
            "failed_expectations": len(failures),
        }
        if failures:
            metadata["failures"] = failures_table(failures)
        yield dg.AssetCheckResult(
            asset_key=name,
            check_name=verdict.name,
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=metadata,
        )


def failures_table(failures: Sequence[FailedExpectation]) -> dg.TableMetadataValue:
    """The expectations a version did not meet, as a table the UI renders."""
    return table([failure_row(failure) for failure in failures], FAILURES_COLUMNS)
