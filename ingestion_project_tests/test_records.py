"""Version records: strict when built, tolerant of unknown keys when read, refused when too new."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from pydantic import TypeAdapter, ValidationError

from ingestion_project.cli import cli
from ingestion_project.datasets.versions import dataset_registry
from ingestion_project.datastores.base import FileColumns, FileInfo
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.records import (
    AliasRecord,
    DatasetLineage,
    DatasetVersionRecord,
    Manifest,
    ManifestEntry,
    ProfileRow,
    RecordError,
    indented_json,
    read_record,
    record_json,
)
from ingestion_project.training.registry import ModelRegistry
from ingestion_project_tests.catalogs import write_project

MOMENT = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def dataset_record(**changes: Any) -> DatasetVersionRecord:
    fields: dict[str, Any] = {
        "dataset": "trips",
        "version": 1,
        "fingerprint": "f" * 64,
        "datastore": "landing",
        "manifest_store": "landing",
        "manifest": [ManifestEntry(path="a.csv", size=3, modified=MOMENT, etag="e1")],
        "bytes": 3,
        "row_count": 2,
    }
    return DatasetVersionRecord(**{**fields, **changes})


def stored(record: DatasetVersionRecord, **changes: Any) -> dict[str, Any]:
    return {**json.loads(record_json(record)), **changes}


def read(data: dict[str, Any]) -> DatasetVersionRecord:
    return read_record(DatasetVersionRecord, json.dumps(data).encode(), "dataset 'trips' v1")


@pytest.fixture
def store(tmp_path: Path) -> LocalDatastore:
    return LocalDatastore(name="workspace_default", root=str(tmp_path))


def test_a_record_is_written_with_its_schema_version_and_read_back_equal() -> None:
    record = dataset_record()

    data = json.loads(record_json(record))

    assert data["schema_version"] == 2
    assert data["manifest"] == {
        "etag": ["e1"],
        "modified_us": [int(MOMENT.timestamp()) * 1_000_000],
        "path": ["a.csv"],
        "size": [3],
    }
    assert read(data) == record
    assert read(data).manifest[0].modified == MOMENT


def test_keys_a_version_does_not_carry_are_left_out_not_written_as_null() -> None:
    data = json.loads(record_json(dataset_record()))

    assert data["row_count"] == 2
    for absent in ("schema", "profile", "query", "snapshot_prefix", "source_manifest"):
        assert absent not in data
    assert data["lineage"] == {"run_id": None, "code_version": None, "upstream": []}


def test_unknown_keys_in_a_stored_record_are_ignored_at_every_level() -> None:
    data = stored(dataset_record(), added_later="x")
    data["manifest"]["md5"] = ["abc"]
    data["lineage"]["approved_by"] = "someone"

    record = read(data)

    assert record == dataset_record()


def test_building_a_record_with_an_unknown_field_is_an_error() -> None:
    with pytest.raises(ValidationError, match="added_later"):
        dataset_record(added_later="x")
    with pytest.raises(ValidationError, match="approved_by"):
        DatasetLineage(approved_by="someone")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="schema_version"):
        dataset_record(schema_version=3)


def test_a_record_from_a_newer_release_says_to_upgrade() -> None:
    data = stored(dataset_record(), schema_version=3, manifest="a new shape")

    with pytest.raises(RecordError) as raised:
        read(data)

    message = str(raised.value)
    assert "dataset 'trips' v1 has record schema version 3" in message
    assert "this release of ingestion_project reads versions up to 2" in message
    assert "Upgrade ingestion_project to read it." in message


def test_a_damaged_record_names_the_file_and_the_problem() -> None:
    with pytest.raises(RecordError, match=r"is not valid JSON .* Restore it"):
        read_record(DatasetVersionRecord, b'{"dataset": ', "dataset 'trips' v1")
    with pytest.raises(
        RecordError, match=r"not a valid dataset version record \(manifest\.0\.size"
    ):
        read(stored(dataset_record(), manifest=[{"path": "a.csv", "size": "big"}]))
    columns = stored(dataset_record())["manifest"]
    for damaged, problem in [
        ({**columns, "size": ["big"]}, r"manifest column 'size' must be a list of int"),
        ({**columns, "etag": ["e1", "e2"]}, r"manifest columns differ in length \(\[1, 2\]\)"),
        ({"path": columns["path"]}, r"manifest columns \['etag', 'modified_us', 'size'\]"),
        ("a new shape", r"a manifest is a list of files or columns of them"),
    ]:
        with pytest.raises(RecordError, match=problem):
            read(stored(dataset_record(), manifest=damaged))


def test_records_of_the_first_release_load_with_the_defaults_it_implied() -> None:
    """Before kind, mode, manifest_store and load_options were recorded (commit dba6143)."""
    data = {
        "dataset": "rides",
        "version": 1,
        "fingerprint": "f" * 64,
        "mode": "reference",
        "datastore": "landing",
        "path": "rides/*.csv",
        "format": "csv",
        "read_options": {"separator": ",", "encoding": "utf-8"},
        "manifest": [],
        "bytes": 0,
        "lineage": {"run_id": None, "code_version": "c", "upstream": []},
        "description": "",
        "tags": {},
    }

    record = read(data)

    assert (record.kind, record.mode, record.manifest_store) == ("tabular", "reference", "landing")
    assert record.load_options is None
    assert record.schema_version == 2  # read into this release's shape


def test_the_registry_refuses_a_version_from_a_newer_release(store: LocalDatastore) -> None:
    registry = dataset_registry(store, "_registry")
    registry.register("trips", lambda number: dataset_record(version=number))
    path = Path(store.root) / "_registry" / "datasets" / "trips" / "v000001.json"
    path.write_text(json.dumps(stored(dataset_record(), schema_version=3)))

    with pytest.raises(RecordError) as raised:
        registry.get("trips", 1)

    message = str(raised.value)
    assert message.startswith(
        "dataset 'trips' version 1 ('_registry/datasets/trips/v000001.json' in datastore "
        "'workspace_default') has record schema version 3"
    )
    assert "Upgrade ingestion_project" in message


def test_the_cli_shows_a_too_new_version_as_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    store = LocalDatastore(
        name="workspace_default", root=str(tmp_path / "datastores" / "workspace_default")
    )
    folder = Path(store.root) / "_registry" / "datasets" / "trips"
    folder.mkdir(parents=True)
    newer = stored(dataset_record(datastore="workspace_default"), schema_version=3)
    (folder / "v000001.json").write_text(json.dumps(newer))
    catalog = {"datasets": {"trips": {"path": "trips/*.csv"}}}
    project = write_project(tmp_path / "project", {"catalog": catalog})

    result = CliRunner().invoke(cli, ["datasets", "show", "trips", "--project", str(project)])

    assert result.exit_code == 1
    assert "Error: dataset 'trips' version 1" in result.output
    assert "Upgrade ingestion_project to read it." in result.output
    assert "Traceback" not in result.output


def test_an_alias_from_a_newer_release_says_to_upgrade(store: LocalDatastore) -> None:
    models = ModelRegistry(store, "_registry")
    models.versions.set_alias("demand", "champion", AliasRecord(version=1, reason="first"))
    path = Path(store.root) / "_registry" / "models" / "demand" / "champion.alias.json"
    path.write_text(json.dumps({"version": 1, "schema_version": 3}))

    with pytest.raises(RecordError, match=r"model 'demand' alias 'champion' .* Upgrade"):
        models.champion("demand")


def slow_json(value: object) -> str:
    """What records were written with before: json's pure-Python indenting encoder."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


