"""Storage events: Blob Created/Deleted read from an Azure Storage queue, on Azurite.

Files land in Azurite's Blob service with the plain azure-storage-blob client; the events are
written to Azurite's Queue service as Event Grid writes them (Event Grid schema, base64-encoded
JSON, one event per message: MicrosoftDocs/azure-docs#102923; plain JSON is read too).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from azure.storage.queue import QueueClient

from ingestion_project.catalog.errors import CatalogError
from ingestion_project.datastores.base import DatastoreError
from ingestion_project.triggers.storage_events import (
    EventCursor,
    NotAStorageEvent,
    parse_message,
    storage_events_sensor_name,
)
from ingestion_project_tests.azurite import Azurite
from ingestion_project_tests.catalogs import (
    catalog_definitions,
    materialization_metadata,
    materialize,
    project_catalog_of,
)
from ingestion_project_tests.eventgrid import KEY_VARIABLE, Lake, blob_event, encoded, sequencer


@pytest.fixture
def lake(
    azurite: Azurite, azurite_queue: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Lake]:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))  # the registry of this test alone
    monkeypatch.setenv(KEY_VARIABLE, azurite.account_key)
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield Lake(azurite, azurite_queue)


def sensor_name(lake: Lake) -> str:
    return storage_events_sensor_name("defs__catalog", "lake", lake.queue_name)


def tick(defs: dg.Definitions, name: str, cursor: str | None) -> Any:
    with dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(),
        cursor=cursor,
        definitions=defs,
        resources=dict(defs.resources or {}),
    ) as context:
        return defs.resolve_sensor_def(name).evaluate_tick(context)


def test_a_landed_file_asks_for_one_run_and_its_message_goes_after_the_request(
    lake: Lake,
) -> None:
    defs = catalog_definitions(lake.catalog())
    lake.land("trips/2026-12-01.csv")
    lake.send(blob_event("Created", lake.container, "trips/2026-12-01.csv", 1))

    first = tick(defs, sensor_name(lake), None)

    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_key.startswith("trips:events:")
    assert request.tags["ingestion/events"] == "1"
    assert [key.to_user_string() for key in request.asset_selection] == ["trips"]
    # Not deleted yet: the daemon records the request with this tick's cursor first.
    assert lake.messages_left() == 1
    assert len(EventCursor.parse(first.cursor).pending) == 1

    second = tick(defs, sensor_name(lake), first.cursor)
    assert not second.run_requests
    assert "1 handled message(s) deleted" in (second.skip_message or "")
    assert lake.messages_left() == 0

    # The run registers the dataset from the store, as any run does.
    result = materialize(defs, "trips")
    assert materialization_metadata(result, "trips")["version"] == 1


def test_duplicates_other_containers_and_other_paths_ask_for_nothing_more(lake: Lake) -> None:
    defs = catalog_definitions(lake.catalog())
    created = blob_event("Created", lake.container, "trips/a.csv", 1)
    lake.send(
        created,
        created,  # at-least-once delivery: the same event twice
        blob_event("Created", "another", "trips/b.csv", 2),
        blob_event("Created", lake.container, "stations/c.csv", 3),
        blob_event("Created", lake.container, "trips/deep/d.csv", 4),  # '*' stays in one folder
    )
    lake.send(blob_event("Created", lake.container, "trips/e.csv", 5), plain=True)

    result = tick(defs, sensor_name(lake), None)

    assert len(result.run_requests) == 1
    assert result.run_requests[0].tags["ingestion/events"] == "2"  # a.csv and e.csv
    cursor = EventCursor.parse(result.cursor)
    assert len(cursor.pending) == 2  # the messages that asked for the run
    # The others asked for nothing, so they are gone already.
    assert lake.messages_left() == 2
    again = tick(defs, sensor_name(lake), result.cursor)
    assert not again.run_requests and lake.messages_left() == 0


def test_a_delete_after_a_create_is_respected_whatever_the_order(lake: Lake) -> None:
    defs = catalog_definitions(lake.catalog())
    lake.land("trips/a.csv")
    first = tick(defs, sensor_name(lake), None)  # nothing yet
    assert not first.run_requests
    lake.remove("trips/a.csv")
    # The delete (later, sequencer 2) is delivered before the create (sequencer 1).
    lake.send(blob_event("Deleted", lake.container, "trips/a.csv", 2))
    deleted = tick(defs, sensor_name(lake), first.cursor)
    assert len(deleted.run_requests) == 1
    lake.send(blob_event("Created", lake.container, "trips/a.csv", 1))

    late = tick(defs, sensor_name(lake), deleted.cursor)

    assert not late.run_requests
    assert "1 stale event(s) dropped" in (late.skip_message or "")


def test_messages_that_are_no_events_or_keep_coming_back_are_set_aside(lake: Lake) -> None:
    lake.events.update(max_deliveries=1, visibility_timeout="1s")
    defs = catalog_definitions(lake.catalog())
    lake.queue.send_message("this is not an event")
    lake.queue.send_message(encoded({"id": "x", "eventType": "Microsoft.Storage.BlobCreated"}))
    lake.send(blob_event("Created", lake.container, "trips/a.csv", 1))
    # Someone read the event once already without deleting it.
    list(lake.queue.receive_messages(visibility_timeout=1))
    time.sleep(1.5)

    result = tick(defs, sensor_name(lake), None)

    assert not result.run_requests
    assert "3 message(s) set aside as poison" in (result.skip_message or "")
    poison = QueueClient(
        lake.events["account_url"],
        f"{lake.queue_name}-poison",
        credential={
            "account_name": lake.queue_service.account_name,
            "account_key": lake.queue_service.account_key,
        },
    )
    kept = sorted(message.content for message in poison.receive_messages(max_messages=10))
    assert "this is not an event" in kept and len(kept) == 3
    assert lake.messages_left() == 0


def test_a_refilling_queue_is_drained_in_bounded_batches(lake: Lake) -> None:
    lake.events.update(max_messages=40)
    defs = catalog_definitions(lake.catalog())
    lake.send(*(blob_event("Created", lake.container, f"trips/{n}.csv", n) for n in range(100)))

    cursor, read = None, []
    for _ in range(4):
        result = tick(defs, sensor_name(lake), cursor)
        cursor = result.cursor
        read.append(sum(int(r.tags["ingestion/events"]) for r in result.run_requests))
    assert read == [40, 40, 20, 0]
    assert lake.messages_left() == 0


def test_a_tick_evaluated_twice_asks_for_the_same_run(lake: Lake) -> None:
    lake.events.update(visibility_timeout="1s")
    defs = catalog_definitions(lake.catalog())
    lake.send(blob_event("Created", lake.container, "trips/a.csv", 1))

    first = tick(defs, sensor_name(lake), None)
    time.sleep(1.5)  # the first result was lost: its messages come back
    second = tick(defs, sensor_name(lake), None)

    assert [r.run_key for r in first.run_requests] == [r.run_key for r in second.run_requests]
    assert len(first.run_requests) == 1


def test_a_connection_string_names_the_queue_endpoint(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_url = lake.events.pop("account_url")
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={lake.blob.account_name};"
        f"AccountKey={lake.blob.account_key};BlobEndpoint={lake.blob.account_url};"
        f"QueueEndpoint={queue_url};"
    )
    monkeypatch.setenv("LAKE_CONNECTION", connection)
    catalog = lake.catalog()
    catalog["datastores"]["lake"] = {
        "kind": "azure_blob",
        "container": lake.container,
        "credential": {"connection_string": {"env": "LAKE_CONNECTION"}},
    }
    defs = catalog_definitions(catalog)
    lake.send(blob_event("Created", lake.container, "trips/a.csv", 1))

    assert len(tick(defs, sensor_name(lake), None).run_requests) == 1


def test_the_sensor_says_what_it_watches(lake: Lake) -> None:
    defs = catalog_definitions(lake.catalog())
    sensor = defs.resolve_sensor_def(sensor_name(lake))
    assert sensor.description is not None
    assert f"queue '{lake.queue_name}'" in sensor.description
    assert "datastore 'lake'" in sensor.description and "trips" in sensor.description


@pytest.mark.parametrize(
    ("change", "where", "hint"),
    [
        (
            {"datastores": {"lake": {"kind": "local"}}},
            "datasets.trips.trigger.storage_events",
            "data_change",
        ),
        (
            {"queue": "Not_A_Queue"},
            "datasets.trips.trigger.storage_events.queue",
            "lowercase letters",
        ),
        ({"visibility_timeout": "soon"}, "visibility_timeout", "'30s'"),
    ],
)
def test_catalog_mistakes_are_worded(change: dict[str, Any], where: str, hint: str) -> None:
    catalog: dict[str, Any] = {
        "datastores": {
            "lake": {"kind": "azure_blob", "account_url": "https://a.blob.core.windows.net"}
        },
        "datasets": {
            "trips": {
                "datastore": "lake",
                "path": "trips/*.csv",
                "trigger": {"storage_events": {"queue": "events"}},
            }
        },
    }
    catalog["datastores"]["lake"]["container"] = "raw"
    if "datastores" in change:
        catalog["datastores"] = change["datastores"]
    else:
        catalog["datasets"]["trips"]["trigger"]["storage_events"].update(change)
    with pytest.raises(CatalogError) as raised:
        project_catalog_of(catalog)
    message = str(raised.value)
    assert where in message and hint in message, message


def test_event_grid_and_cloud_events_messages_are_read() -> None:
    event = blob_event("Created", "raw", "trips/a.csv", 7)
    for content in (encoded(event), json.dumps(event), encoded([event, event])):
        events = parse_message(content)
        assert events[0].container == "raw" and events[0].names == ("trips/a.csv",)
        assert events[0].sequencer == sequencer(7) and events[0].relevant
    cloud = {
        "specversion": "1.0",
        "type": "Microsoft.Storage.BlobDeleted",
        "source": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/"
        "storageAccounts/acct",
        "subject": "/blobServices/default/containers/raw/blobs/trips/b.csv",
        "id": "1",
        "data": {"api": "DeleteBlob", "sequencer": sequencer(8)},
    }
    (deleted,) = parse_message(json.dumps(cloud))
    assert deleted.type.endswith("BlobDeleted") and deleted.names == ("trips/b.csv",)
    # Data Lake: CreateFile makes an empty file; FlushWithClose says it is complete.
    (empty,) = parse_message(json.dumps(blob_event("Created", "raw", "a.csv", 1, api="CreateFile")))
    assert not empty.relevant
    renamed = blob_event("Renamed", "raw", "trips/new.csv", 9)
    renamed["data"]["sourceUrl"] = "https://acct.dfs.core.windows.net/raw/landing/old.csv"
    assert parse_message(json.dumps(renamed))[0].names == ("trips/new.csv", "landing/old.csv")
    for bad in ("", "{", "[]", "bm90IGpzb24=", json.dumps({"id": "1"})):
        with pytest.raises(NotAStorageEvent):
            parse_message(bad)


def test_a_data_lake_file_counts_once_it_is_flushed(lake: Lake) -> None:
    catalog = lake.catalog()
    catalog["datastores"]["lake"] = {
        "kind": "adls_gen2",
        "account_url": lake.blob.account_url,
        "filesystem": lake.container,
        "endpoint": "blob",
        "credential": {"account_key": {"env": KEY_VARIABLE}},
    }
    defs = catalog_definitions(catalog)
    lake.send(blob_event("Created", lake.container, "trips/a.csv", 1, api="CreateFile"))
    assert not tick(defs, sensor_name(lake), None).run_requests

    lake.send(blob_event("Created", lake.container, "trips/a.csv", 2, api="FlushWithClose"))
    result = tick(defs, sensor_name(lake), None)
    assert [r.tags["ingestion/events"] for r in result.run_requests] == ["1"]


def test_a_missing_queue_says_how_to_create_and_subscribe_it(lake: Lake) -> None:
    lake.events["queue"] = "no-such-queue"
    defs = catalog_definitions(lake.catalog())
    name = storage_events_sensor_name("defs__catalog", "lake", "no-such-queue")

    with pytest.raises(DatastoreError) as raised:
        tick(defs, name, None)

    message = str(raised.value)
    assert "queue 'no-such-queue' does not exist" in message
    assert "az storage queue create --name no-such-queue" in message
    assert lake.blob.account_key not in message


def test_a_queue_belongs_to_one_catalog() -> None:
    store = {
        "lake": {
            "kind": "azure_blob",
            "account_url": "https://a.blob.core.windows.net",
            "container": "raw",
        }
    }
    events = {"storage_events": {"queue": "raw-events"}}
    first = {
        "datastores": store,
        "datasets": {"trips": {"datastore": "lake", "path": "trips/*.csv", "trigger": events}},
    }
    second = {
        "datasets": {"zones": {"datastore": "lake", "path": "zones/*.csv", "trigger": events}}
    }
    # Two datasets of one catalog share a queue (and its one sensor): fine.
    same = copy.deepcopy(first)
    same["datasets"]["zones"] = second["datasets"]["zones"]
    project_catalog_of(same)

    with pytest.raises(CatalogError) as raised:
        project_catalog_of(first, second)
    message = str(raised.value)
    assert "datasets.zones.trigger.storage_events.queue" in message
    assert "read by dataset 'trips'" in message and "own queue" in message
