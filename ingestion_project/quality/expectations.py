"""Translate declared checks into Great Expectations suites and run them on a DataFrame."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ingestion_project.catalog.spec import (
    BetweenCheck,
    CheckSpec,
    ColumnsCheck,
    NotNullCheck,
    UniqueCheck,
)


@dataclass(frozen=True)
class CheckOutcome:
    """Result of one declared check: passed only if all of its expectations passed."""

    name: str
    passed: bool
    failures: list[dict[str, Any]] = field(default_factory=list)
    expectations: int = 0


def check_name(check: CheckSpec, index: int, taken: set[str]) -> str:
    """A readable, unique asset-check name such as 'not_null' or 'between_2'."""
    base = next(iter(type(check).model_fields))
    name = base if base not in taken else f"{base}_{index}"
    taken.add(name)
    return name


def check_description(check: CheckSpec) -> str:
    if isinstance(check, NotNullCheck):
        return f"No missing values in {', '.join(check.not_null)}."
    if isinstance(check, BetweenCheck):
        ranges = (f"{col} in [{low}, {high}]" for col, (low, high) in check.between.items())
        return "Values within range: " + "; ".join(ranges) + "."
    if isinstance(check, UniqueCheck):
        return f"Unique values in {', '.join(check.unique)}."
    return f"Columns present: {', '.join(check.columns)}."


def run_checks(frame: pd.DataFrame, checks: dict[str, CheckSpec]) -> list[CheckOutcome]:
    """Validate ``frame`` against each named check with one Great Expectations run."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    batch = (
        context.data_sources.add_pandas("pandas")
        .add_dataframe_asset(name="frame")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(name="declared_checks")
    counts = dict.fromkeys(checks, 0)
    for name, check in checks.items():
        for expectation in _expectations(gx, check):
            # GX reorders results (grouped by column), so each expectation carries its owner.
            expectation.meta = {**(expectation.meta or {}), "check": name}
            suite.add_expectation(expectation)
            counts[name] += 1
    result = batch.validate(suite)
    failures: dict[str, list[dict[str, Any]]] = {name: [] for name in checks}
    for item in result.results:
        config = item.expectation_config
        assert config is not None, "GX returns the configuration of every validated expectation"
        owner = config.meta["check"]
        if not item.success:
            details = item.result or {}
            failures[owner].append(
                {
                    "expectation": config.type,
                    "column": config.kwargs.get("column"),
                    "unexpected_count": details.get("unexpected_count"),
                    "examples": [str(v) for v in (details.get("partial_unexpected_list") or [])][
                        :5
                    ],
                    "error": _error_message(item.exception_info),
                }
            )
    return [CheckOutcome(name, not failures[name], failures[name], counts[name]) for name in checks]


def _error_message(info: Any) -> str | None:
    """Why GX could not evaluate an expectation (e.g. its column is missing), if it could not.

    GX keeps either one {raised_exception, exception_message} or one such mapping per metric.
    """
    if not isinstance(info, dict):
        return None
    found = [info] if "raised_exception" in info else list(info.values())
    for item in found:
        if isinstance(item, dict) and item.get("exception_message"):
            return str(item["exception_message"]).removeprefix("Error: ")
    return None


def _expectations(gx: Any, check: CheckSpec) -> list[Any]:
    expect = gx.expectations
    if isinstance(check, NotNullCheck):
        return [expect.ExpectColumnValuesToNotBeNull(column=c) for c in check.not_null]
    if isinstance(check, BetweenCheck):
        return [
            expect.ExpectColumnValuesToBeBetween(column=c, min_value=low, max_value=high)
            for c, (low, high) in check.between.items()
        ]
    if isinstance(check, UniqueCheck):
        return [expect.ExpectColumnValuesToBeUnique(column=c) for c in check.unique]
    assert isinstance(check, ColumnsCheck)
    return [expect.ExpectColumnToExist(column=c) for c in check.columns]
