"""Records written by release 95d36db (before ``schema_version``) still load, as typed records.

The fixtures are that release's own output (see ``release_95d36db/README.md``): a CSV dataset in
reference mode with two versions, the same files as a snapshot, a ``kind: file`` dataset, a SQL
query snapshotted from PostgreSQL, and two versions of the demo model with their champion alias.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.api import Workspace
from ingestion_project.datasets.versions import (
    DatasetRegistry,
    Registration,
    dataset_registry,
    register_file_dataset,
    version_summary,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.records import (
    SCHEMA_VERSION,
    AliasRecord,
    ChampionComparison,
    DatasetLineage,
    DatasetVersionRecord,
    LoadOptions,
    ManifestEntry,
    ModelArtifact,
    ModelVersionRecord,
    ProfileRow,
    ReadOptions,
    SchemaColumn,
    TrainedOn,
    read_record,
    record_json,
)
from ingestion_project.training.registry import ModelRegistry
from ingestion_project_tests.catalogs import write_project
from ingestion_project_tests.records.make_fixtures import CATALOG

RELEASE = Path(__file__).parent / "release_95d36db" / "store"
REGISTRY = RELEASE / "_registry"
DATASET_FILES = sorted(REGISTRY.glob("datasets/*/v*.json"))
MODEL_FILES = sorted(REGISTRY.glob("models/*/v*.json"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An INGESTION_HOME whose default datastore is the release's, as that release left it."""
    root = tmp_path / "datastores" / "workspace_default"
    shutil.copytree(RELEASE, root)
    for path in DATASET_FILES:
        restore_modification_times(root, read_record(DatasetVersionRecord, path.read_bytes(), ""))
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    return tmp_path


def restore_modification_times(root: Path, record: DatasetVersionRecord) -> None:
    """A checkout gives files new times; a local ETag is the time, so put back the pinned one."""
    for entry in [*record.manifest, *(record.source_manifest or [])]:
        path = root / entry.path
        if path.exists():
            nanoseconds = int(entry.etag.split("-")[0], 16)
            os.utime(path, ns=(nanoseconds, nanoseconds))


@pytest.fixture
def store(home: Path) -> LocalDatastore:
    return LocalDatastore(
        name="workspace_default", root=str(home / "datastores" / "workspace_default")
    )


@pytest.fixture
def workspace(home: Path) -> Workspace:
    return Workspace.load(write_project(home / "project", {"catalog": CATALOG}), home=home)


