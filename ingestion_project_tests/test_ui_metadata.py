"""What the web UI shows: typed, narrow metadata, and definitions that read like the catalog.

The demo project is materialized once (train, score, monitor, labels arrive) and every
materialization's metadata is checked for what the UI needs: tables with a schema and few
columns instead of markdown tables, timestamps instead of ISO text, run ids as links, and plain
numbers for the series the UI plots.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from ingestion_project.demo.loop import HISTORY, INCOMING, demo_definitions
from ingestion_project.metadata import TEXT_CHARS
from ingestion_project_tests.catalogs import materialize
from ingestion_project_tests.conftest import PROJECT_CATALOG, place_month

MAX_COLUMNS = 7
"""A table of up to seven short columns fits the asset page on a 1440 px screen."""
MICROSECONDS = re.compile(r"\d{2}:\d{2}:\d{2}\.\d{6}")

Metadata = dict[str, dg.MetadataValue]


class Demo:
    """The demo project after one pass of its loop, and every materialization's metadata."""

    def __init__(self, home: Path) -> None:
        self.defs = demo_definitions()
        self.instance = dg.DagsterInstance.ephemeral()
        self.runs: list[dg.ExecuteInProcessResult] = []
        self.events: dict[str, list[Metadata]] = {}
        self.run("bikeshare_history", "bikeshare_demand", "busy_hours")
        self.run("bikeshare_demand")  # already trained on this version: skipped
        self.run(
            "bikeshare_scoring",
            "bikeshare_demand_predictions",
            "busy_hours_predictions",
            "bikeshare_drift",
            "busy_hours_drift",
        )
        place_month(home, HISTORY, 5)  # May's actual rentals join the history
        self.run("bikeshare_history", "busy_hours_performance")

    def run(self, *assets: str) -> dg.ExecuteInProcessResult:
        result = materialize(self.defs, *assets, instance=self.instance)
        assert result.success
        self.runs.append(result)
        for event in result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            name = materialization.asset_key.to_user_string()
            self.events.setdefault(name, []).append(dict(materialization.metadata))
        return result

    def last(self, asset: str) -> Metadata:
        return self.events[asset][-1]

    def first(self, asset: str) -> Metadata:
        return self.events[asset][0]

    def all_values(self) -> Iterator[tuple[str, str, dg.MetadataValue]]:
        for asset, events in self.events.items():
            for metadata in events:
                for key, value in metadata.items():
                    yield asset, key, value


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INGESTION_HOME", str(home))
        for month in (1, 2, 3, 4):
            place_month(home, HISTORY, month)
        place_month(home, INCOMING, 5)
        yield Demo(home)


def columns_of(value: dg.MetadataValue) -> list[str]:
    assert isinstance(value, dg.TableMetadataValue)
    assert value.schema is not None, "a table carries a schema, so the UI types its columns"
    return [column.name for column in value.schema.columns]


@pytest.mark.slow
def test_versions_and_profile_are_typed_narrow_tables(demo: Demo) -> None:
    history = demo.last("bikeshare_history")
    assert columns_of(history["versions"]) == [
        "version",
        "quality",
        "registered",
        "rows",
        "files",
        "fingerprint",
        "run",
    ]
    versions = history["versions"]
    assert isinstance(versions, dg.TableMetadataValue)
    assert [row.data["version"] for row in versions.records] == [2, 1]
    assert all(len(str(row.data["fingerprint"])) == 12 for row in versions.records)
    assert columns_of(history["profile"]) == ["column", "type", "nulls", "distinct"]
    assert columns_of(history["profile_stats"]) == ["column", "min", "max", "mean"]
    stats = history["profile_stats"]
    assert isinstance(stats, dg.TableMetadataValue)
    temp = next(row.data for row in stats.records if row.data["column"] == "temp")
    assert isinstance(temp["mean"], float)
    assert columns_of(history["file_list"]) == ["path", "bytes", "modified"]
    assert isinstance(history["dagster/column_schema"], dg.TableSchemaMetadataValue)


@pytest.mark.slow
def test_every_table_fits_the_screen_and_no_markdown_table_is_left(demo: Demo) -> None:
    tables = 0
    for asset, key, value in demo.all_values():
        if isinstance(value, dg.MarkdownMetadataValue):
            assert "|---" not in value.value, f"{asset}.{key} is a markdown table"
        if isinstance(value, dg.TableMetadataValue):
            tables += 1
            assert len(columns_of(value)) <= MAX_COLUMNS, f"{asset}.{key} is too wide"
            for row in value.records:
                for cell in row.data.values():
                    text = str(cell)
                    assert len(text) <= TEXT_CHARS, f"{asset}.{key}: {text}"
                    assert not MICROSECONDS.search(text), f"{asset}.{key}: {text}"
    assert tables >= 10


@pytest.mark.slow
def test_times_are_timestamps_and_no_text_shows_microseconds(demo: Demo) -> None:
    registered = demo.last("bikeshare_history")["registered_at"]
    assert isinstance(registered, dg.TimestampMetadataValue)
    for asset, key, value in demo.all_values():
        if isinstance(value, dg.TextMetadataValue | dg.MarkdownMetadataValue):
            assert not MICROSECONDS.search(value.value), f"{asset}.{key}: {value.value}"