MANIFEST_ROWS = [
    {"path": f"données/part={i % 7}/{i:04d}%s.csv", "size": i, "modified": "t", "etag": f"{i:x}"}
    for i in range(50)
]


@pytest.mark.parametrize(
    "value",
    [
        {"manifest": MANIFEST_ROWS, "dataset": "trips", "tags": {}, "warnings": []},
        MANIFEST_ROWS,
        [{"%s": math.nan, "b": math.inf, "c": None, "d": True, "e": 1e16, "\n": '\u2028 "q"'}],
        [{"a": 1}, {"b": 1}],
        [{"a": 1}, {"a": [1, 2]}],
        [{"a": MOMENT}],
        [{}, {}],
        [{"a": 1}, "not a row"],
        {"nested": {"rows": MANIFEST_ROWS[:3]}, "empty": [], "none": None},
        {1: "a key that is not text"},
        {},
        [],
        "text",
        -1.5,
    ],
)
def test_indented_json_writes_exactly_what_json_dumps_writes(value: object) -> None:
    assert indented_json(value) == slow_json(value)


def test_indented_json_matches_json_dumps_on_random_values() -> None:
    choose = random.Random(0)
    keys = ["a", "b", "é", "%s", "%", "\n", '"', "\\"]
    scalars = [None, True, False, 0, -7, 2.5, math.nan, -math.inf, "s", 'ü"\\\n', "%d", MOMENT]

    def value(depth: int) -> object:
        pick = choose.random()
        if depth < 3 and pick < 0.2:
            return {choose.choice(keys): value(depth + 1) for _ in range(choose.randint(0, 3))}
        if depth < 3 and pick < 0.35:
            return [value(depth + 1) for _ in range(choose.randint(0, 3))]
        if depth < 2 and pick < 0.55:
            names = choose.sample(keys, choose.randint(0, 4))
            return [{name: value(3) for name in names} for _ in range(choose.randint(0, 4))]
        return choose.choice(scalars)

    for _ in range(2000):
        data = {choose.choice(keys): value(0) for _ in range(choose.randint(0, 4))}
        assert indented_json(data) == slow_json(data)


