"""The data-change sensor fires once per new listing and keeps its place in a cursor."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from ingestion_project.demo.loop import INCOMING
from ingestion_project.triggers.change_cursor import ChangeCursor
from ingestion_project.triggers.data_change import data_change_sensor_name
from ingestion_project_tests.conftest import place_month

SENSOR = data_change_sensor_name("bikeshare_scoring")


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
    cursor = ChangeCursor.parse(result.cursor)
    assert cursor.changes == 1 and len(cursor.fingerprint or "") == 64
    assert request.run_key == f"bikeshare_scoring:1:{cursor.fingerprint}"
    selection = defs.resolve_sensor_def(SENSOR).asset_selection
    assert selection is not None
    assert {key.to_user_string() for key in selection.resolve(defs.resolve_asset_graph())} == {
        "bikeshare_scoring",
        "bikeshare_demand_predictions",
        "bikeshare_drift",
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
    assert (
        ChangeCursor.parse(third.cursor).fingerprint == ChangeCursor.parse(first.cursor).fingerprint
    )


def test_restart_with_the_stored_cursor_does_not_fire_again(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    """The daemon stores the cursor; a restarted process resumes from it, not from scratch."""
    stored = tick(defs, instance, None).cursor
    assert not tick(defs, instance, stored).run_requests


def test_empty_folder_is_skipped(defs: dg.Definitions, instance: dg.DagsterInstance, home: Path):
    for file in (home / "datastores" / "workspace_default" / INCOMING).iterdir():
        file.unlink()
    result = tick(defs, instance, None)
    assert not result.run_requests
    assert "No files match" in (result.skip_message or "")
