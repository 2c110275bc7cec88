import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestion_project.datastores.base import (
    FileColumns,
    FileInfo,
    UnsafePathError,
    glob_matches,
    glob_name_suffix,
    glob_prefix,
    listing_digest,
    microseconds_since_epoch,
    utc_from_microseconds,
    validate_glob,
)
from ingestion_project.datastores.local import LocalDatastore

STORE = "landing"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def store(root: Path) -> LocalDatastore:
    return LocalDatastore(name=STORE, root=str(root))


def put(root: Path, relative: str, data: bytes = b"x") -> Path:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def listed(store: LocalDatastore, pattern: str) -> list[str]:
    return [info.path for info in store.list_files(pattern)]


def test_star_stays_within_one_segment(store: LocalDatastore, root: Path) -> None:
    for path in ("data/a.csv", "data/b.txt", "data/sub/c.csv", "top.csv"):
        put(root, path)

    assert listed(store, "data/*.csv") == ["data/a.csv"]
    assert listed(store, "*.csv") == ["top.csv"]
    assert listed(store, "*/*.csv") == ["data/a.csv"]


def test_double_star_spans_segments(store: LocalDatastore, root: Path) -> None:
    for path in ("data/a.csv", "data/sub/b.csv", "data/sub/deeper/c.csv", "data/sub/d.txt"):
        put(root, path)

    assert listed(store, "data/**/*.csv") == [
        "data/a.csv",
        "data/sub/b.csv",
        "data/sub/deeper/c.csv",
    ]
    assert listed(store, "data/**") == [
        "data/a.csv",
        "data/sub/b.csv",
        "data/sub/d.txt",
        "data/sub/deeper/c.csv",
    ]
    assert listed(store, "**/c.csv") == ["data/sub/deeper/c.csv"]


def test_listing_starts_at_the_fixed_prefix(store: LocalDatastore, root: Path) -> None:
    put(root, "data/2024/a.csv")
    put(root, "other/2024/a.csv")

    assert glob_prefix(validate_glob("data/2024/*.csv", store=STORE)) == "data/2024"
    assert listed(store, "data/2024/*.csv") == ["data/2024/a.csv"]
    # A prefix that does not exist, or is a file, is an empty listing rather than an error.
    assert listed(store, "data/2025/*.csv") == []
    assert listed(store, "data/2024/a.csv/*.csv") == []


def test_hidden_files_and_folders_are_ignored(store: LocalDatastore, root: Path) -> None:
    for path in ("data/a.csv", "data/.hidden.csv", "data/.cache/b.csv", ".git/c.csv"):
        put(root, path)

    assert listed(store, "**/*.csv") == ["data/a.csv"]
    assert listed(store, "**") == ["data/a.csv"]


def test_listing_is_sorted_by_path(store: LocalDatastore, root: Path) -> None:
    for path in ("data/c.csv", "data/a/z.csv", "data/b.csv", "data/a.csv", "data/A.csv"):
        put(root, path)

    paths = listed(store, "data/**")

    assert paths == sorted(paths)
    assert set(paths) == {"data/A.csv", "data/a.csv", "data/a/z.csv", "data/b.csv", "data/c.csv"}


def test_the_fast_listing_fingerprint_is_that_of_the_listing(
    store: LocalDatastore, root: Path
) -> None:
    from ingestion_project.datasets.fingerprint import listing_fingerprint

    assert store.listing_fingerprint("data/**/*.csv") == (None, 0)
    for name in ("data/b/2.csv", "data/a/1.csv", "data/a/10.csv", "data/notes.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    files = store.list_files("data/**/*.csv")
    assert store.listing_fingerprint("data/**/*.csv") == (listing_fingerprint(files), 3)


def test_the_listing_as_columns_is_the_listing_and_hashes_as_it_does(
    store: LocalDatastore, root: Path
) -> None:
    """Registration lists a dataset as columns; they must be the listing, file for file."""
    # Names whose order as (path, size, etag) rows and as paths alone could differ if sorted
    # wrongly: a folder and a file of the same stem, and a name with a hidden part.
    for name in ("data/b/2.csv", "data/a/1.csv", "data/a.csv", "data/a-1.csv", "data/.x.csv"):
        put(root, name, name.encode() * len(name))

    columns = store.list_columns("data/**/*.csv")
    files = store.list_files("data/**/*.csv")

    assert columns == FileColumns.of(files)
    assert columns.paths == ["data/a-1.csv", "data/a.csv", "data/a/1.csv", "data/b/2.csv"]
    assert columns.infos() == files
    assert columns.digest() == listing_digest((f.path, f.size, f.etag) for f in files)
    # Columns out of path order (taken from a listing) are sorted before they are hashed.
    assert columns.take([3, 0, 2, 1]).digest() == columns.digest()
    assert store.listing_fingerprint("data/**/*.csv") == (columns.digest(), 4)
    assert len(store.list_columns("nothing/*.csv")) == 0


@pytest.mark.parametrize(
    "microseconds",
    [0, 1, 1_796_615_442_111_205, 1_796_615_442_999_999, 2**52 - 1, 2**52 + 7, -1],
)
def test_a_listing_time_in_microseconds_is_turned_into_exactly_that_time(
    microseconds: int,
) -> None:
    """The float shortcut below 2**52 µs must give what adding a timedelta gives."""
    exact = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=microseconds)

    moment = utc_from_microseconds(microseconds)

    assert (moment, moment.utcoffset()) == (exact, timedelta(0))
    assert microseconds_since_epoch(moment) == microseconds


