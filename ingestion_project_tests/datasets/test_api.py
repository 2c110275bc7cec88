"""The Python dataset API on real files: get a version by name, read, stream, download, open."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
import yaml
from pandas.testing import assert_frame_equal

from ingestion_project.catalog.loading import ProjectNotFoundError
from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.api import (
    DatasetVersion,
    DownloadConflictError,
    UnknownDatasetError,
    UnknownDatastoreError,
    Workspace,
    upload_files,
    write_dataframe,
)
from ingestion_project.datasets.versions import (
    DatasetError,
    DatasetVersionChangedError,
    NoPassingVersionError,
    Registration,
    SnapshotChangedError,
    register_file_dataset,
)
from ingestion_project.datastores.base import DatastoreError, FileDatastore, UnsafePathError
from ingestion_project.records import Manifest
from ingestion_project_tests.catalogs import materialize, project_definitions, write_project
from ingestion_project_tests.servers import require_tcp_server

JAN = "id,temp,station\n1,0.5,north\n2,,south\n3,1.5,north\n"
FEB = "id,temp,station\n4,2.5,east\n5,3.0,west\n"


def write_catalog(tmp_path: Path, more_datasets: dict[str, object] | None = None) -> Path:
    """A project whose catalog has a landing store with CSV datasets; returns the project folder.

    The registry lives in workspace_default under the home.
    """
    catalog = {
        "attributes": {
            "datastores": {
                "workspace_default": {"kind": "local"},
                "landing": {"kind": "local", "root": str(tmp_path / "landing")},
                "warehouse": {
                    "kind": "postgresql",
                    "host": "127.0.0.1",
                    "database": "test",
                    "user": "postgres",
                },
            },
            "datasets": {
                "rides": {"datastore": "landing", "path": "rides/*.csv"},
                "weather": {"datastore": "landing", "path": "weather/*.csv"},
                "uploaded": {"datastore": "landing", "path": "uploads/csv/*.csv"},
                "framed": {"datastore": "landing", "path": "frames/*.parquet"},
                "snap": {"datastore": "landing", "path": "snap/**/*.csv", "mode": "snapshot"},
                "docs": {"kind": "file", "datastore": "landing", "path": "docs/**"},
                **(more_datasets or {}),
            },
        },
    }
    return write_project(tmp_path / "project", {"catalog": catalog["attributes"]})


def catalog_file(project: Path) -> Path:
    return next(project.glob("*/defs/catalog/defs.yaml"))


def write(root: Path, relative: str, text: str) -> Path:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def bump_mtime(path: Path) -> None:
    """Move mtime forward so the ETag changes even when a fast test rewrites in the same tick."""
    stamp = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path / "home"))
    return Workspace.load(write_catalog(tmp_path))


def register(workspace: Workspace, name: str, run_id: str = "run-0001") -> Registration:
    spec = workspace.catalog.datasets[name]
    return register_file_dataset(
        name,
        spec,
        workspace.file_datastore(spec.datastore),
        workspace.registry,
        run_id=run_id,
        code_version=spec.fingerprint(),
        snapshot_store_name=workspace.catalog.registry.datastore,
    )


@pytest.fixture
def two_versions(workspace: Workspace, landing: Path) -> tuple[Registration, Registration]:
    write(landing, "rides/2011-01.csv", JAN)
    first = register(workspace, "rides")
    write(landing, "rides/2011-02.csv", FEB)
    return first, register(workspace, "rides")


def test_the_latest_version_is_the_default_and_reads_the_registered_rows(
    workspace: Workspace, two_versions: tuple[Registration, Registration]
) -> None:
    _, second = two_versions

    latest = workspace.get("rides")

    assert (latest.name, latest.version) == ("rides", 2)
    assert latest.record == second.record
    assert second.frame is not None
    assert_frame_equal(latest.to_pandas(), second.frame)


def test_an_explicit_version_reads_what_it_pinned_then(
    workspace: Workspace, two_versions: tuple[Registration, Registration]
) -> None:
    first, _ = two_versions

    old = workspace.get("rides", 1)

    assert old.version == 1
    assert old.to_pandas()["id"].tolist() == [1, 2, 3]
    assert first.frame is not None
    assert_frame_equal(old.to_pandas(), first.frame)
    assert [info.path for info in old.files()] == ["rides/2011-01.csv"]


@pytest.mark.parametrize("batch_size", [1, 2, 4, 65_536])
def test_iter_batches_stream_the_same_rows_in_bounded_batches(
    workspace: Workspace, two_versions: tuple[Registration, Registration], batch_size: int
) -> None:
    version = workspace.get("rides")

    batches = list(version.iter_batches(batch_size=batch_size))

    assert batches
    assert all(isinstance(batch, pa.RecordBatch) for batch in batches)
    assert all(0 < batch.num_rows <= batch_size for batch in batches)
    streamed = pa.Table.from_batches(batches).to_pandas()
    assert_frame_equal(streamed, version.to_pandas())


def test_a_non_positive_batch_size_is_refused(
    workspace: Workspace, two_versions: tuple[Registration, Registration]
) -> None:
    with pytest.raises(DatasetError, match="dataset 'rides': batch_size must be positive"):
        workspace.get("rides").iter_batches(batch_size=0)


def test_an_unknown_dataset_lists_the_declared_ones(workspace: Workspace) -> None:
    with pytest.raises(UnknownDatasetError) as raised:
        workspace.get("ridez")
    message = str(raised.value)
    assert "'ridez' is not a dataset of the project at" in message
    assert "known: rides, weather, uploaded, framed, snap, docs" in message
    with pytest.raises(UnknownDatasetError, match="known: rides"):
        workspace.versions("ridez")


def test_an_unknown_version_lists_the_registered_ones(
    workspace: Workspace, two_versions: tuple[Registration, Registration]
) -> None:
    with pytest.raises(UnknownDatasetError) as raised:
        workspace.get("rides", 7)
    message = str(raised.value)
    assert "dataset 'rides' has no version 7 (registered: 1, 2)" in message
    assert "leave the version out for the latest" in message


def test_a_dataset_without_versions_says_how_to_make_one(workspace: Workspace) -> None:
    with pytest.raises(UnknownDatasetError) as raised:
        workspace.get("weather")
    message = str(raised.value)
    assert "dataset 'weather' has no version yet" in message
    assert "dg launch --assets weather" in message
    assert workspace.versions("weather") == []


def test_datasets_and_versions_summarize_the_registry(
    workspace: Workspace, two_versions: tuple[Registration, Registration], landing: Path
) -> None:
    summaries = {item.name: item for item in workspace.datasets()}

    assert list(summaries) == ["rides", "weather", "uploaded", "framed", "snap", "docs"]
    rides = summaries["rides"]
    assert (rides.kind, rides.datastore, rides.path, rides.mode) == (
        "tabular",
        "landing",
        "rides/*.csv",
        "reference",
    )
    assert rides.latest is not None
    assert (rides.latest.version, rides.latest.rows, rides.latest.files) == (2, 5, 2)
    assert summaries["weather"].latest is None

    versions = workspace.versions("rides")
    assert [info.version for info in versions] == [1, 2]
    first = versions[0]
    assert (first.rows, first.files, first.bytes, first.mode) == (3, 1, len(JAN), "reference")
    assert first.run_id == "run-0001"
    assert first.fingerprint == two_versions[0].record.fingerprint
    assert first.registered_at is not None
    assert first.used_by == []


def test_a_dataset_removed_from_the_catalog_stays_readable_by_version(
    tmp_path: Path, workspace: Workspace, two_versions: tuple[Registration, Registration]
) -> None:
    path = catalog_file(tmp_path / "project")
    catalog = yaml.safe_load(path.read_text())
    del catalog["attributes"]["datasets"]["rides"]
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))

    later = Workspace.load(tmp_path / "project")

    assert later.get("rides", 1).to_pandas()["id"].tolist() == [1, 2, 3]
    assert "rides" not in [item.name for item in later.datasets()]


def test_download_writes_identical_bytes_below_the_common_folder(
    workspace: Workspace, two_versions: tuple[Registration, Registration], tmp_path: Path
) -> None:
    target = tmp_path / "out"
    calls: list[tuple[int, int]] = []

    written = workspace.get("rides").download(target, progress=lambda *p: calls.append(p))

    assert written == [target / "2011-01.csv", target / "2011-02.csv"]
    assert (target / "2011-01.csv").read_text() == JAN
    assert (target / "2011-02.csv").read_text() == FEB
    assert calls[0] == (0, len(JAN) + len(FEB))
    assert calls[-1] == (len(JAN) + len(FEB), len(JAN) + len(FEB))
    assert sorted(p.name for p in target.iterdir()) == ["2011-01.csv", "2011-02.csv"]

    again = workspace.get("rides").download(target)

    assert again == written


def test_download_refuses_to_overwrite_a_different_file(
    workspace: Workspace, two_versions: tuple[Registration, Registration], tmp_path: Path
) -> None:
    target = tmp_path / "out"
    same_size = write(target, "2011-02.csv", FEB.replace("east", "EAST"))

    with pytest.raises(DownloadConflictError) as raised:
        workspace.get("rides").download(target)

    assert f"{same_size} already exists and differs from 'rides/2011-02.csv'" in str(raised.value)
    assert "Download into an empty folder" in str(raised.value)
    assert same_size.read_text() == FEB.replace("east", "EAST")
    assert sorted(p.name for p in target.iterdir()) == ["2011-01.csv", "2011-02.csv"]

    other_size = write(tmp_path / "out2", "2011-01.csv", "something else")
    with pytest.raises(DownloadConflictError):
        workspace.get("rides").download(tmp_path / "out2")
    assert other_size.read_text() == "something else"
    assert [p.name for p in (tmp_path / "out2").iterdir()] == ["2011-01.csv"]


def test_download_refuses_pinned_paths_that_leave_the_target(
    workspace: Workspace, two_versions: tuple[Registration, Registration], tmp_path: Path
) -> None:
    record = workspace.get("rides", 1).record
    pinned = record.manifest[0]
    for escape in ("../../escape.csv", "/tmp/escape.csv"):
        manifest = [pinned, pinned.model_copy(update={"path": escape})]
        altered = record.model_copy(update={"manifest": Manifest.of(manifest)})
        tampered = DatasetVersion(workspace, "rides", altered)

        with pytest.raises(UnsafePathError, match=f"pinned path '{escape}' is not a safe"):
            tampered.download(tmp_path / "out" / "inner")

    assert not (tmp_path / "escape.csv").exists()
    assert not (tmp_path / "out").exists()


def test_download_refuses_a_symlink_out_of_the_target(
    workspace: Workspace, landing: Path, tmp_path: Path
) -> None:
    write(landing, "rides/nested/a.csv", JAN)
    write(landing, "rides/other/b.csv", JAN)
    spec = workspace.catalog.datasets["rides"].model_copy(update={"path": "rides/**/*.csv"})
    record = register_file_dataset(
        "rides",
        spec,
        workspace.file_datastore("landing"),
        workspace.registry,
        run_id=None,
        code_version="x",
    ).record
    target = tmp_path / "out"
    target.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (target / "nested").symlink_to(outside)

    with pytest.raises(UnsafePathError, match="outside"):
        DatasetVersion(workspace, "rides", record).download(target)

    assert list(outside.iterdir()) == []


def test_open_streams_only_pinned_files(
    workspace: Workspace, two_versions: tuple[Registration, Registration], landing: Path
) -> None:
    old = workspace.get("rides", 1)
    lazy = old.open("rides/2011-01.csv")

    with lazy as stream:
        assert stream.read() == JAN.encode()

    with pytest.raises(UnknownDatasetError) as raised, old.open("rides/2011-02.csv"):
        pass
    message = str(raised.value)
    assert "dataset 'rides' version 1 does not pin 'rides/2011-02.csv'" in message
    assert "rides/2011-01.csv" in message
    with pytest.raises(UnknownDatasetError), old.open("../landing/rides/2011-01.csv"):
        pass


def test_reference_mode_changes_surface_as_clear_errors(
    workspace: Workspace,
    two_versions: tuple[Registration, Registration],
    landing: Path,
    tmp_path: Path,
) -> None:
    version = workspace.get("rides", 2)
    opened_before = version.open("rides/2011-01.csv")  # lazy: checked only when entered
    pinned = write(landing, "rides/2011-01.csv", JAN.replace("0.5", "9.5"))
    bump_mtime(pinned)

    with pytest.raises(DatasetVersionChangedError) as loading:
        version.to_pandas()
    assert "dataset 'rides' version 2" in str(loading.value)
    assert "rides/2011-01.csv (modified)" in str(loading.value)

    with pytest.raises(DatasetVersionChangedError) as opening, opened_before:
        pass
    assert "'rides/2011-01.csv' in datastore 'landing' was modified" in str(opening.value)
    assert "materializing the dataset" in str(opening.value)

    with version.open("rides/2011-02.csv") as stream:
        assert stream.read() == FEB.encode()

    with pytest.raises(DatasetVersionChangedError, match=r"rides/2011-01\.csv \(modified\)"):
        version.download(tmp_path / "out")
    assert not (tmp_path / "out" / "2011-01.csv").exists()

    (landing / "rides" / "2011-02.csv").unlink()
    with (
        pytest.raises(DatasetVersionChangedError, match=r"'rides/2011-02\.csv' .* was deleted"),
        version.open("rides/2011-02.csv"),
    ):
        pass


def test_uploaded_files_and_a_written_frame_register_as_datasets(
    workspace: Workspace, tmp_path: Path
) -> None:
    local = tmp_path / "local"
    jan = write(local, "2011-01.csv", JAN)
    write(local, "more/2011-02.csv", FEB)
    write(local, "more/.hidden", "skipped")

    uploaded = upload_files(workspace, [jan, local / "more"], "landing", "uploads/csv")

    assert uploaded == ["uploads/csv/2011-01.csv", "uploads/csv/more/2011-02.csv"]
    assert (tmp_path / "landing" / "uploads" / "csv" / "2011-01.csv").read_text() == JAN
    assert upload_files(workspace, [jan], "landing", "uploads/csv") == [uploaded[0]]
    frame = pd.DataFrame({"id": [1, 2, 3], "score": [0.5, 1.5, None], "who": ["a", None, "c"]})
    path = write_dataframe(workspace, frame, "landing", "frames/scores.parquet")
    assert path == "frames/scores.parquet"

    uploaded_rows = register(workspace, "uploaded").record
    framed = register(workspace, "framed").record

    assert uploaded_rows.row_count == 3  # the glob is one folder deep: 2011-02 is below it
    assert_frame_equal(workspace.get("uploaded").to_pandas(), pd.read_csv(jan))
    assert framed.format == "parquet"
    assert_frame_equal(workspace.get("framed").to_pandas(), frame)


def test_uploads_and_writes_never_replace_a_different_file_unless_asked(
    workspace: Workspace, tmp_path: Path, landing: Path
) -> None:
    local = write(tmp_path / "local", "2011-01.csv", JAN)
    upload_files(workspace, [local], "landing", "uploads/csv")
    local.write_text(FEB)

    with pytest.raises(FileExistsError) as raised:
        upload_files(workspace, [local], "landing", "uploads/csv")
    assert "datastore 'landing' already has a different 'uploads/csv/2011-01.csv'" in str(
        raised.value
    )
    assert "overwrite=True" in str(raised.value)
    assert (landing / "uploads" / "csv" / "2011-01.csv").read_text() == JAN

    upload_files(workspace, [local], "landing", "uploads/csv", overwrite=True)
    assert (landing / "uploads" / "csv" / "2011-01.csv").read_text() == FEB

    frame = pd.DataFrame({"id": [1]})
    write_dataframe(workspace, frame, "landing", "frames/one.csv", format="csv")
    with pytest.raises(FileExistsError, match=r"already has 'frames/one\.csv'"):
        write_dataframe(workspace, frame, "landing", "frames/one.csv", format="csv")
    write_dataframe(workspace, frame, "landing", "frames/one.csv", format="csv", overwrite=True)


def test_a_folder_outside_any_project_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError, match=r"no Dagster project at .* Run the command"):
        Workspace.load(tmp_path)


def test_upload_and_write_errors_say_what_to_do(workspace: Workspace, tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [1]})
    with pytest.raises(DatasetError, match=r"should end in \.parquet"):
        write_dataframe(workspace, frame, "landing", "frames/scores.csv")
    with pytest.raises(DatasetError, match="format 'xlsx' is not one of parquet, csv, jsonl"):
        write_dataframe(workspace, frame, "landing", "frames/a.xlsx", format="xlsx")
    with pytest.raises(UnknownDatastoreError, match="declared: landing, warehouse, workspace"):
        write_dataframe(workspace, frame, "lnding", "frames/a.parquet")
    with pytest.raises(DatastoreError, match="'warehouse' is a SQL database"):
        upload_files(workspace, [], "warehouse", "x")
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        upload_files(workspace, [tmp_path / "missing.csv"], "landing", "x")
    with pytest.raises(UnsafePathError):
        upload_files(workspace, [], "landing", "../outside")


def test_versions_registered_by_materializing_the_asset_carry_the_run_id(
    workspace: Workspace, landing: Path
) -> None:
    write(landing, "weather/a.csv", JAN)
    assert workspace.project_root is not None
    defs = project_definitions(workspace.project_root)

    result = materialize(defs, "weather")

    assert result.success
    (info,) = workspace.versions("weather")
    assert info.run_id == result.run_id
    assert workspace.get("weather").to_pandas()["id"].tolist() == [1, 2, 3]


def test_the_demo_catalog_reads_the_demo_data_and_knows_the_model_trained_on_it(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    result = materialize(defs, "bikeshare_history", "bikeshare_demand", instance=instance)
    assert result.success

    workspace = Workspace.load()

    assert workspace.home == home.resolve()
    history = workspace.get("bikeshare_history")
    frame = history.to_pandas()
    assert len(frame) == history.record.row_count
    assert frame["timestamp"].is_monotonic_increasing
    batches = list(history.iter_batches(batch_size=1000))
    assert len(batches) > 1
    assert max(batch.num_rows for batch in batches) <= 1000
    assert_frame_equal(pa.Table.from_batches(batches).to_pandas(), frame)
    assert [info.path.rsplit("/", 1)[-1] for info in history.files()] == [
        f"2011-0{month}.csv" for month in (1, 2, 3, 4)
    ]
    (use,) = history.used_by()
    assert (use["model"], use["version"], use["champion"], use["promoted"]) == (
        "bikeshare_demand",
        1,
        True,
        True,
    )
    assert "r2" in use["metrics"]
    (info,) = workspace.versions("bikeshare_history")
    assert info.used_by == [use]
    summaries = {item.name: item for item in workspace.datasets()}
    assert summaries["bikeshare_history"].latest == info
    assert summaries["bikeshare_scoring"].latest is None


@pytest.fixture
def orders_table() -> Iterator[str]:
    require_tcp_server("127.0.0.1", 5432, "PostgreSQL")
    table = f"api_orders_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (id integer primary key, amount float)"))
        conn.execute(
            sa.text(f"INSERT INTO {table} VALUES (:id, :amount)"),
            [{"id": i, "amount": i * 1.5} for i in range(1, 8)],
        )
    try:
        yield table
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def test_a_sql_dataset_version_reads_its_parquet_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, orders_table: str
) -> None:
    from ingestion_project.datasets.sql_datasets import register_sql_dataset

    monkeypatch.setenv("INGESTION_HOME", str(tmp_path / "home"))
    query = f"SELECT id, amount FROM {orders_table} WHERE id >= :low ORDER BY id"
    spec = DatasetSpec(datastore="warehouse", query=query, params={"low": 2})
    declared = Workspace.load(write_catalog(tmp_path))
    catalog = dataclasses.replace(
        declared.catalog, datasets={**declared.catalog.datasets, "orders": spec}
    )
    workspace = Workspace(catalog, declared.home)
    sql_store = workspace.datastore("warehouse")
    assert not isinstance(sql_store, FileDatastore)
    register_sql_dataset(
        "orders",
        spec,
        sql_store,
        workspace.registry,
        workspace.file_datastore("workspace_default"),
        "workspace_default",
        "_registry",
        run_id="run-sql",
        code_version=spec.fingerprint(),
        batch_size=2,
        part_rows=4,
    )
    with engine_rows(sql_store, query) as expected:
        version = workspace.get("orders")

        assert version.mode == "snapshot"
        assert_frame_equal(version.to_pandas(), expected)
        batches = list(version.iter_batches(batch_size=3))
        assert max(batch.num_rows for batch in batches) <= 3
        assert_frame_equal(pa.Table.from_batches(batches).to_pandas(), expected)
    files = version.files()
    assert files and all(info.path.endswith(".parquet") for info in files)
    written = version.download(tmp_path / "out")
    assert [path.parent for path in written] == [tmp_path / "out"] * len(files)
    assert pd.concat(map(pd.read_parquet, written), ignore_index=True)["id"].tolist() == list(
        range(2, 8)
    )
    with version.open(files[0].path) as stream:
        assert stream.read(4) == b"PAR1"


@contextmanager
def engine_rows(store: object, query: str) -> Iterator[pd.DataFrame]:
    """The query's rows read directly, to compare with the snapshot."""
    from ingestion_project.datastores.sql import SqlDatastore

    assert isinstance(store, SqlDatastore)
    yield store.read_sql(query, {"low": 2})


