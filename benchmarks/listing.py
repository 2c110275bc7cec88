"""How fast a data-change sensor tick is over 10,000 files, against the raw listing it rests on.

Prints, for the local datastore and for Azure Blob (Azurite, started here), the time of
 - the baseline: the bare listing a hand-written script would do (os.walk + stat; list_blobs),
 - ours: `list_files(glob)` + the listing fingerprint, and a full data-change sensor tick
   evaluated as Dagster's code server does (the instance's ref, the declared resources), with
   its fixed cost (the same tick over a store without files) and the tick minus it; once with
   the store given to the sensor, as the catalog builds it, and once declared as a resource
   (as before: Dagster then opens the instance on every tick to build it),
and the ratio ours / baseline, all measured in the same run. Data bytes read: zero by design
(the blob benchmark counts requests to prove only List Blobs calls are made).

Run: .venv/bin/python benchmarks/listing.py [--files 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingestion_project.catalog.spec import DataChangeTrigger, DatasetSpec
from ingestion_project.datasets.fingerprint import listing_fingerprint
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_common import AzureCredential
from ingestion_project.datastores.base import FileDatastore
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.triggers.data_change import WatchedDataset, build_data_change_sensor
from ingestion_project_tests.azurite import (
    ACCOUNT_KEY,
    Azurite,
    running_azurite,
)

PATTERN = "data/**/*.csv"
REPEATS = 5
# A local measurement takes milliseconds: more repeats, so a burst of other work misses some.
LOCAL_REPEATS = 15


def best_of(call: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def sensor_tick(
    store: FileDatastore,
    instance: dg.DagsterInstance,
    *,
    expect_run: bool = True,
    given: bool = True,
) -> Callable[[], object]:
    """A tick evaluated as the code server does under the daemon or `dg dev`.

    Dagster's gRPC server (``dagster._grpc.impl.get_external_sensor_execution``) hands the
    context the instance's ref and only the top-level resources the sensor declares. ``given``:
    the sensor holds the Definitions' store object, as the catalog builds it; otherwise it
    declares the store as a resource (as before), and Dagster opens the instance to build it.
    """
    spec = DatasetSpec(datastore="store", path=PATTERN, trigger=DataChangeTrigger())
    sensor = build_data_change_sensor(
        "bench",
        [WatchedDataset("bench", spec, ("bench",))],
        datastores={"store": store} if given else None,
    )
    defs = dg.Definitions(
        assets=[dg.AssetSpec("bench")], sensors=[sensor], resources={"store": store}
    )
    declared = {key: store for key in sensor.required_resource_keys}
    instance_ref = instance.get_ref()

    def tick() -> object:
        with dg.build_sensor_context(
            instance_ref=instance_ref, resources=declared, definitions=defs
        ) as context:
            result = sensor.evaluate_tick(context)
        if expect_run:
            assert result.run_requests, "the first tick of a new dataset must request a run"
        return result

    return tick


def report(label: str, baseline: float, ours: float, ticks: dict[str, tuple[float, float]]) -> None:
    """``ticks``: per way of ticking, the tick and its fixed cost (the tick over an empty store)."""
    print(label)
    print(f"  baseline listing          {baseline * 1000:9.1f} ms")
    print(f"  list_files + fingerprint  {ours * 1000:9.1f} ms   ratio {ours / baseline:5.2f}x")
    for way, (tick, fixed) in ticks.items():
        print(f"  data-change sensor tick, {way}")
        print(f"    tick                    {tick * 1000:9.1f} ms   ratio {tick / baseline:5.2f}x")
        print(
            f"    of which fixed cost     {fixed * 1000:9.1f} ms   (the tick over an empty store)"
        )
        print(
            f"    tick minus fixed cost   {(tick - fixed) * 1000:9.1f} ms   "
            f"ratio {(tick - fixed) / baseline:5.2f}x"
        )


def tick_ways(
    store: FileDatastore, empty: FileDatastore, repeats: int = REPEATS
) -> dict[str, tuple[float, float]]:
    """The tick with the store given to the sensor (now) and declared as a resource (before)."""
    with tempfile.TemporaryDirectory() as home, dg.DagsterInstance.local_temp(home) as instance:
        return {
            f"store {'given to the sensor' if given else 'declared as a resource'}": (
                best_of(sensor_tick(store, instance, given=given), repeats),
                best_of(sensor_tick(empty, instance, expect_run=False, given=given), repeats),
            )
            for given in (True, False)
        }


def bench_local(files: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        for index in range(files):
            folder = Path(root, "data", f"part={index % 100:03d}")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index:06d}.csv").write_text("a,b\n1,2\n")
        store = LocalDatastore(name="store", root=root)

        def baseline() -> list[tuple[str, int, float]]:
            found = []
            for dirpath, _, names in os.walk(Path(root, "data")):
                for name in names:
                    if name.endswith(".csv"):
                        stat = os.stat(os.path.join(dirpath, name))
                        found.append((name, stat.st_size, stat.st_mtime))
            return found

        assert len(store.list_files(PATTERN)) == files
        with tempfile.TemporaryDirectory() as nothing:
            empty = LocalDatastore(name="store", root=nothing)
            report(
                f"local datastore: {files:,} files",
                best_of(baseline, LOCAL_REPEATS),
                best_of(lambda: listing_fingerprint(store.list_files(PATTERN)), LOCAL_REPEATS),
                tick_ways(store, empty, LOCAL_REPEATS),
            )


@contextlib.contextmanager
def temporary_azurite() -> Iterator[Azurite]:
    with tempfile.TemporaryDirectory() as location, running_azurite(Path(location)) as service:
        yield service


def bench_blob(files: int) -> None:
    from azure.storage.blob import BlobServiceClient

    with temporary_azurite() as azurite:
        service = BlobServiceClient(azurite.account_url, credential=ACCOUNT_KEY)
        container = service.create_container("bench")
        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda i: container.upload_blob(
                        f"data/part={i % 100:03d}/{i:06d}.csv", b"a,b\n1,2\n"
                    ),
                    range(files),
                )
            )
        print(f"(uploaded {files:,} blobs to Azurite in {time.perf_counter() - started:.1f} s)")
        store = AzureBlobDatastore(
            name="store",
            account_url=azurite.account_url,
            container="bench",
            credential=AzureCredential(account_key=ACCOUNT_KEY),
        )

        def baseline() -> list[tuple[str, int, str]]:
            return [
                (blob.name, blob.size, blob.etag)
                for blob in container.list_blobs(name_starts_with="data/")
            ]

        assert len(store.list_files(PATTERN)) == files
        service.create_container("empty")
        empty = AzureBlobDatastore(
            name="store",
            account_url=azurite.account_url,
            container="empty",
            credential=AzureCredential(account_key=ACCOUNT_KEY),
        )
        report(
            f"azure_blob on Azurite: {files:,} files",
            best_of(baseline),
            best_of(lambda: listing_fingerprint(store.list_files(PATTERN))),
            tick_ways(store, empty),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--skip-blob", action="store_true", help="local datastore only")
    args = parser.parse_args()
    bench_local(args.files)
    if not args.skip_blob:
        bench_blob(args.files)


if __name__ == "__main__":
    main()
