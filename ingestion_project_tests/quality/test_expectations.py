"""Great Expectations takes seconds to import, so each case is validated once per module."""

import pandas as pd
import pytest

from ingestion_project.catalog.spec import (
    BetweenCheck,
    CheckSpec,
    ColumnsCheck,
    NotNullCheck,
    UniqueCheck,
)
from ingestion_project.quality.expectations import (
    CheckOutcome,
    check_description,
    check_name,
    run_checks,
)

FRAME = pd.DataFrame(
    {
        "id": [1, 2, 2, 4, 5],
        "temp": [0.1, 0.5, 1.5, None, -0.5],
        "station": ["a", None, "c", "d", "e"],
    }
)


def outcomes_by_name(frame: pd.DataFrame, checks: dict[str, CheckSpec]) -> dict[str, CheckOutcome]:
    return {outcome.name: outcome for outcome in run_checks(frame, checks)}


@pytest.fixture(scope="module")
def passing() -> dict[str, CheckOutcome]:
    return outcomes_by_name(
        FRAME,
        {
            "not_null": NotNullCheck(not_null=["id"]),
            "between": BetweenCheck(between={"temp": (-1.0, 2.0), "id": (1, 5)}),
            "unique": UniqueCheck(unique=["station"]),
            "columns": ColumnsCheck(columns=["id", "temp", "station"]),
        },
    )


@pytest.fixture(scope="module")
def failing() -> dict[str, CheckOutcome]:
    """Every kind of check fails once, on a different column, in one validation run."""
    return outcomes_by_name(
        FRAME,
        {
            "not_null": NotNullCheck(not_null=["id", "station"]),
            "between": BetweenCheck(between={"temp": (0.0, 1.0)}),
            "unique": UniqueCheck(unique=["id"]),
            "columns": ColumnsCheck(columns=["id", "humidity"]),
        },
    )


def test_checks_that_hold_pass_with_no_failures(passing: dict[str, CheckOutcome]) -> None:
    assert list(passing) == ["not_null", "between", "unique", "columns"]
    for outcome in passing.values():
        assert outcome.passed, outcome
        assert outcome.failures == []
    assert {name: outcome.expectations for name, outcome in passing.items()} == {
        "not_null": 1,
        "between": 2,
        "unique": 1,
        "columns": 3,
    }


def test_each_check_counts_its_own_expectations(failing: dict[str, CheckOutcome]) -> None:
    assert list(failing) == ["not_null", "between", "unique", "columns"]
    assert {name: outcome.expectations for name, outcome in failing.items()} == {
        "not_null": 2,
        "between": 1,
        "unique": 1,
        "columns": 2,
    }


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        pytest.param(
            "not_null",
            [("expect_column_values_to_not_be_null", "station", 1)],
        ),
        pytest.param(
            "between",
            [("expect_column_values_to_be_between", "temp", 2)],
        ),
        pytest.param(
            "unique",
            [("expect_column_values_to_be_unique", "id", 2)],
        ),
        pytest.param(
            "columns",
            [("expect_column_to_exist", "humidity", None)],
        ),
    ],
)
def test_each_broken_check_fails_naming_its_column_and_unexpected_count(
    failing: dict[str, CheckOutcome], check: str, expected: list[tuple[str, str, int | None]]
) -> None:
    failures = failing[check].failures

    assert not failing[check].passed
    assert [
        (failure["expectation"], failure["column"], failure["unexpected_count"])
        for failure in failures
    ] == expected


@pytest.mark.parametrize(
    ("frame", "check", "expected"),
    [
        (
            pd.DataFrame({"id": [1, None, None]}),
            NotNullCheck(not_null=["id"]),
            ("expect_column_values_to_not_be_null", "id", 2),
        ),
        (
            pd.DataFrame({"temp": [0.5, 3.0, -2.0, 0.7]}),
            BetweenCheck(between={"temp": (0.0, 1.0)}),
            ("expect_column_values_to_be_between", "temp", 2),
        ),
        (
            pd.DataFrame({"id": [1, 1, 1, 2]}),
            UniqueCheck(unique=["id"]),
            ("expect_column_values_to_be_unique", "id", 3),
        ),
        (
            pd.DataFrame({"id": [1]}),
            ColumnsCheck(columns=["temp"]),
            ("expect_column_to_exist", "temp", None),
        ),
    ],
    ids=["not_null", "between", "unique", "columns"],
)
def test_a_single_failing_check_reports_its_column_and_count(
    frame: pd.DataFrame, check: CheckSpec, expected: tuple[str, str, int | None]
) -> None:
    [outcome] = run_checks(frame, {"only": check})

    assert outcome.name == "only"
    assert not outcome.passed
    assert outcome.expectations == 1
    [failure] = outcome.failures
    assert (failure["expectation"], failure["column"], failure["unexpected_count"]) == expected


def test_failure_examples_are_strings_and_at_most_five() -> None:
    frame = pd.DataFrame({"temp": [float(value) for value in range(10, 20)]})

    [outcome] = run_checks(frame, {"range": BetweenCheck(between={"temp": (0.0, 1.0)})})

    [failure] = outcome.failures
    assert failure["unexpected_count"] == 10
    assert failure["examples"] == ["10.0", "11.0", "12.0", "13.0", "14.0"]


def test_check_names_are_readable_and_unique() -> None:
    checks: list[CheckSpec] = [
        NotNullCheck(not_null=["id"]),
        BetweenCheck(between={"temp": (0, 1)}),
        NotNullCheck(not_null=["station"]),
        UniqueCheck(unique=["id"]),
        NotNullCheck(not_null=["temp"]),
        ColumnsCheck(columns=["id"]),
        BetweenCheck(between={"id": (0, 9)}),
    ]
    taken: set[str] = set()

    names = [check_name(check, index, taken) for index, check in enumerate(checks)]

    assert names == [
        "not_null",
        "between",
        "not_null_2",
        "unique",
        "not_null_4",
        "columns",
        "between_6",
    ]
    assert taken == set(names)


@pytest.mark.parametrize(
    ("check", "description"),
    [
        (NotNullCheck(not_null=["id", "temp"]), "No missing values in id, temp."),
        (
            BetweenCheck(between={"temp": (0, 1), "hum": (0, 100)}),
            "Values within range: temp in [0.0, 1.0]; hum in [0.0, 100.0].",
        ),
        (UniqueCheck(unique=["id"]), "Unique values in id."),
        (ColumnsCheck(columns=["id", "temp"]), "Columns present: id, temp."),
    ],
)
def test_check_description(check: CheckSpec, description: str) -> None:
    assert check_description(check) == description