def test_a_snapshot_version_keeps_reading_its_copies_after_the_originals_change(
    workspace: Workspace, landing: Path, tmp_path: Path
) -> None:
    write(landing, "snap/a/2011-01.csv", JAN)
    write(landing, "snap/b/2011-02.csv", FEB)
    registered = register(workspace, "snap").record
    write(landing, "snap/a/2011-01.csv", "id,temp,station\n9,9.9,nowhere\n")
    (landing / "snap" / "b" / "2011-02.csv").unlink()

    version = workspace.get("snap")

    assert version.mode == "snapshot"
    assert version.to_pandas()["id"].tolist() == [1, 2, 3, 4, 5]
    streamed = pa.Table.from_batches(list(version.iter_batches(batch_size=2))).to_pandas()
    assert_frame_equal(streamed, version.to_pandas())
    written = version.download(tmp_path / "out")
    assert written == [
        tmp_path / "out" / "a" / "2011-01.csv",
        tmp_path / "out" / "b" / "2011-02.csv",
    ]
    assert [path.read_text() for path in written] == [JAN, FEB]
    copy = version.files()[0].path
    assert copy.startswith(f"{registered.snapshot_prefix}/")
    with version.open(copy) as stream:
        assert stream.read() == JAN.encode()

    copied = workspace.home / "datastores" / "workspace_default" / copy
    copied.write_text(JAN.replace("north", "NORTH"))
    bump_mtime(copied)
    with pytest.raises(SnapshotChangedError) as raised, version.open(copy):
        pass
    assert "is a snapshot, but its copy" in str(raised.value)
    assert "Snapshot copies must never be edited" in str(raised.value)