def test_every_listed_file_is_what_stat_reports_for_it(store: LocalDatastore, root: Path) -> None:
    for name in ("data/b/2.csv", "data/a/1.csv", "data/a/10.csv", "data/c.csv"):
        put(root, name, name.encode() * 3)

    files = store.list_files("data/**/*.csv")

    assert [info.path for info in files] == sorted(info.path for info in files)
    assert files == [store.stat(info.path) for info in files]


def test_file_info_reports_size_modified_and_etag(store: LocalDatastore, root: Path) -> None:
    target = put(root, "data/a.csv", b"id\n1\n")

    [info] = store.list_files("data/*.csv")

    assert info.path == "data/a.csv"
    assert info.size == 5
    assert info.modified.tzinfo is not None
    # The modification time to the microsecond, truncated from the nanoseconds (not rounded
    # from a float): a manifest stores it as whole microseconds.
    nanoseconds = target.stat().st_mtime_ns
    assert info.modified == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=nanoseconds // 1000
    )
    assert info.etag
    assert store.stat("data/a.csv") == info
    assert FileInfo.from_dict(info.to_dict()) == info


def test_etag_changes_when_content_changes(store: LocalDatastore, root: Path) -> None:
    target = put(root, "data/a.csv", b"id\n1\n")
    before = store.stat("data/a.csv")

    target.write_bytes(b"id\n2\n")
    # Same size; force a later mtime since a fast test may not move mtime_ns on its own.
    stamp = target.stat().st_mtime_ns + 5_000_000_000
    os.utime(target, ns=(stamp, stamp))
    after = store.stat("data/a.csv")

    assert after.size == before.size
    assert after.etag != before.etag
    assert after.modified > before.modified


def test_etag_is_stable_when_nothing_changes(store: LocalDatastore, root: Path) -> None:
    put(root, "data/a.csv", b"id\n1\n")

    assert store.stat("data/a.csv").etag == store.stat("data/a.csv").etag


def test_open_read_streams_in_chunks(store: LocalDatastore, root: Path) -> None:
    payload = bytes(range(256)) * 4096
    put(root, "big.bin", payload)

    chunks = []
    with store.open_read("big.bin") as stream:
        while chunk := stream.read(65536):
            chunks.append(chunk)

    assert len(chunks) == len(payload) // 65536
    assert b"".join(chunks) == payload
    assert store.read_bytes("big.bin") == payload


def test_open_read_of_a_missing_file_names_the_store(store: LocalDatastore) -> None:
    with pytest.raises(FileNotFoundError, match=f"datastore '{STORE}'.*'data/none.csv'"):
        with store.open_read("data/none.csv"):
            pass


def test_write_bytes_creates_parents_and_leaves_no_temp_files(
    store: LocalDatastore, root: Path
) -> None:
    store.write_bytes("deep/nested/file.json", b"{}")

    assert (root / "deep" / "nested" / "file.json").read_bytes() == b"{}"
    assert os.listdir(root / "deep" / "nested") == ["file.json"]


def test_write_bytes_replaces_the_file_rather_than_truncating_it(
    store: LocalDatastore, root: Path
) -> None:
    target = put(root, "model.bin", b"old contents")

    with target.open("rb") as reader:
        store.write_bytes("model.bin", b"new")
        # A reader that opened the old file still sees all of it: the write swapped files.
        assert reader.read() == b"old contents"

    assert target.read_bytes() == b"new"
    assert os.listdir(root) == ["model.bin"]