def test_a_large_record_is_written_as_json_dumps_writes_it_but_its_manifests_as_columns() -> None:
    files = [
        ManifestEntry(path=f"données/{i:05d}%.csv", size=i, modified=MOMENT, etag=f"{i:x}")
        for i in range(2000)
    ]
    record = dataset_record(
        manifest=files,
        source_manifest=files[:10],
        profile=[ProfileRow(column="x", type="float64", nulls=0, distinct=None, mean=math.nan)],
        params={"since": MOMENT, "path": Path("a")},
        registered_at=MOMENT,
    )

    text = record_json(record).decode()

    data = json.loads(text)
    rest = text
    for key, count in [("manifest", 2000), ("source_manifest", 10)]:
        columns = data.pop(key)
        assert len(columns["path"]) == count
        lines = [f"    {json.dumps(name)}: {json.dumps(columns[name])}" for name in sorted(columns)]
        block = f'  "{key}": {{\n' + ",\n".join(lines) + "\n  },\n"
        assert block in rest
        rest = rest.replace(block, "")
    assert rest == slow_json(data)
    assert data["params"] == {"since": str(MOMENT), "path": "a"}
    assert read(json.loads(text)).manifest == files


@pytest.mark.parametrize(
    ("paths", "numbers"),
    [
        (["data/a.csv", "data/b c.csv"], [0, 1, 2**40, 2**70]),
        (['quote".csv', "b.csv"], [-1, 0, 5, 7]),
        (["back\\slash.csv", "b.csv"], [-1, 0, 5, 7]),
        (["tab\t.csv", "b.csv"], [True, 1, 2, 3]),
        (["del\x7f.csv", "b.csv"], [1, 2, True, 3]),
        (["é.csv", "b.csv"], [1, 1e-7, 3, 4]),
        (["\u2028.csv", "b.csv"], [1, 2, 3, 4.0]),
        (["a.csv", "b.csv"], [1, math.nan, 3, 4]),
        (["%s.csv", "{}.csv"], [1, -(2**63), 2**64, 9]),
    ],
)
def test_manifest_columns_are_written_as_json_dumps_writes_them(
    paths: list[str], numbers: list[Any]
) -> None:
    """Plain text is joined and whole numbers encoded by pydantic-core, faster: the same text."""
    halves = [numbers[:2], numbers[2:]]
    columns = FileColumns(paths, halves[0], halves[1], [path.upper() for path in paths])
    text = record_json(dataset_record(manifest=Manifest(columns))).decode()

    stored = {"etag": columns.etags, "modified_us": halves[1], "path": paths, "size": halves[0]}
    lines = [f"    {json.dumps(name)}: {json.dumps(stored[name])}" for name in sorted(stored)]
    assert '  "manifest": {\n' + ",\n".join(lines) + "\n  },\n" in text


@pytest.mark.parametrize(
    "moment",
    [
        MOMENT,
        TypeAdapter(datetime).validate_python("2024-05-01T08:00:00.5+00:00"),
        datetime(2024, 1, 1, 8, tzinfo=ZoneInfo("Europe/London")),
        datetime(2024, 10, 27, 1, 30, fold=1, tzinfo=ZoneInfo("Europe/London")),
        datetime(2024, 5, 1, 8, tzinfo=ZoneInfo("Europe/Paris")),
        datetime(2024, 5, 1, 8, tzinfo=timezone(timedelta(hours=-3), "BRT")),
        datetime(2024, 5, 1, 8),
    ],
)
def test_a_recorded_time_keeps_its_instant_with_a_plain_offset(moment: datetime) -> None:
    """The shortcuts for UTC give what ``replace(tzinfo=timezone(offset))`` gives."""
    offset = moment.utcoffset()
    expected = moment if offset is None else moment.replace(tzinfo=timezone(offset))

    modified = ManifestEntry(path="a.csv", size=1, modified=moment, etag="e").modified

    assert modified == expected
    assert (modified.tzinfo, modified.fold) == (expected.tzinfo, expected.fold)
    assert modified.isoformat() == expected.isoformat()


def test_a_utc_time_reads_back_as_datetime_utc() -> None:
    record = read(stored(dataset_record()))

    assert record.manifest[0].modified.tzinfo is UTC


def test_a_manifest_holds_the_entries_made_one_by_one_at_their_instants_in_utc() -> None:
    files = [
        FileInfo(path="a.csv", size=3, modified=MOMENT, etag="e1"),
        FileInfo(
            path="b.csv", size=0, modified=datetime(2024, 1, 1, tzinfo=ZoneInfo("UTC")), etag="e2"
        ),
        FileInfo(
            path="c.csv",
            size=9,
            modified=datetime(2024, 5, 1, 8, tzinfo=ZoneInfo("Asia/Tokyo")),
            etag="e3",
        ),
    ]

    manifest = Manifest.of(files)

    assert manifest == [ManifestEntry.of(info) for info in files]
    assert manifest == files
    assert [entry.modified.tzinfo for entry in manifest] == [UTC, UTC, UTC]
    assert manifest.infos() == [
        FileInfo(info.path, info.size, info.modified.astimezone(UTC), info.etag) for info in files
    ]
    assert manifest[1:] == Manifest.of(files[1:]) and manifest[1:] != manifest
    assert (len(manifest), manifest[-1].path, repr(manifest)) == (3, "c.csv", "Manifest(3 files)")