def test_a_file_dataset_lists_downloads_and_opens_but_has_no_table(
    workspace: Workspace, landing: Path, tmp_path: Path
) -> None:
    (landing / "docs" / "img").mkdir(parents=True)
    (landing / "docs" / "img" / "a.png").write_bytes(bytes(range(256)) * 10)
    write(landing, "docs/readme.txt", "hello")
    register(workspace, "docs")

    version = workspace.get("docs")

    assert [info.path for info in version.files()] == ["docs/img/a.png", "docs/readme.txt"]
    (info,) = workspace.versions("docs")
    assert (info.kind, info.rows, info.files, info.bytes) == ("file", None, 2, 2565)
    assert version.download(tmp_path / "out") == [
        tmp_path / "out" / "img" / "a.png",
        tmp_path / "out" / "readme.txt",
    ]
    assert (tmp_path / "out" / "img" / "a.png").read_bytes() == bytes(range(256)) * 10
    with version.open("docs/readme.txt") as stream:
        assert stream.read() == b"hello"
    with pytest.raises(DatasetError, match="is a file dataset"):
        version.to_pandas()


CHECKED = {
    "checked": {
        "datastore": "landing",
        "path": "checked/*.csv",
        "checks": [{"columns": ["id", "temp"]}, {"between": {"temp": [0, 1]}}],
    },
    "hot": {"datastore": "landing", "path": "hot/*.csv", "checks": [{"between": {"temp": [0, 1]}}]},
}
GOOD_TEMPS = "id,temp\n1,0.5\n2,0.7\n"
HOT_TEMPS = "id,temp\n3,0.6\n4,41.0\n"