def test_write_without_overwrite_refuses_and_keeps_the_original(
    store: LocalDatastore, root: Path
) -> None:
    store.write_bytes("v000001.json", b"first", overwrite=False)

    with pytest.raises(FileExistsError, match=f"datastore '{STORE}'.*'v000001.json'"):
        store.write_bytes("v000001.json", b"second", overwrite=False)

    assert (root / "v000001.json").read_bytes() == b"first"
    assert os.listdir(root) == ["v000001.json"]


def test_exists_delete_and_stat(store: LocalDatastore, root: Path) -> None:
    put(root, "data/a.csv", b"abc")

    assert store.exists("data/a.csv")
    assert not store.exists("data/b.csv")
    assert not store.exists("data")
    assert store.stat("data/a.csv").size == 3

    store.delete("data/a.csv")
    store.delete("data/a.csv")

    assert not store.exists("data/a.csv")
    assert not (root / "data" / "a.csv").exists()
    with pytest.raises(FileNotFoundError, match=f"datastore '{STORE}'"):
        store.stat("data/a.csv")


UNSAFE_PATHS = ["../x", "/etc/passwd", "a/../../b", "C:\\x", "..\\x", "a/..", ""]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda s, p: s.read_bytes(p), id="read"),
        pytest.param(lambda s, p: s.write_bytes(p, b"x"), id="write"),
        pytest.param(lambda s, p: s.exists(p), id="exists"),
        pytest.param(lambda s, p: s.delete(p), id="delete"),
        pytest.param(lambda s, p: s.stat(p), id="stat"),
        pytest.param(lambda s, p: s.list_files(p), id="list"),
    ],
)
def test_paths_that_leave_the_root_are_refused(
    store: LocalDatastore, tmp_path: Path, path: str, operation
) -> None:
    with pytest.raises(UnsafePathError, match=f"datastore '{STORE}'"):
        operation(store, path)

    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "b").exists()


@pytest.fixture
def outside_link(store: LocalDatastore, root: Path, tmp_path: Path) -> str:
    """A file inside the store that is a symlink to a file outside its root."""
    secret = tmp_path / "outside" / "secret.csv"
    secret.parent.mkdir()
    secret.write_bytes(b"secret\n")
    put(root, "data/a.csv")
    (root / "data" / "link.csv").symlink_to(secret)
    return "data/link.csv"


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda s, p: s.read_bytes(p), id="read"),
        pytest.param(lambda s, p: s.write_bytes(p, b"overwritten"), id="write"),
        pytest.param(lambda s, p: s.exists(p), id="exists"),
        pytest.param(lambda s, p: s.delete(p), id="delete"),
        pytest.param(lambda s, p: s.stat(p), id="stat"),
    ],
)
def test_a_symlink_pointing_outside_the_root_is_refused(
    store: LocalDatastore, tmp_path: Path, outside_link: str, operation
) -> None:
    with pytest.raises(UnsafePathError, match=f"datastore '{STORE}'.*outside the datastore root"):
        operation(store, outside_link)

    assert (tmp_path / "outside" / "secret.csv").read_bytes() == b"secret\n"


def test_a_symlinked_folder_pointing_outside_the_root_is_refused(
    store: LocalDatastore, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "s.csv").write_bytes(b"secret\n")
    (root / "linked").symlink_to(outside, target_is_directory=True)

    with pytest.raises(UnsafePathError, match=f"datastore '{STORE}'"):
        store.list_files("linked/*.csv")
    with pytest.raises(UnsafePathError, match=f"datastore '{STORE}'"):
        store.read_bytes("linked/s.csv")
    # A walk from the root does not descend into the symlinked folder either.
    assert listed(store, "**/*.csv") == []


def test_listing_does_not_report_a_symlink_pointing_outside_the_root(
    store: LocalDatastore, outside_link: str
) -> None:
    try:
        paths = listed(store, "data/*.csv")
    except UnsafePathError:
        paths = []

    assert outside_link not in paths


