"""Storage events: Blob Created/Deleted read from an Azure Storage queue, on Azurite.

Files land in Azurite's Blob service with the plain azure-storage-blob client; the events are
written to Azurite's Queue service as Event Grid writes them (Event Grid schema, base64-encoded
JSON, one event per message: MicrosoftDocs/azure-docs#102923; plain JSON is read too).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from azure.storage.queue import QueueClient

from ingestion_project.catalog.errors import CatalogError
from ingestion_project.catalog.spec import DatasetSpec, StorageEventsTrigger
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_common import AzureCredential
from ingestion_project.datastores.base import DatastoreError
from ingestion_project.triggers.storage_events import (
    EventCursor,
    EventWatchedDataset,
    NotAStorageEvent,
    build_storage_event_sensor,
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
from ingestion_project_tests.triggers.code_server import code_server_tick, unopenable_instance_ref


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


@pytest.fixture
def unopenable_instance(tmp_path: Path) -> Any:
    return unopenable_instance_ref(tmp_path)


def lake_sensor(lake: Lake, name: str, store: AzureBlobDatastore | None) -> dg.SensorDefinition:
    """The lake's sensor built by hand: ``store`` given to it, or (None) the store declared."""
    trigger = StorageEventsTrigger.model_validate({"storage_events": lake.events})
    spec = DatasetSpec(datastore="lake", path="trips/*.csv", trigger=trigger)
    return build_storage_event_sensor(
        name,
        [EventWatchedDataset("trips", spec, ("trips",))],
        datastores=None if store is None else {"lake": store},
    )


def lake_store(lake: Lake, container: str) -> AzureBlobDatastore:
    return AzureBlobDatastore(
        name="lake",
        account_url=lake.blob.account_url,
        container=container,
        credential=AzureCredential(account_key=lake.blob.account_key),
    )


def test_the_catalogs_storage_event_sensor_declares_no_store(lake: Lake) -> None:
    defs = catalog_definitions(lake.catalog())
    assert not defs.resolve_sensor_def(sensor_name(lake)).required_resource_keys


def test_a_tick_without_a_run_opens_no_instance(lake: Lake, unopenable_instance: Any) -> None:
    """Its store is the Definitions' own, and its summary is its skip reason, not a log line."""
    defs = catalog_definitions(lake.catalog())
    lake.send(blob_event("Created", lake.container, "stations/c.csv", 1))

    result = code_server_tick(defs, sensor_name(lake), unopenable_instance, None)
    again = code_server_tick(defs, sensor_name(lake), unopenable_instance, result.cursor)

    assert not result.run_requests and not again.run_requests
    assert "1 event(s) outside the watched datasets" in (result.skip_message or "")
    assert "0 message(s) read" in (again.skip_message or "")
    assert lake.messages_left() == 0


def test_a_sensor_that_declares_its_store_needs_the_instance(
    lake: Lake, unopenable_instance: Any
) -> None:
    """The contrast that shows the instance above would have been opened, and failed."""
    sensor = lake_sensor(lake, "declared", None)
    assert sensor.required_resource_keys == {"lake"}
    defs = dg.Definitions(
        assets=[dg.AssetSpec("trips")],
        sensors=[sensor],
        resources={"lake": lake_store(lake, lake.container)},
    )
    with pytest.raises(FileExistsError):
        code_server_tick(defs, "declared", unopenable_instance, None)


def test_a_given_store_asks_for_one_run_per_change_with_the_same_key(
    lake: Lake, tmp_path: Path
) -> None:
    defs = catalog_definitions(lake.catalog())
    event = blob_event("Created", lake.container, "trips/a.csv", 1)
    lake.land("trips/a.csv")
    lake.send(event)
    home = tmp_path / "instance"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        ref = instance.get_ref()
        first = code_server_tick(defs, sensor_name(lake), ref, None)
        second = code_server_tick(defs, sensor_name(lake), ref, first.cursor)

    digest = hashlib.sha256(event["id"].encode()).hexdigest()[:16]
    assert [r.run_key for r in first.run_requests or []] == [f"trips:events:{digest}"]
    assert len(EventCursor.parse(first.cursor).pending) == 1
    assert not second.run_requests
    assert "1 handled message(s) deleted" in (second.skip_message or "")
    assert lake.messages_left() == 0


def test_resources_handed_to_an_evaluation_win_over_the_given_store(lake: Lake) -> None:
    sensor = lake_sensor(lake, "given", lake_store(lake, "elsewhere"))
    defs = dg.Definitions(assets=[dg.AssetSpec("trips")], sensors=[sensor])
    lake.send(blob_event("Created", lake.container, "trips/a.csv", 1))
    handed = {"lake": lake_store(lake, lake.container)}
    with dg.build_sensor_context(definitions=defs, resources=handed) as context:
        result = sensor.evaluate_tick(context)
    assert [r.tags["ingestion/dataset"] for r in result.run_requests or []] == ["trips"]