def as_columns(entries: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """A schema-1 manifest (a list of entries) in the schema-2 shape, worked out by hand."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return {
        "etag": [entry["etag"] for entry in entries],
        "modified_us": [
            (datetime.fromisoformat(entry["modified"]) - epoch) // timedelta(microseconds=1)
            for entry in entries
        ],
        "path": [entry["path"] for entry in entries],
        "size": [entry["size"] for entry in entries],
    }


@pytest.mark.parametrize("path", DATASET_FILES + MODEL_FILES, ids=lambda path: path.stem)
def test_every_record_of_the_release_loads_and_writes_back_in_the_current_shape(
    path: Path,
) -> None:
    """Written back, a record gains its schema version (2) and its manifests become columns."""
    model = DatasetVersionRecord if "datasets" in path.parts else ModelVersionRecord
    stored = json.loads(path.read_bytes())

    record = read_record(model, path.read_bytes(), str(path))

    assert "schema_version" not in stored
    assert record.schema_version == SCHEMA_VERSION == 2
    expected = {**stored, "schema_version": 2}
    for key in ("manifest", "source_manifest"):
        if key in stored:
            expected[key] = as_columns(stored[key])
    assert json.loads(record_json(record)) == expected
    if isinstance(record, DatasetVersionRecord):
        assert [entry.model_dump(mode="json") for entry in record.manifest] == stored["manifest"]


def test_a_csv_dataset_version_loads_with_its_values(store: LocalDatastore) -> None:
    record = dataset_registry(store, "_registry").get("trips", 1)

    assert record.dataset == "trips"
    assert record.version == 1
    assert record.registered_at == datetime(2026, 12, 6, 2, 7, 13, 36568, tzinfo=UTC)
    assert record.kind == "tabular"
    assert record.mode == "reference"
    assert not record.is_snapshot
    assert (record.datastore, record.manifest_store) == ("workspace_default",) * 2
    assert record.path == "trips/*.csv"
    assert record.format == "csv"
    assert record.fingerprint.startswith("a55d04672f1f")
    assert record.listing_fingerprint is not None
    assert record.read_options == ReadOptions(separator=",", encoding="utf-8")
    assert record.load_options == LoadOptions(
        header=True,
        column_types={"station": "category", "trip_id": "string"},
        path_column="source_file",
        timestamp_column="started_at",
    )
    assert record.manifest == [
        ManifestEntry(
            path="trips/2024-05-01.csv",
            size=107,
            modified=datetime(2026, 12, 6, 2, 7, 11, 584454, tzinfo=UTC),
            etag="18ee87ff377865c4-6b",
        ),
        ManifestEntry(
            path="trips/2024-05-02.csv",
            size=73,
            modified=datetime(2026, 12, 6, 2, 7, 11, 584513, tzinfo=UTC),
            etag="18ee87ff37794cee-49",
        ),
    ]
    assert record.bytes == 180
    assert record.row_count == 3
    assert record.table_schema is not None
    assert [column.name for column in record.table_schema] == [
        "trip_id",
        "started_at",
        "station",
        "duration_min",
        "source_file",
    ]
    assert record.table_schema[0] == SchemaColumn(name="trip_id", type="string")
    assert record.profile is not None
    assert record.profile[0] == ProfileRow(
        column="trip_id", type="string", nulls=0, distinct=3, min="007", max="009"
    )
    assert record.profile[3] == ProfileRow(
        column="duration_min", type="float64", nulls=0, distinct=3, min=7.5, max=20, mean=13.166667
    )
    assert isinstance(record.profile[3].max, int)
    assert record.lineage == DatasetLineage(
        run_id="29d391f3-72f1-4d00-9d0a-d0bf35a011db", code_version="7f5bcafd10d1b341"
    )
    assert record.description == "Bike trips, one CSV a day."
    assert record.tags == {"domain": "mobility"}
    assert (record.snapshot_prefix, record.source_manifest, record.query) == (None, None, None)
    assert version_summary(record)["registered_at"] == "2026-12-06T02:07:13.036568+00:00"


def test_snapshot_file_and_sql_versions_load_with_their_values(store: LocalDatastore) -> None:
    registry = dataset_registry(store, "_registry")

    snapshot = registry.get("trips_snapshot", 1)
    assert snapshot.is_snapshot
    assert snapshot.snapshot_prefix == (
        "_registry/snapshots/trips_snapshot/460d0a5c8b144f27bee667e2598b7fe8"
    )
    assert [entry.path for entry in snapshot.source_manifest or []] == [
        "trips/2024-05-01.csv",
        "trips/2024-05-02.csv",
    ]
    assert all(entry.path.startswith(snapshot.snapshot_prefix) for entry in snapshot.manifest)

    files = registry.get("photos", 1)
    assert files.kind == "file"
    assert (files.table_schema, files.row_count, files.profile) == (None, None, None)
    assert [info.path for info in files.files()] == ["photos/a.txt"]

    orders = registry.get("orders", 1)
    assert (orders.mode, orders.datastore, orders.manifest_store) == (
        "snapshot",
        "warehouse",
        "workspace_default",
    )
    assert orders.query == (
        "SELECT id, name, amount FROM records_fixture_orders WHERE amount > :minimum ORDER BY id"
    )
    assert orders.params == {"minimum": 1}
    assert list(orders.tables or {}) == ["records_fixture_orders"]
    assert orders.batch_size == 50_000
    assert orders.warnings == []
    assert (orders.profile_method or "").startswith("streamed over every row")
    assert orders.read_options is None and orders.listing_fingerprint is None
    assert orders.profile is not None
    assert orders.profile[1] == ProfileRow(
        column="name", type="object", nulls=1, distinct=1, min="anna", max="anna"
    )


def test_model_versions_and_the_champion_alias_load_with_their_values(
    store: LocalDatastore,
) -> None:
    models = ModelRegistry(store, "_registry")

    first, second = models.versions.all("bikeshare_demand")
    champion = models.champion("bikeshare_demand")

    assert champion == second
    assert models.versions.get_alias("bikeshare_demand", "champion") == AliasRecord(
        version=2, reason="r2 0.6283 on the newest 558 rows beats champion v1's 0.4519"
    )
    assert first.compared_with is None
    assert second.model == "bikeshare_demand"
    assert second.estimator.kind == "random_forest"
    assert second.estimator.params == {"min_samples_leaf": 2, "n_estimators": 60}
    assert second.features[:2] == ["hr", "weekday"]
    assert second.categorical == ["weathersit"]
    assert (second.target, second.metric) == ("bikers", "r2")
    assert second.metrics == {"mae": 50.9374, "r2": 0.6283, "rmse": 78.1723}
    assert (second.train_rows, second.holdout_rows) == (2228, 558)
    assert second.compared_with == ChampionComparison(
        champion_version=1, champion_metrics={"mae": 61.6501, "r2": 0.4519, "rmse": 94.9226}
    )
    assert second.promoted
    assert second.decision == "r2 0.6283 on the newest 558 rows beats champion v1's 0.4519"
    assert second.artifact == ModelArtifact(
        path="_registry/artifacts/models/bikeshare_demand/8bd5432dea7e407a826f4919e9463de2.joblib",
        sha256="c71667dc759ef116cb815012b9316e4a94231f6da9416e7f550942a9eede4227",
    )
    assert second.lineage.run_id == "06665886-59dc-4e04-93b0-1343193cb083"
    assert second.lineage.code_version == "9a3fb9770ec90b7e"
    assert second.lineage.trained_on == TrainedOn(
        dataset="bikeshare_history",
        version=2,
        fingerprint="7cfb305652d907ddf9b9c6531f687a7a3009dec19f25d7225aafc3cc88274294",
    )
    trained_on = dataset_registry(store, "_registry").get("bikeshare_history", 2)
    assert trained_on.fingerprint == second.lineage.trained_on.fingerprint


def test_old_versions_read_through_the_workspace_as_registered(workspace: Workspace) -> None:
    first = workspace.get("trips", 1).to_pandas()
    latest = workspace.get("trips").to_pandas()

    assert first["trip_id"].tolist() == ["007", "008", "009"]
    assert str(first["station"].dtype) == "category"
    assert first["started_at"].tolist() == [
        pd.Timestamp("2024-05-01 08:00:00"),
        pd.Timestamp("2024-05-01 09:30:00"),
        pd.Timestamp("2024-05-02 07:45:00"),
    ]
    assert first["source_file"].tolist()[-1] == "trips/2024-05-02.csv"
    assert latest["trip_id"].tolist() == ["007", "008", "009", "010"]
    snapshot = workspace.get("trips_snapshot", 1).to_pandas()
    assert snapshot["trip_id"].tolist() == [7, 8, 9]
    assert_frame_equal(
        workspace.get("orders", 1).to_pandas(),
        pd.DataFrame({"id": [1, 2], "name": ["anna", None], "amount": [9.5, 12.25]}),
    )
    assert [info.path for info in workspace.get("photos", 1).files()] == ["photos/a.txt"]


def test_the_workspace_summarizes_old_versions_and_the_models_trained_on_them(
    workspace: Workspace,
) -> None:
    history = workspace.versions("bikeshare_history")

    assert [info.version for info in history] == [1, 2]
    assert history[1].rows == 2786
    assert history[1].registered_at == datetime(2026, 12, 6, 2, 7, 20, 208189, tzinfo=UTC)
    assert history[1].used_by == [
        {
            "model": "bikeshare_demand",
            "version": 2,
            "champion": True,
            "promoted": True,
            "metrics": {"mae": 50.9374, "r2": 0.6283, "rmse": 78.1723},
            "registered_at": "2026-12-06T02:07:21.290261+00:00",
        }
    ]
    latest = {summary.name: summary.latest for summary in workspace.datasets()}
    assert latest["trips"] is not None and latest["trips"].version == 2
    assert latest["photos"] is not None and latest["photos"].rows is None


def test_versions_registered_now_continue_the_release_numbers_with_a_schema_version(
    home: Path, store: LocalDatastore
) -> None:
    registry = dataset_registry(store, "_registry")
    old = registry.get("trips", 2)

    new = registry.register(
        "trips", lambda number: old.model_copy(update={"version": number, "registered_at": None})
    )

    assert new.version == 3
    folder = home / "datastores" / "workspace_default" / "_registry" / "datasets" / "trips"
    assert json.loads((folder / "v000003.json").read_bytes())["schema_version"] == 2
    assert registry.get("trips", 3) == new


def shape(value: Any) -> Any:
    """Keys and value types, not values: what a reader of the JSON depends on."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


def register_as_declared(
    name: str, spec: DatasetSpec, store: LocalDatastore, registry: DatasetRegistry
) -> Registration:
    """Register the catalog's dataset in ``store``, keeping snapshots in the same store."""
    return register_file_dataset(
        name,
        spec,
        store,
        registry,
        run_id="run",
        code_version="code",
        snapshot_store_name="workspace_default" if spec.mode == "snapshot" else None,
    )


@pytest.mark.parametrize("name", ["trips", "trips_snapshot", "photos"])
def test_file_datasets_registered_now_have_the_release_shape_with_manifests_as_columns(
    name: str, tmp_path: Path
) -> None:
    landing = LocalDatastore(name="workspace_default", root=str(tmp_path))
    for path in (RELEASE / "trips").glob("2024-05-0[12].csv"):
        landing.write_bytes(f"trips/{path.name}", path.read_bytes())
    landing.write_bytes("photos/a.txt", (RELEASE / "photos" / "a.txt").read_bytes())
    spec = DatasetSpec(**CATALOG["datasets"][name])
    registry = dataset_registry(landing, "_registry")

    register_as_declared(name, spec, landing, registry)

    written = tmp_path / "_registry" / "datasets" / name / "v000001.json"
    release = REGISTRY / "datasets" / name / "v000001.json"
    now = json.loads(written.read_bytes())
    then = json.loads(release.read_bytes())
    assert now.pop("schema_version") == 2
    for key in ("manifest", "source_manifest"):
        if key in then:
            then[key] = as_columns(then[key])
    assert shape(now) == shape(then)


@pytest.mark.parametrize("name", ["trips", "trips_snapshot", "photos"])
def test_the_release_files_unchanged_register_no_new_version(
    name: str, store: LocalDatastore
) -> None:
    """The listing fingerprint is taken as the release took it: an upgrade re-registers nothing."""
    spec = DatasetSpec(**CATALOG["datasets"][name])
    registry = dataset_registry(store, "_registry")
    latest = registry.latest(name, include_failed=True)
    assert latest is not None
    if name == "trips_snapshot":  # the snapshot was taken before the third day arrived
        store.delete("trips/2024-05-03.csv")

    result = register_as_declared(name, spec, store, registry)

    assert not result.created
    assert result.record.version == latest.version
    assert registry.version_numbers(name)[-1] == latest.version
