"""The quality gate's verdicts, their bounded record, and "latest" meaning latest that passed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.versions import (
    DatasetError,
    DatasetRegistry,
    NoPassingVersionError,
    dataset_registry,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.quality.gate import (
    EXAMPLES_RECORDED,
    FAILURES_RECORDED,
    TEXT_RECORDED,
    checked_columns,
    checks_fingerprint,
    failure_text,
    judge,
    quality_word,
)
from ingestion_project.records import (
    CheckVerdict,
    DatasetVersionRecord,
    FailedExpectation,
    QualityReport,
    read_record,
    record_json,
)

CHECKS = [
    {"columns": ["id", "temp"]},
    {"not_null": ["id"]},
    {"between": {"temp": [0, 1]}},
    {"unique": ["id"]},
]


def spec(checks: list[dict[str, object]] | None = None) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {
            "datastore": "landing",
            "path": "rides/*.csv",
            "checks": CHECKS if checks is None else checks,
        }
    )


@pytest.fixture(scope="module")
def failed() -> QualityReport:
    """A schema change (temp gone) and a missing id, judged in one run."""
    frame = pd.DataFrame({"id": [1.0, None, 3.0], "station": ["a", "b", "c"]})
    report = judge(spec(), frame)
    assert report is not None
    return report


def test_data_that_meets_every_check_passes_with_a_verdict_per_check() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "temp": [0.0, 0.5, 1.0]})

    report = judge(spec(), frame)

    assert report is not None
    assert report.status == "passed" and report.passed
    assert report.checks == [
        CheckVerdict(name="columns", passed=True, expectations=2),
        CheckVerdict(name="not_null", passed=True, expectations=1),
        CheckVerdict(name="between", passed=True, expectations=1),
        CheckVerdict(name="unique", passed=True, expectations=1),
    ]
    assert report.failures == [] and report.failed_checks == []
    assert report.checks_fingerprint == checks_fingerprint(spec())


def test_a_dataset_without_checks_gets_no_verdict() -> None:
    assert judge(spec([]), pd.DataFrame({"id": [1]})) is None


def test_a_failed_verdict_names_the_checks_and_the_expectations_that_failed(
    failed: QualityReport,
) -> None:
    assert failed.status == "failed"
    assert failed.failed_checks == ["columns", "not_null", "between"]
    by_check = {(item.check, item.column): item for item in failed.failures}
    assert by_check[("columns", "temp")].expectation == "expect_column_to_exist"
    assert failure_text(by_check[("columns", "temp")]) == "columns(temp): the column is missing"
    missing_id = by_check[("not_null", "id")]
    assert (missing_id.unexpected_count, missing_id.examples) == (1, ["nan"])
    assert failure_text(missing_id) == "not_null(id): 1 unexpected value (e.g. nan)"
    # A range on a column that is not there cannot be evaluated: the error says why.
    assert "temp" in (by_check[("between", "temp")].error or "")


def test_what_a_record_keeps_of_failures_is_bounded() -> None:
    columns = [f"c{index}" for index in range(FAILURES_RECORDED + 5)]
    long_text = "x" * (TEXT_RECORDED * 2)
    frame = pd.DataFrame({column: [None] * 3 for column in columns})
    frame["text"] = [f"{long_text}{index}" for index in range(3)]
    frame = pd.concat([frame] * 4, ignore_index=True)  # every text 4 times: 12 duplicates

    report = judge(spec([{"not_null": columns}, {"unique": ["text"]}]), frame)

    assert report is not None
    assert len(report.failures) == FAILURES_RECORDED
    assert report.failures_not_recorded == 6
    assert report.failed_checks == ["not_null", "unique"]
    assert all(len(item.examples) <= EXAMPLES_RECORDED for item in report.failures)
    assert all(
        len(example) <= TEXT_RECORDED for item in report.failures for example in item.examples
    )


def test_the_checks_fingerprint_follows_the_declaration_not_its_spelling() -> None:
    assert checks_fingerprint(spec()) == checks_fingerprint(spec(list(CHECKS)))
    assert checks_fingerprint(spec()) != checks_fingerprint(spec([{"between": {"temp": [0, 2]}}]))
    assert checked_columns(spec()) == {"id", "temp"}


def record(version: int, quality: QualityReport | None) -> DatasetVersionRecord:
    return DatasetVersionRecord(
        dataset="rides",
        version=version,
        fingerprint=f"f{version}",
        datastore="landing",
        manifest_store="landing",
        quality=quality,
    )


PASSED = QualityReport(
    status="passed", checks=[CheckVerdict(name="not_null", passed=True)], checks_fingerprint="c"
)
FAILED = QualityReport(
    status="failed",
    checks=[CheckVerdict(name="not_null", passed=False, expectations=1)],
    checks_fingerprint="c",
    failures=[
        FailedExpectation(
            check="not_null",
            expectation="expect_column_values_to_not_be_null",
            column="id",
            unexpected_count=2,
            examples=["nan", "nan"],
        )
    ],
)


def test_the_quality_section_round_trips_and_a_record_without_one_counts_as_passed() -> None:
    failed_record = record(2, FAILED)

    stored = json.loads(record_json(failed_record))
    again = read_record(DatasetVersionRecord, record_json(failed_record), "test")

    assert stored["quality"]["status"] == "failed"
    assert stored["quality"]["failures"][0]["unexpected_count"] == 2
    assert again == failed_record and not again.passed
    assert quality_word(again) == "FAILED checks: not_null"
    unchecked = record(1, None)
    assert "quality" not in json.loads(record_json(unchecked))
    assert unchecked.passed and quality_word(unchecked) == "unchecked"
    assert record(3, PASSED).passed and quality_word(record(3, PASSED)) == "passed"


@pytest.fixture
def registry(tmp_path: Path) -> DatasetRegistry:
    return dataset_registry(LocalDatastore(name="registry", root=str(tmp_path)), "_reg")


def add(registry: DatasetRegistry, quality: QualityReport | None) -> DatasetVersionRecord:
    return registry.register("rides", lambda number: record(number, quality))


def test_latest_is_the_newest_version_that_passed_its_checks(registry: DatasetRegistry) -> None:
    add(registry, None)
    add(registry, PASSED)
    add(registry, FAILED)
    add(registry, FAILED)

    latest = registry.latest("rides")
    newest = registry.latest("rides", include_failed=True)

    assert latest is not None and latest.version == 2
    assert registry.require_latest("rides").version == 2
    assert newest is not None and newest.version == 4 and not newest.passed
    assert not registry.get("rides", 3).passed  # a failed version stays readable by number


def test_without_a_passing_version_the_error_says_what_failed_and_what_to_do(
    registry: DatasetRegistry,
) -> None:
    with pytest.raises(DatasetError, match="has no version yet: materialize 'rides' first"):
        registry.require_latest("rides")
    add(registry, FAILED)
    add(registry, FAILED)

    with pytest.raises(NoPassingVersionError) as caught:
        registry.require_latest("rides")

    assert registry.latest("rides") is None
    assert str(caught.value) == (
        "dataset 'rides' has no version that passed its checks (all 2 versions failed); "
        "version 2 failed not_null(id): 2 unexpected values (e.g. nan, nan). Fix the data (or "
        "the checks, if they are wrong) and materialize 'rides' again. Version 2 stays readable "
        "by its number."
    )
