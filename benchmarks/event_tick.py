"""A storage-event sensor tick against a polling tick and a bare listing, as the store grows.

On Azurite (Blob and Queue, started here), for each store size: the store holds N blobs, one
more lands and its Blob Created event is queued as Event Grid queues it. Timed, best of 5:
 - the baseline: a bare `list_blobs` of the store (the floor of any polling trigger),
 - the polling data-change sensor's tick that finds the change (it lists the store),
 - the storage-event sensor's tick that finds it (it reads the queue and never lists).
The event tick should stay flat as N grows; the other two grow with N.

Run: .venv/bin/python benchmarks/event_tick.py [--files 1000 10000]
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def bench(files: int, blob_url: str, queue_url: str) -> None:
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueClient

    name = f"bench{files}"
    container = BlobServiceClient(blob_url, credential=ACCOUNT_KEY).create_container(name)
    credential = {"account_name": ACCOUNT_NAME, "account_key": ACCOUNT_KEY}
    queue = QueueClient(queue_url, f"events-{files}", credential=credential)
    queue.create_queue()
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
    polling = build_data_change_sensor(
        "poll",
        [
            WatchedDataset(
                "bench",
                DatasetSpec(datastore="store", path=PATTERN, trigger=DataChangeTrigger()),
                ("bench",),
            )
        ],
    )
    trigger = StorageEventsTrigger.model_validate(
        {"storage_events": {"queue": f"events-{files}", "account_url": queue_url}}
    )
    events = build_storage_event_sensor(
        "events",
        [
            EventWatchedDataset(
                "bench", DatasetSpec(datastore="store", path=PATTERN, trigger=trigger), ("bench",)
            )
        ],
    )

    defs = dg.Definitions(
        assets=[dg.AssetSpec("bench")], sensors=[polling, events], resources={"store": store}
    )

    def tick(sensor: dg.SensorDefinition, cursor: str | None) -> dg.SensorResult:
        with dg.build_sensor_context(
            resources={"store": store}, cursor=cursor, definitions=defs
        ) as context:
            return sensor.evaluate_tick(context)  # type: ignore[return-value]

    listing, poll, react = [], [], []
    poll_cursor = tick(polling, None).cursor
    event_cursor = tick(events, None).cursor
    for repeat in range(REPEATS):
        listing.append(timed(lambda: list(container.list_blobs(name_starts_with="data/"))))
        landed = f"data/new/{repeat}.csv"
        container.upload_blob(landed, b"a\n1\n")
        queue.send_message(event(name, landed))
        before = poll_cursor
        poll.append(timed(lambda before=before: tick(polling, before)))
        poll_cursor = tick(polling, before).cursor
        started = time.perf_counter()
        found = tick(events, event_cursor)
        react.append(time.perf_counter() - started)
        assert found.run_requests, "the event tick must find the change"
        event_cursor = found.cursor
    base = min(listing)
    for label, seconds in (
        ("bare list_blobs", base),
        ("polling tick (a change)", min(poll)),
        ("event tick (a change)", min(react)),
    ):
        print(f"  {label:24} {seconds * 1000:9.1f} ms   ratio to listing {seconds / base:6.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[1_000, 10_000])
    args = parser.parse_args()
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