@pytest.mark.slow
def test_runs_and_files_are_links_and_empty_lineage_is_left_out(demo: Demo) -> None:
    history = demo.first("bikeshare_history")
    link = history["registered_by_run"]
    assert isinstance(link, dg.DagsterRunMetadataValue)
    assert link.run_id == demo.runs[0].run_id
    assert "upstream" not in history, "an empty lineage is left out, not shown as []"

    skipped = demo.events["bikeshare_demand"][1]
    assert skipped["trained"].value is False
    trained_by = skipped["trained_by_run"]
    assert isinstance(trained_by, dg.DagsterRunMetadataValue)
    assert trained_by.run_id == demo.runs[0].run_id

    predictions = demo.last("bikeshare_demand_predictions")
    assert isinstance(predictions["path"], dg.PathMetadataValue)
    drift = demo.last("bikeshare_drift")
    assert isinstance(drift["result_path"], dg.PathMetadataValue)
    for asset, key, value in demo.all_values():
        if isinstance(value, dg.JsonMetadataValue):
            assert value.value not in ([], {}), f"{asset}.{key} shows an empty {value.value}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("asset", "key", "kind"),
    [
        ("bikeshare_history", "dagster/row_count", dg.IntMetadataValue),
        ("bikeshare_history", "version", dg.IntMetadataValue),
        ("bikeshare_demand", "holdout_r2", dg.FloatMetadataValue),
        ("busy_hours", "holdout_auc", dg.FloatMetadataValue),
        ("bikeshare_demand_predictions", "dagster/row_count", dg.IntMetadataValue),
        ("bikeshare_demand_predictions", "mean_prediction", dg.FloatMetadataValue),
        ("busy_hours_predictions", "estimated_auc", dg.FloatMetadataValue),
        ("busy_hours_predictions", "reference_auc", dg.FloatMetadataValue),
        ("bikeshare_drift", "drift_share", dg.FloatMetadataValue),
        ("bikeshare_drift", "drift_magnitude", dg.FloatMetadataValue),
        ("busy_hours_drift", "prediction_drift", dg.FloatMetadataValue),
        ("busy_hours_performance", "realized_auc", dg.FloatMetadataValue),
        ("busy_hours_performance", "estimated_auc", dg.FloatMetadataValue),
    ],
)
def test_series_people_compare_over_time_are_plain_numbers(
    demo: Demo, asset: str, key: str, kind: type[dg.MetadataValue]
) -> None:
    assert isinstance(demo.first(asset)[key], kind), demo.first(asset)[key]


@pytest.mark.slow
def test_model_and_monitor_tables_fit_and_are_typed(demo: Demo) -> None:
    assert columns_of(demo.first("bikeshare_demand")["versions"]) == [
        "version",
        "r2",
        "promoted",
        "trained_on",
        "registered",
        "run",
    ]
    preview = demo.last("busy_hours_predictions")["preview"]
    assert "prediction" in columns_of(preview) and "probability" in columns_of(preview)
    drift = demo.last("bikeshare_drift")
    assert "p_value" in columns_of(drift["features"])
    assert "nulls" in columns_of(drift["feature_quality"])
    windows = demo.last("busy_hours_performance")["windows"]
    assert columns_of(windows) == [
        "window",
        "model_version",
        "estimated_auc",
        "realized_auc",
        "labelled_rows",
    ]
    assert isinstance(windows, dg.TableMetadataValue)
    assert [row.data["window"] for row in windows.records] == ["bikeshare_scoring v1"]


@pytest.mark.slow
def test_check_results_carry_a_table_only_when_something_failed(demo: Demo) -> None:
    evaluations = [
        evaluation for result in demo.runs for evaluation in result.get_asset_check_evaluations()
    ]
    assert evaluations and all(evaluation.passed for evaluation in evaluations)
    for evaluation in evaluations:
        metadata = evaluation.metadata
        assert "failures" not in metadata
        assert isinstance(metadata["failed_expectations"], dg.IntMetadataValue)


def declared(section: str) -> dict[str, dict[str, Any]]:
    return yaml.safe_load(PROJECT_CATALOG.read_text(encoding="utf-8"))["attributes"][section]


def test_every_definition_reads_like_the_catalog(home: Path) -> None:
    from ingestion_project.definitions import defs

    loaded = defs()
    graph = loaded.resolve_asset_graph()
    models = declared("models")
    owners = {
        name: entry.get("owners", [])
        for section in ("datasets", "models", "monitors")
        for name, entry in declared(section).items()
    }
    for model, entry in models.items():
        for derived in (f"{model}_predictions", f"{model}_performance"):
            owners[derived] = entry.get("owners", [])
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        name = key.to_user_string()
        assert node.description, name
        assert node.kinds, name
        assert node.group_name in {"datasets", "models", "monitoring"}, name
        assert list(node.owners) == owners[name], name
    assert owners["bikeshare_history"] and owners["bikeshare_demand_predictions"]
    for name, entry in declared("datasets").items():
        node = graph.get(dg.AssetKey(name))
        assert node.description == entry["description"]
        assert dict(entry.get("tags", {})).items() <= dict(node.tags).items()
    checks = [
        spec
        for assets in loaded.assets or []
        if isinstance(assets, dg.AssetsDefinition)
        for spec in assets.check_specs
    ]
    assert {spec.key for spec in checks} == set(graph.asset_check_keys)
    for spec in checks:
        assert spec.description, spec.key
    jobs = [job for job in loaded.resolve_all_job_defs() if job.name != "__ASSET_JOB"]
    triggers = [*jobs, *(loaded.sensors or []), *(loaded.schedules or [])]
    assert len(triggers) >= 10
    for definition in triggers:
        assert definition.description, definition.name