def test_a_missing_root_lists_nothing_and_is_created_by_a_write(tmp_path: Path) -> None:
    store = LocalDatastore(name=STORE, root=str(tmp_path / "not_yet"))

    assert store.list_files("**") == []
    assert store.list_files("data/*.csv") == []
    assert not store.exists("data/a.csv")

    store.write_bytes("data/a.csv", b"id\n")

    assert listed(store, "data/*.csv") == ["data/a.csv"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("data/*.csv", "data/*.csv"),
        ("./data//*.csv", "data/*.csv"),
        ("data\\*.csv", "data/*.csv"),
        ("data/**/*.parquet", "data/**/*.parquet"),
        ("data/[ab].csv", "data/[ab].csv"),
        ("**", "**"),
    ],
)
def test_validate_glob_returns_a_clean_relative_pattern(pattern: str, expected: str) -> None:
    assert validate_glob(pattern, store=STORE) == expected


@pytest.mark.parametrize(
    ("pattern", "error", "message"),
    [
        ("data/[ab.csv", ValueError, "without a closing"),
        ("data/[a[b]].csv", ValueError, "nests"),
        ("data/**.csv", ValueError, "whole path segment"),
        ("data/a**/x.csv", ValueError, "whole path segment"),
        ("../data/*.csv", UnsafePathError, "leaves the datastore root"),
        ("/data/*.csv", UnsafePathError, "absolute path"),
        ("C:/data/*.csv", UnsafePathError, "absolute path"),
        ("  ", UnsafePathError, "empty path"),
    ],
)
def test_validate_glob_rejects(pattern: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        validate_glob(pattern, store=STORE)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.csv", "a.csv", True),
        ("*.csv", "data/a.csv", False),
        ("data/*.csv", "data/a.csv", True),
        ("data/*.csv", "data/sub/a.csv", False),
        ("data/*", "data/a.csv", True),
        ("data/**", "data/a.csv", True),
        ("data/**", "data/sub/deeper/a.csv", True),
        ("data/**", "data", False),
        ("data/**/*.csv", "data/a.csv", True),
        ("data/**/*.csv", "data/x/y/a.csv", True),
        ("data/**/*.csv", "data/x/y/a.txt", False),
        ("**/a.csv", "a.csv", True),
        ("**/a.csv", "x/y/a.csv", True),
        ("**/a.csv", "x/ya.csv", False),
        ("data/a?.csv", "data/a1.csv", True),
        ("data/a?.csv", "data/a12.csv", False),
        ("data/[ab].csv", "data/b.csv", True),
        ("data/[ab].csv", "data/c.csv", False),
        ("data/[!a].csv", "data/b.csv", True),
        ("data/a.csv", "data/aXcsv", False),
        ("data/2024-*.csv", "data/2024-01.csv", True),
        ("data/*-*.csv", "data/2024-01.csv", True),
        ("data/*-*.csv", "data/2024/01.csv", False),
        ("data?a.csv", "data/a.csv", False),
        ("data[!x]a.csv", "data/a.csv", False),
    ],
)
def test_glob_matches(pattern: str, path: str, matches: bool) -> None:
    assert glob_matches(pattern, path) is matches


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("data/*.csv", "data"),
        ("data/2024/**/*.csv", "data/2024"),
        ("data/2024-*/x.csv", "data"),
        ("*.csv", ""),
        ("**/*.csv", ""),
        ("data/a.csv", "data"),
    ],
)
def test_glob_prefix(pattern: str, prefix: str) -> None:
    assert glob_prefix(pattern) == prefix


NAMED_PATHS = [
    "a.csv",
    "a.csv.gz",
    "data/a.csv",
    "data/.csv",
    "data/x/y/b.CSV",
    "data/x/y/b.csv",
    "data/x.csv/y.txt",
    "data2/a.csv",
    "data/2024/a.csv",
    "datax/a.csv",
]


@pytest.mark.parametrize(
    ("pattern", "suffix"),
    [
        ("data/**/*.csv", ".csv"),
        ("**/*.csv", ".csv"),
        ("data/**", ""),
        ("**", ""),
        ("data/2024/**/*", ""),
        ("data/**/*.c[sv]v", None),
        ("data/**/a*.csv", None),
        ("data/*/**/*.csv", None),
        ("data/**/x/*.csv", None),
        ("data/*.csv", None),
        ("data/a.csv", None),
    ],
)
def test_glob_name_suffix_decides_as_the_pattern_does_under_its_prefix(
    pattern: str, suffix: str | None
) -> None:
    assert glob_name_suffix(pattern) == suffix
    if suffix is None:
        return
    prefix = glob_prefix(pattern)
    under = [path for path in NAMED_PATHS if not prefix or path.startswith(f"{prefix}/")]
    assert under
    for path in under:
        assert path.rsplit("/", 1)[-1].endswith(suffix) is glob_matches(pattern, path), path
