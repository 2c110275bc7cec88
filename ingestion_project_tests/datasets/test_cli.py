"""`ingestion datasets list|versions|show|download` through CliRunner on real files."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ingestion_project.datasets.api import Workspace
from ingestion_project.datasets.cli_commands import datasets
from ingestion_project_tests.catalogs import write_project
from ingestion_project_tests.datasets.test_api import (
    FEB,
    JAN,
    bump_mtime,
    gated_workspace,
    register,
    write,
    write_catalog,
)

MATERIALIZE = "dg launch --assets"


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path / "home"))
    return write_catalog(tmp_path)


@pytest.fixture
def workspace(catalog: Path) -> Workspace:
    return Workspace.load(catalog)


@pytest.fixture
def registered(workspace: Workspace, landing: Path) -> Workspace:
    """Rides with two versions: January alone, then January and February."""
    write(landing, "rides/2011-01.csv", JAN)
    register(workspace, "rides", run_id="0123456789abcdef")
    write(landing, "rides/2011-02.csv", FEB)
    register(workspace, "rides", run_id="fedcba9876543210")
    return workspace


def run(catalog: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(datasets, [*args, "--project", str(catalog)])
    assert not isinstance(result.exception, AssertionError | TypeError | AttributeError | KeyError)
    return result.exit_code, result.output


def test_list_shows_each_dataset_with_its_latest_version_or_how_to_make_one(
    catalog: Path, registered: Workspace
) -> None:
    code, out = run(catalog, "list")

    assert code == 0, out
    assert f"6 datasets in {catalog}:" in out
    assert "  rides: tabular, datastore landing, path rides/*.csv (reference mode)" in out
    assert "latest: version 2, 5 rows in 2 files (" in out
    assert (
        f"  weather: tabular, datastore landing, path weather/*.csv (reference mode)\n"
        f"      no version yet (materialize it: {MATERIALIZE} weather)"
    ) in out


def test_versions_is_a_table_newest_first(catalog: Path, registered: Workspace) -> None:
    code, out = run(catalog, "versions", "rides")

    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == [
        "version",
        "registered",
        "rows",
        "files",
        "mode",
        "fingerprint",
        "run",
        "id",
        "used",
        "by",
        "quality",
    ]
    second, first = registered.registry.get("rides", 2), registered.registry.get("rides", 1)
    assert lines[1].split()[0] == "2"
    assert lines[1].split()[4:] == [
        "5",
        "2",
        "reference",
        second.fingerprint[:12],
        "fedcba98",
        "-",
        "unchecked",
    ]
    assert lines[2].split()[4:] == [
        "3",
        "1",
        "reference",
        first.fingerprint[:12],
        "01234567",
        "-",
        "unchecked",
    ]
    assert lines[-1] == "2 versions of rides; the latest is version 2."


def test_versions_of_a_dataset_without_any_says_how_to_make_one(catalog: Path) -> None:
    code, out = run(catalog, "versions", "weather")

    assert code == 0, out
    assert out.strip() == f"weather has no version yet (materialize it: {MATERIALIZE} weather)."


def test_show_gives_schema_profile_manifest_and_lineage(
    catalog: Path, registered: Workspace
) -> None:
    code, out = run(catalog, "show", "rides:1")

    assert code == 0, out
    fingerprint = registered.registry.get("rides", 1).fingerprint
    assert "Dataset rides version 1 (the latest is 2), registered " in out
    assert (
        "  tabular dataset in reference mode; datastore landing, path rides/*.csv; format csv"
        in out
    )
    assert f"  3 rows in 1 file ({len(JAN)} bytes); fingerprint {fingerprint}." in out
    assert "Schema (3 columns):" in out
    assert "  temp     float64" in out
    assert "Profile:" in out
    assert "  column   nulls  distinct  min    max    mean" in out
    assert "  temp     1      2         0.5    1.5    1" in out
    assert "Manifest (1 file):\n  rides/2011-01.csv  " in out
    assert "Lineage: registered by run 0123456789abcdef, code version " in out
    assert "upstream: none." in out
    assert "Used by: no model yet." in out

    code, latest = run(catalog, "show", "rides")
    assert code == 0, latest
    assert "Dataset rides version 2 (the latest)" in latest


def test_show_lists_the_first_20_files_and_counts_the_rest(
    catalog: Path, workspace: Workspace, landing: Path
) -> None:
    for day in range(1, 24):
        write(landing, f"weather/day-{day:02d}.csv", JAN)
    register(workspace, "weather")

    code, out = run(catalog, "show", "weather")

    assert code == 0, out
    assert "Manifest (23 files):" in out
    assert "weather/day-20.csv" in out
    assert "weather/day-21.csv" not in out
    assert "  ... and 3 more (23 in all)." in out


def test_download_reports_progress_and_copies_the_files(
    catalog: Path, registered: Workspace, tmp_path: Path
) -> None:
    target = tmp_path / "out"

    code, out = run(catalog, "download", "rides:2", str(target))

    assert code == 0, out
    size = f"{len(JAN) + len(FEB)} bytes"
    assert f"Downloading 2 files ({size}) of rides version 2 to {target}..." in out
    assert out.rstrip().endswith(f"Downloaded 2 files ({size}) of rides version 2 to {target}.")
    assert (target / "2011-01.csv").read_text() == JAN
    assert (target / "2011-02.csv").read_text() == FEB


def test_download_refuses_a_different_existing_file(
    catalog: Path, registered: Workspace, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    write(target, "2011-01.csv", "mine")

    code, out = run(catalog, "download", "rides", str(target))

    assert code == 1
    assert "already exists and differs from 'rides/2011-01.csv'" in out
    assert "Download into an empty folder, or delete that file first." in out
    assert (target / "2011-01.csv").read_text() == "mine"


def test_a_changed_pinned_file_fails_with_what_to_do(
    catalog: Path, registered: Workspace, landing: Path, tmp_path: Path
) -> None:
    bump_mtime(landing / "rides" / "2011-01.csv")

    code, out = run(catalog, "download", "rides:1", str(tmp_path / "out"))

    assert code == 1
    assert "Error: dataset 'rides' version 1 pins files that changed since it was " in out
    assert "rides/2011-01.csv (modified)" in out
    assert "register the current files as a new version by materializing" in out


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["versions", "ridez"], id="versions"),
        pytest.param(["show", "ridez"], id="show"),
        pytest.param(["show", "ridez:1"], id="show-version"),
        pytest.param(["download", "ridez", "out"], id="download"),
    ],
)
def test_an_unknown_dataset_exits_2_with_the_declared_names(catalog: Path, args: list[str]) -> None:
    code, out = run(catalog, *args)

    assert code == 2
    assert "Error: 'ridez' is not a dataset of the project at" in out
    assert "(known: rides, weather, uploaded, framed, snap, docs)" in out


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("rides:9", "dataset 'rides' has no version 9 (registered: 1, 2)"),
        ("rides:x", "'rides:x' is not NAME or NAME:VERSION: the version must be a number"),
        ("rides:0", "'rides:0' is not NAME or NAME:VERSION"),
        ("weather", f"no version yet. Register one by materializing it: {MATERIALIZE} weather"),
    ],
)
def test_an_unknown_version_exits_2_with_what_exists(
    catalog: Path, registered: Workspace, reference: str, expected: str
) -> None:
    code, out = run(catalog, "show", reference)

    assert code == 2
    assert expected in " ".join(out.split())


def test_a_catalog_with_mistakes_exits_2_naming_the_file(tmp_path: Path) -> None:
    broken = write_project(
        tmp_path / "broken",
        {"catalog": {"datasets": {"rides": {"datastore": "nowhere", "path": "a/*.csv"}}}},
    )

    code, out = run(broken, "list")

    assert code == 2
    assert "Error: the catalog has mistakes:" in out
    assert "defs/catalog/defs.yaml: datasets.rides.datastore: 'nowhere' is not a declared" in out
    assert "Traceback" not in out


def test_a_file_dataset_shows_files_not_rows(
    catalog: Path, workspace: Workspace, landing: Path
) -> None:
    write(landing, "docs/readme.txt", "hello")
    write(landing, "docs/img/a.svg", "<svg/>")
    register(workspace, "docs")

    code, listed = run(catalog, "list")
    assert code == 0, listed
    assert "  docs: file, datastore landing, path docs/** (reference mode)\n" in listed
    assert "      latest: version 1, 2 files (11 bytes), registered " in listed

    code, shown = run(catalog, "show", "docs")
    assert code == 0, shown
    assert "  file dataset in reference mode; datastore landing, path docs/**" in shown
    assert "  2 files (11 bytes); fingerprint " in shown
    assert "Schema" not in shown
    assert "Manifest (2 files):\n  docs/img/a.svg  6 bytes  etag " in shown


def test_a_snapshot_version_shows_where_its_copies_are(
    catalog: Path, workspace: Workspace, landing: Path, tmp_path: Path
) -> None:
    write(landing, "snap/2011-01.csv", JAN)
    register(workspace, "snap")

    code, shown = run(catalog, "show", "snap:1")
    assert code == 0, shown
    assert (
        "  tabular dataset in snapshot mode; datastore landing, path snap/**/*.csv; format csv; "
        "files kept in datastore workspace_default." in shown
    )
    assert "  _registry/snapshots/snap/" in shown

    code, out = run(catalog, "download", "snap:1", str(tmp_path / "out"))
    assert code == 0, out
    assert (tmp_path / "out" / "2011-01.csv").read_text() == JAN


def test_the_demo_catalog_shows_the_model_trained_on_a_version(home: Path) -> None:
    from ingestion_project.catalog.spec import EstimatorSpec, ModelSpec
    from ingestion_project.training.lifecycle import train_and_register

    workspace = Workspace.load()  # the project's catalog, INGESTION_HOME from the fixture
    registration = register(workspace, "bikeshare_history", run_id="demo-run-1")
    assert registration.frame is not None
    spec = ModelSpec(
        train_on="bikeshare_history",
        target="bikers",
        features=["hr", "temp", "hum"],
        estimator=EstimatorSpec(kind="ridge"),
    )
    train_and_register(
        "bikeshare_demand",
        spec,
        registration.record,
        registration.frame,
        workspace.models,
        run_id="train-run",
        code_version="test",
    )

    result = CliRunner().invoke(datasets, ["versions", "bikeshare_history"])
    code, out = result.exit_code, result.output
    assert code == 0, out
    assert out.splitlines()[1].endswith("demo-run  bikeshare_demand v1 (champion)  passed")

    result = CliRunner().invoke(datasets, ["show", "bikeshare_history:1"])
    assert result.exit_code == 0, result.output
    assert "Used by: bikeshare_demand v1 (champion)." in result.output
    assert "Manifest (4 files):" in result.output

    result = CliRunner().invoke(datasets, ["list"])
    assert result.exit_code == 0, result.output
    assert f"no version yet (materialize it: {MATERIALIZE} bikeshare_scoring)" in result.output


@pytest.fixture
def gated(tmp_path: Path, landing: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A project with failed versions (see test_api.gated_workspace)."""
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path / "home"))
    return gated_workspace(tmp_path, landing)


