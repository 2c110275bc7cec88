"""The data-change sensor fires once per new listing and keeps its place in a cursor."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg

from ingestion_project.demo.loop import INCOMING
from ingestion_project.triggers.change_cursor import ChangeCursor, WatchCursor
from ingestion_project.triggers.data_change import data_change_sensor_name
from ingestion_project_tests.catalogs import materialize
from ingestion_project_tests.conftest import place_month

# The demo catalog's folder is 'catalog'; bikeshare_scoring is checked every 30s.
SENSOR = data_change_sensor_name("catalog", "30s")


def state(cursor: str | None) -> ChangeCursor:
    return WatchCursor.parse(cursor).datasets["bikeshare_scoring"]


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=defs,
        resources=dict(defs.resources or {}),
    )
    return defs.resolve_sensor_def(SENSOR).evaluate_tick(context)


def test_first_tick_requests_a_refresh_keyed_by_fingerprint(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    result = tick(defs, instance, None)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    cursor = state(result.cursor)
    assert cursor.changes == 1 and len(cursor.fingerprint or "") == 64
    assert request.run_key == f"bikeshare_scoring:1:{cursor.fingerprint}"
    selection = defs.resolve_sensor_def(SENSOR).asset_selection
    assert selection is not None
    assert {key.to_user_string() for key in selection.resolve(defs.resolve_asset_graph())} == {
        "bikeshare_scoring",
        "bikeshare_demand_predictions",
        "bikeshare_drift",
        "busy_hours_predictions",
        "busy_hours_drift",
    }


def test_unchanged_listing_is_skipped_with_the_same_cursor(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    first = tick(defs, instance, None)
    second = tick(defs, instance, first.cursor)
    assert not second.run_requests
    assert "unchanged" in (second.skip_message or "")
    assert second.cursor in (None, first.cursor)


def test_new_and_changed_files_fire_again_with_new_keys(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    first = tick(defs, instance, None)
    added = place_month(home, INCOMING, 6)
    second = tick(defs, instance, first.cursor)
    assert len(second.run_requests) == 1
    assert second.run_requests[0].run_key != first.run_requests[0].run_key

    stat = added.stat()
    with added.open("a") as handle:
        handle.write(added.read_text().splitlines()[-1] + "\n")
    os.utime(added, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    third = tick(defs, instance, second.cursor)
    assert len(third.run_requests) == 1
    assert third.cursor != second.cursor


def test_returning_to_an_earlier_state_fires_again(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    """A -> B -> A: the third state equals the first, yet is a change the registry must see."""
    first = tick(defs, instance, None)
    added = place_month(home, INCOMING, 6)
    second = tick(defs, instance, first.cursor)
    added.unlink()
    third = tick(defs, instance, second.cursor)
    keys = [r.run_requests[0].run_key for r in (first, second, third)]
    assert len(set(keys)) == 3
    assert state(third.cursor).fingerprint == state(first.cursor).fingerprint


def test_restart_with_the_stored_cursor_does_not_fire_again(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    """The daemon stores the cursor; a restarted process resumes from it, not from scratch."""
    stored = tick(defs, instance, None).cursor
    assert not tick(defs, instance, stored).run_requests


def test_a_reset_cursor_asks_nothing_for_files_already_registered(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    """After a cursor reset (or a new sensor), the registry says what was registered already."""
    first = tick(defs, instance, None)
    assert materialize(defs, "bikeshare_scoring", instance=instance).success

    reset = tick(defs, instance, None)

    assert not reset.run_requests
    assert "'bikeshare_scoring' v1 holds these files already" in (reset.skip_message or "")
    assert state(reset.cursor).fingerprint == state(first.cursor).fingerprint
    # A real change after the reset asks again, under a key never used before.
    place_month(home, INCOMING, 6)
    changed = tick(defs, instance, reset.cursor)
    assert len(changed.run_requests) == 1
    assert changed.run_requests[0].run_key not in {r.run_key for r in first.run_requests}


def test_empty_folder_is_skipped(defs: dg.Definitions, instance: dg.DagsterInstance, home: Path):
    for file in (home / "datastores" / "workspace_default" / INCOMING).iterdir():
        file.unlink()
    result = tick(defs, instance, None)
    assert not result.run_requests
    assert "has no files matching" in (result.skip_message or "")


def watched_local(tmp_path: Path, names: list[str]) -> tuple[dg.Definitions, dict[str, Path]]:
    """A sensor over several local datasets, each in its own folder of one store."""
    from ingestion_project.datastores.local import LocalDatastore
    from ingestion_project.triggers.data_change import WatchedDataset, build_data_change_sensor

    root = tmp_path / "store"
    watched = [WatchedDataset(name, watched_spec(name), (name,)) for name in names]
    folders = {name: root / name for name in names}
    for folder in folders.values():
        folder.mkdir(parents=True)
    assets = [dg.AssetSpec(name) for name in names]
    sensor = build_data_change_sensor("lake__data_change_every_60s", watched)
    defs = dg.Definitions(
        assets=assets,
        sensors=[sensor],
        resources={"lake": LocalDatastore(name="lake", root=str(root))},
    )
    return defs, folders


def tick_named(defs: dg.Definitions, name: str, cursor: str | None, **context: object):
    with dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(),
        cursor=cursor,
        definitions=defs,
        resources=dict(defs.resources or {}),
    ) as built:
        return defs.resolve_sensor_def(name).evaluate_tick(built)


def test_one_sensor_watches_many_datasets_and_asks_only_for_the_changed_ones(
    tmp_path: Path,
) -> None:
    defs, folders = watched_local(tmp_path, ["trips", "weather", "stations"])
    (folders["trips"] / "a.csv").write_text("id\n1\n")
    (folders["weather"] / "a.csv").write_text("id\n1\n")
    sensor = "lake__data_change_every_60s"

    first = tick_named(defs, sensor, None)
    (folders["weather"] / "b.csv").write_text("id\n2\n")
    second = tick_named(defs, sensor, first.cursor)

    assert sorted(r.run_key.split(":")[0] for r in first.run_requests) == ["trips", "weather"]
    (request,) = second.run_requests
    assert request.run_key.startswith("weather:2:")
    assert request.asset_selection == [dg.AssetKey("weather")]
    assert "stations" not in WatchCursor.parse(first.cursor).datasets  # no files yet


def test_a_tick_that_runs_out_of_time_resumes_where_it_stopped(tmp_path: Path) -> None:
    from ingestion_project.triggers.data_change import WatchedDataset, build_data_change_sensor

    defs, folders = watched_local(tmp_path, ["a", "b", "c"])
    for folder in folders.values():
        (folder / "x.csv").write_text("id\n1\n")
    sensor = defs.resolve_sensor_def("lake__data_change_every_60s")
    watched = [WatchedDataset(name, watched_spec(name), (name,)) for name in ("a", "b", "c")]
    ticks = iter([0.0, 0.0, 50.0, 50.0, 50.0, 50.0])  # the second dataset takes the budget
    slow = build_data_change_sensor(
        sensor.name, watched, clock=lambda: next(ticks), budget_seconds=40
    )
    defs = dg.Definitions(
        assets=[dg.AssetSpec(name) for name in ("a", "b", "c")],
        sensors=[slow],
        resources=dict(defs.resources or {}),
    )

    first = tick_named(defs, sensor.name, None)
    second = tick_named(defs, sensor.name, first.cursor)

    assert [r.run_key.split(":")[0] for r in first.run_requests] == ["a", "b"]
    assert WatchCursor.parse(first.cursor).after == "b"
    assert [r.run_key.split(":")[0] for r in second.run_requests] == ["c"]
    assert WatchCursor.parse(second.cursor).after is None


def watched_spec(name: str) -> Any:
    from ingestion_project.catalog.spec import DatasetSpec

    return DatasetSpec.model_validate(
        {"datastore": "lake", "path": f"{name}/*.csv", "trigger": {"data_change": {}}}
    )


def test_a_failing_store_does_not_hold_back_the_other_datasets(tmp_path: Path) -> None:
    from ingestion_project.datastores.local import LocalDatastore
    from ingestion_project.triggers.data_change import WatchedDataset, build_data_change_sensor

    good = tmp_path / "good"
    (good / "trips").mkdir(parents=True)
    (good / "trips" / "a.csv").write_text("id\n1\n")
    bad = tmp_path / "not_a_folder"
    bad.write_text("a file where a folder should be")
    watched = [
        WatchedDataset("trips", watched_spec("trips"), ("trips",)),
        WatchedDataset(
            "broken",
            watched_spec("broken").model_copy(update={"datastore": "broken_store"}),
            ("broken",),
        ),
    ]
    defs = dg.Definitions(
        assets=[dg.AssetSpec("trips"), dg.AssetSpec("broken")],
        sensors=[build_data_change_sensor("s", watched)],
        resources={
            "lake": LocalDatastore(name="lake", root=str(good)),
            "broken_store": LocalDatastore(name="broken_store", root=str(bad)),
        },
    )

    result = tick_named(defs, "s", None)

    assert [r.run_key.split(":")[0] for r in result.run_requests] == ["trips"]
    assert "broken" not in WatchCursor.parse(result.cursor).datasets