def gated_workspace(tmp_path: Path, landing: Path) -> Workspace:
    """'checked': a passing version 1, then version 2 with a temp out of range; 'hot': only that.

    INGESTION_HOME must be set.
    """
    workspace = Workspace.load(write_catalog(tmp_path, CHECKED))
    write(landing, "checked/a.csv", GOOD_TEMPS)
    register(workspace, "checked")
    write(landing, "checked/b.csv", HOT_TEMPS)
    register(workspace, "checked")
    write(landing, "hot/a.csv", HOT_TEMPS)
    register(workspace, "hot")
    return workspace


@pytest.fixture
def gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, landing: Path) -> Workspace:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path / "home"))
    return gated_workspace(tmp_path, landing)


def test_the_default_version_is_the_latest_that_passed_and_a_failed_one_reads_by_number(
    gated: Workspace,
) -> None:
    latest = gated.get("checked")
    failed = gated.get("checked", 2)

    assert latest.version == 1 and latest.passed
    assert latest.to_pandas()["id"].tolist() == [1, 2]
    assert not failed.passed
    assert failed.quality is not None and failed.quality.failed_checks == ["between"]
    assert repr(failed) == "DatasetVersion('checked', version=2, quality='FAILED checks: between')"
    assert failed.to_pandas()["id"].tolist() == [1, 2, 3, 4]
    assert [(info.version, info.quality) for info in gated.versions("checked")] == [
        (1, "passed"),
        (2, "failed"),
    ]
    summaries = {summary.name: summary for summary in gated.datasets()}
    checked = summaries["checked"]
    assert checked.latest is not None and checked.latest.version == 1
    assert checked.newest is not None and checked.newest.version == 2
    assert checked.newest.quality_text == "FAILED checks: between"
    assert summaries["hot"].latest is None


def test_a_dataset_whose_every_version_failed_has_no_default_and_says_why(
    gated: Workspace,
) -> None:
    with pytest.raises(NoPassingVersionError) as caught:
        gated.get("hot")

    assert str(caught.value) == (
        "dataset 'hot' has no version that passed its checks; version 1 failed between(temp): "
        "1 unexpected value (e.g. 41.0). Fix the data (or the checks, if they are wrong) and "
        "materialize 'hot' again. Version 1 stays readable by its number. To materialize it: "
        "dg launch --assets hot"
    )
    assert not gated.get("hot", 1).passed