def test_failed_versions_are_flagged_and_show_lists_their_failed_expectations(
    gated: Workspace, tmp_path: Path
) -> None:
    project = gated.project_root
    assert project is not None

    code, listed = run(project, "list")
    assert code == 0, listed
    assert (
        "      newest: version 2 FAILED checks: between, not used "
        "(see why: ingestion datasets show checked:2)"
    ) in listed
    assert "  hot: tabular" in listed
    assert (
        "      no version passed its checks, so there is no latest\n"
        "      newest: version 1 FAILED checks: between, not used" in listed
    )

    code, versions = run(project, "versions", "checked")
    assert code == 0, versions
    lines = versions.splitlines()
    assert lines[0].split()[-1] == "quality"
    assert lines[1].startswith("2 ") and lines[1].endswith("FAILED checks: between")
    assert lines[2].startswith("1 ") and lines[2].endswith("passed")
    assert lines[-1] == (
        "2 versions of checked; the latest is version 1; version 2 FAILED its checks and is not "
        "used."
    )

    code, shown = run(project, "show", "checked:2")
    assert code == 0, shown
    assert (
        "Dataset checked version 2 (FAILED its checks, so it is never the latest; the latest is "
        "1), registered " in shown
    )
    assert "  Quality: FAILED checks: between (declared: columns, between).\n" in shown
    assert (
        "Failed expectations (1):\n"
        "  - between(temp): 1 unexpected value (e.g. 41.0) [expect_column_values_to_be_between]\n"
    ) in shown

    code, latest = run(project, "show", "checked")
    assert code == 0, latest
    assert "Dataset checked version 1 (the latest), registered " in latest
    assert "  Quality: passed its checks (columns, between).\n" in latest

    code, downloaded = run(project, "download", "checked", str(tmp_path / "out"))
    assert code == 0, downloaded
    assert "of checked version 1 to" in downloaded


def test_a_dataset_whose_every_version_failed_has_no_latest_to_show(gated: Workspace) -> None:
    project = gated.project_root
    assert project is not None

    code, out = run(project, "show", "hot")
    assert code == 1
    assert "dataset 'hot' has no version that passed its checks; version 1 failed " in out

    code, versions = run(project, "versions", "hot")
    assert code == 0, versions
    assert versions.splitlines()[-1] == (
        "1 version of hot; none passed its checks, so there is no latest (version 1 FAILED its "
        "checks and is not used)."
    )
