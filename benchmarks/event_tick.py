"""A storage-event sensor tick against a polling tick and a bare listing, as the store grows.

On Azurite (Blob and Queue, started here), for each store size: the store holds N blobs, one
more lands and its Blob Created event is queued as Event Grid queues it. Timed, best of 5:
 - the baseline: a bare `list_blobs` of the store (the floor of any polling trigger),
 - the polling data-change sensor's tick that finds the change (it lists the store),
 - the storage-event sensor's tick that finds it (it reads the queue and never lists),
 - the storage-event sensor's tick over an empty queue (most of its ticks).
Each tick is evaluated as Dagster's code server does (the instance's ref, only the resources the
sensor declares), once with the store given to the sensor, as the catalog builds it (now), and
once with the store declared as a resource (before: Dagster then opens the instance on every
tick to build it). Each way has its own queue and cursors; the order of the two flips each
round. The event tick should stay flat as N grows; the other two grow with N.

Run: .venv/bin/python benchmarks/event_tick.py [--files 1000 10000]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingestion_project.catalog.spec import DataChangeTrigger, DatasetSpec, StorageEventsTrigger
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_common import AzureCredential
from ingestion_project.triggers.data_change import WatchedDataset, build_data_change_sensor
from ingestion_project.triggers.storage_events import (
    EventWatchedDataset,
    build_storage_event_sensor,
)
from ingestion_project_tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME, running_azurite

PATTERN = "data/**/*.csv"
REPEATS = 5


def event(container: str, name: str) -> str:
    body = {
        "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": str(uuid.uuid4()),
        "data": {"api": "PutBlob", "sequencer": f"{time.time_ns():048x}"},
        "dataVersion": "",
        "metadataVersion": "1",
    }
    return base64.b64encode(json.dumps(body).encode()).decode()


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


class Way:
    """The sensors of one way of ticking: the store given to them, or declared as a resource."""

    def __init__(self, given: bool, store: AzureBlobDatastore, queue: str, queue_url: str) -> None:
        self.label = "given (now)" if given else "declared (before)"
        datastores = {"store": store} if given else None
        polling_spec = DatasetSpec(datastore="store", path=PATTERN, trigger=DataChangeTrigger())
        self.polling = build_data_change_sensor(
            f"poll_{int(given)}",
            [WatchedDataset("bench", polling_spec, ("bench",))],
            datastores=datastores,
        )
        trigger = StorageEventsTrigger.model_validate(
            {"storage_events": {"queue": queue, "account_url": queue_url}}
        )
        events_spec = DatasetSpec(datastore="store", path=PATTERN, trigger=trigger)
        self.events = build_storage_event_sensor(
            f"events_{int(given)}",
            [EventWatchedDataset("bench", events_spec, ("bench",))],
            datastores=datastores,
        )
        self.defs = dg.Definitions(
            assets=[dg.AssetSpec("bench")],
            sensors=[self.polling, self.events],
            resources={"store": store},
        )
        self.store = store
        self.poll_cursor: str | None = None
        self.event_cursor: str | None = None
        self.times: dict[str, list[float]] = {"poll": [], "change": [], "idle": []}

    def tick(self, sensor: dg.SensorDefinition, cursor: str | None, ref: Any) -> dg.SensorResult:
        """As the code server evaluates it (``get_external_sensor_execution``)."""
        declared = {key: self.store for key in sensor.required_resource_keys}
        with dg.build_sensor_context(
            instance_ref=ref, resources=declared, cursor=cursor, definitions=self.defs
        ) as context:
            return sensor.evaluate_tick(context)  # type: ignore[return-value]

    def seed(self, ref: Any) -> None:
        self.poll_cursor = self.tick(self.polling, None, ref).cursor
        self.event_cursor = self.tick(self.events, None, ref).cursor

    def round(self, ref: Any) -> None:
        """A blob landed and its event is queued: the polling tick, the event tick, then idle."""
        started = time.perf_counter()
        polled = self.tick(self.polling, self.poll_cursor, ref)
        self.times["poll"].append(time.perf_counter() - started)
        assert polled.run_requests, "the polling tick must find the change"
        self.poll_cursor = polled.cursor
        started = time.perf_counter()
        found = self.tick(self.events, self.event_cursor, ref)
        self.times["change"].append(time.perf_counter() - started)
        assert len(found.run_requests or []) == 1, "the event tick must find the change"
        # The next tick deletes the handled message; the one after reads an empty queue.
        cursor = self.tick(self.events, found.cursor, ref).cursor
        started = time.perf_counter()
        idle = self.tick(self.events, cursor, ref)
        self.times["idle"].append(time.perf_counter() - started)
        assert not idle.run_requests
        self.event_cursor = idle.cursor


def bench(files: int, blob_url: str, queue_url: str) -> None:
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueClient

    name = f"bench{files}"
    container = BlobServiceClient(blob_url, credential=ACCOUNT_KEY).create_container(name)
    credential = {"account_name": ACCOUNT_NAME, "account_key": ACCOUNT_KEY}
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda i: container.upload_blob(f"data/p={i % 100:03d}/{i:07d}.csv", b"a\n1\n"),
                range(files),
            )
        )
    print(f"{files:,} blobs uploaded to Azurite in {time.perf_counter() - started:.1f} s")
    store = AzureBlobDatastore(
        name="store",
        account_url=blob_url,
        container=name,
        credential=AzureCredential(account_key=ACCOUNT_KEY),
    )
    ways, queues = [], []
    for given in (True, False):
        queue_name = f"events-{files}-{'given' if given else 'declared'}"
        queues.append(QueueClient(queue_url, queue_name, credential=credential))
        queues[-1].create_queue()
        ways.append(Way(given, store, queue_name, queue_url))

    listing: list[float] = []
    with tempfile.TemporaryDirectory() as home, dg.DagsterInstance.local_temp(home) as instance:
        ref = instance.get_ref()
        for way in ways:
            way.seed(ref)
        for repeat in range(REPEATS):
            listing.append(timed(lambda: list(container.list_blobs(name_starts_with="data/"))))
            landed = f"data/new/{repeat}.csv"
            container.upload_blob(landed, b"a\n1\n")
            for queue in queues:
                queue.send_message(event(name, landed))
            for way in ways if repeat % 2 == 0 else ways[::-1]:
                way.round(ref)
    base = min(listing)
    print(f"  {'bare list_blobs':34} {base * 1000:9.1f} ms")
    print(f"  {'':34} {ways[1].label:>30} {ways[0].label:>30}")
    for key, label in (
        ("poll", "polling tick (a change)"),
        ("change", "event tick (a change)"),
        ("idle", "event tick (empty queue)"),
    ):
        cells = [min(way.times[key]) for way in (ways[1], ways[0])]
        print(
            f"  {label:34} "
            + " ".join(f"{c * 1000:9.1f} ms ({c / base:6.3f}x listing)" for c in cells)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[1_000, 10_000])
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with (
        tempfile.TemporaryDirectory() as blob_dir,
        tempfile.TemporaryDirectory() as queue_dir,
        running_azurite(Path(blob_dir)) as blob,
        running_azurite(Path(queue_dir), "queue") as queue,
    ):
        queue_url = f"http://{queue.host}:{queue.port}/{ACCOUNT_NAME}"
        for files in args.files:
            bench(files, blob.account_url, queue_url)


if __name__ == "__main__":
    main()
