"""The quality gate: a dataset version is judged by its declared checks before it is recorded.

A version whose checks fail is still registered, so its data stays readable by number, but its
record says ``quality.status == "failed"`` and it is never anyone's latest (training, scoring,
monitors, the API's default and the CLI all use ``DatasetRegistry.latest``). Nothing here
imports Dagster: registration outside Dagster judges versions the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ingestion_project.catalog.spec import (
    BetweenCheck,
    CheckSpec,
    ColumnsCheck,
    DatasetSpec,
    NotNullCheck,
    UniqueCheck,
)
from ingestion_project.quality.expectations import CheckOutcome, check_name, run_checks
from ingestion_project.records import (
    CheckVerdict,
    DatasetVersionRecord,
    FailedExpectation,
    QualityReport,
)

if TYPE_CHECKING:
    import pandas as pd

# Bounds on what a record keeps of failures: enough to act on, never the bad data itself.
FAILURES_RECORDED = 25
EXAMPLES_RECORDED = 5
TEXT_RECORDED = 120
FAILURES_IN_MESSAGES = 3


def named_checks(spec: DatasetSpec) -> dict[str, CheckSpec]:
    """The dataset's declared checks by their asset-check names ('not_null', 'between_2')."""
    taken: set[str] = set()
    return {check_name(check, index, taken): check for index, check in enumerate(spec.checks)}


def checks_fingerprint(spec: DatasetSpec) -> str:
    """Identifies the declared checks, so a verdict can say which declaration it came from."""
    declared = [[name, check.model_dump(mode="json")] for name, check in named_checks(spec).items()]
    return hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()[:16]


def checked_columns(spec: DatasetSpec) -> set[str]:
    """Every column a declared check looks at: all that judging a version needs to read."""
    columns: set[str] = set()
    for check in spec.checks:
        if isinstance(check, NotNullCheck):
            columns.update(check.not_null)
        elif isinstance(check, BetweenCheck):
            columns.update(check.between)
        elif isinstance(check, UniqueCheck):
            columns.update(check.unique)
        elif isinstance(check, ColumnsCheck):
            columns.update(check.columns)
    return columns


def judge(spec: DatasetSpec, frame: pd.DataFrame) -> QualityReport | None:
    """The verdict of the declared checks on a version's data; None when none are declared."""
    checks = named_checks(spec)
    if not checks:
        return None
    return quality_report(checks_fingerprint(spec), run_checks(frame, checks))


def quality_report(fingerprint: str, outcomes: Sequence[CheckOutcome]) -> QualityReport:
    """Check outcomes as a record's bounded quality section."""
    failures = [
        FailedExpectation(
            check=outcome.name,
            expectation=str(failure["expectation"]),
            column=None if failure.get("column") is None else str(failure["column"]),
            unexpected_count=_count(failure.get("unexpected_count")),
            examples=[_short(str(v)) for v in (failure.get("examples") or [])][:EXAMPLES_RECORDED],
            error=None if not failure.get("error") else _short(str(failure["error"])),
        )
        for outcome in outcomes
        for failure in outcome.failures
    ]
    return QualityReport(
        status="passed" if all(outcome.passed for outcome in outcomes) else "failed",
        checks=[
            CheckVerdict(
                name=outcome.name, passed=outcome.passed, expectations=outcome.expectations
            )
            for outcome in outcomes
        ],
        checks_fingerprint=fingerprint,
        failures=failures[:FAILURES_RECORDED],
        failures_not_recorded=max(0, len(failures) - FAILURES_RECORDED),
    )


def judged_by(record: DatasetVersionRecord, spec: DatasetSpec) -> bool:
    """Whether the version's recorded verdict came from the checks declared now."""
    quality = record.quality
    return quality is not None and quality.checks_fingerprint == checks_fingerprint(spec)


def judge_again(record: DatasetVersionRecord, spec: DatasetSpec) -> bool:
    """A failed version whose checks have changed since is judged again, as a new version.

    Without this, unchanged data failed by a wrong check could never pass once the check is
    fixed. Passed versions are not re-registered when checks change.
    """
    return not record.passed and not judged_by(record, spec)


def quality_word(record: DatasetVersionRecord) -> str:
    """'passed', 'FAILED checks: not_null, between', or 'unchecked' (no verdict recorded)."""
    quality = record.quality
    if quality is None:
        return "unchecked"
    if quality.passed:
        return "passed"
    return f"FAILED checks: {', '.join(quality.failed_checks)}"


def failure_text(failure: FailedExpectation) -> str:
    """One failed expectation for people: 'not_null(id): 2 unexpected values (e.g. nan, nan)'."""
    where = f"{failure.check}({failure.column})" if failure.column else failure.check
    if failure.error:
        return f"{where}: {failure.error}"
    if failure.expectation == "expect_column_to_exist":
        return f"{where}: the column is missing"
    if failure.unexpected_count is not None:
        noun = "value" if failure.unexpected_count == 1 else "values"
        examples = f" (e.g. {', '.join(failure.examples)})" if failure.examples else ""
        return f"{where}: {failure.unexpected_count} unexpected {noun}{examples}"
    return f"{where}: {failure.expectation} failed"


def failures_text(quality: QualityReport, limit: int = FAILURES_IN_MESSAGES) -> str:
    """The first failures of a verdict, joined for a one-line message."""
    shown = [failure_text(failure) for failure in quality.failures[:limit]]
    more = len(quality.failures) - limit + quality.failures_not_recorded
    if more > 0:
        shown.append(f"and {more} more")
    return "; ".join(shown) or f"checks {', '.join(quality.failed_checks)}"


def failure_row(failure: FailedExpectation) -> dict[str, str | int | None]:
    """A failed expectation as a table row (Dagster metadata, the CLI)."""
    return {
        "check": failure.check,
        "expectation": failure.expectation,
        "column": failure.column,
        "unexpected_count": failure.unexpected_count,
        "examples": ", ".join(failure.examples),
        "error": failure.error,
    }


def no_passing_version_message(name: str, newest: DatasetVersionRecord, versions: int) -> str:
    """Why a dataset has no latest version: every version failed; the newest says how."""
    quality = newest.quality
    failed = f"version {newest.version} failed " + (
        failures_text(quality) if quality is not None else "its checks"
    )
    every = f" (all {versions} versions failed)" if versions > 1 else ""
    return (
        f"dataset '{name}' has no version that passed its checks{every}; {failed}. Fix the data "
        f"(or the checks, if they are wrong) and materialize '{name}' again. Version "
        f"{newest.version} stays readable by its number."
    )


def _count(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TEXT_RECORDED else f"{text[: TEXT_RECORDED - 3]}..."
