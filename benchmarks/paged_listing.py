"""A data-change sensor's paged scan of 1,000 to 100,000 blobs: tick times and what it reads.

On Azurite (started here, in its own process group, on a temp dir), one container holds N blobs
in 100 folders (`data/part=NNN/`), all matching the dataset's `data/**/*.csv`. For each N:
 - the baseline: a bare `ContainerClient.list_blobs(name_starts_with="data/")` read to the end,
   the practical floor of any polling trigger (goal: a scan within 1.5x of it);
 - ours: the real sensor (default 20 s budget, default page size 5,000) evaluated tick after
   tick, the cursor passed along, until its listing finishes: a scan that finds nothing (it
   must ask for no run) and, after one new blob lands, a scan that finds it (exactly one run).
   Printed: ticks, the longest tick (Dagster's limit is 60 s), all ticks together, the ratio;
 - every HTTP request the datastore sends, by operation, counted in its transport: only List
   Blobs calls may appear, so the data bytes read (Get Blob) must be 0.
The store grows from one size to the next; blobs landed for a size are deleted before the next.
The store is re-listed in rounds (3, or 2 above 10,000 blobs): bare listing, unchanged scan,
changed scan; the best round is shown. No timing is asserted.

Run: .venv/bin/python benchmarks/paged_listing.py [--files 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import dagster as dg
import requests
from azure.core.pipeline.transport import HttpTransport, RequestsTransport
from azure.storage.blob import BlobServiceClient, ContainerClient
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingestion_project.catalog.spec import DataChangeTrigger, DatasetSpec
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_common import AzureCredential
from ingestion_project.datastores.base import LISTING_PAGE_SIZE
from ingestion_project.triggers.change_cursor import WatchCursor
from ingestion_project.triggers.data_change import (
    TICK_BUDGET_SECONDS,
    WatchedDataset,
    build_data_change_sensor,
)
from ingestion_project_tests.azurite import (
    ACCOUNT_KEY,
    running_azurite,
)

if TYPE_CHECKING:
    from dagster._core.definitions.sensor_definition import SensorExecutionData

PATTERN = "data/**/*.csv"
DATASET = "bench"
SENSOR = "bench__data_change_every_30s"
CONTAINER = "bench"
FOLDERS = 100
THREADS = 24
PROGRESS_EVERY = 10_000
ROUNDS = 3
LARGE = 10_000  # above this many blobs, ROUNDS_LARGE rounds: a round lists the store three times
ROUNDS_LARGE = 2
MAX_TICKS = 1_000  # a scan that has not finished by then is a bug, not a slow store
DAGSTER_TICK_LIMIT = 60.0


def blob_name(index: int) -> str:
    return f"data/part={index % FOLDERS:03d}/{index:07d}.csv"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def operation(method: str, url: str) -> str:
    """The Blob service operation a request is, by its method and query (``comp``, ``restype``)."""
    query = dict(parse_qsl(urlsplit(url).query))
    if method == "GET" and query.get("restype") == "container" and query.get("comp") == "list":
        return "List Blobs"
    if method == "GET" and "comp" not in query and "restype" not in query:
        return "Get Blob"  # reads a blob's bytes: what a data-change tick must never do
    return f"{method} {query.get('comp') or query.get('restype') or 'blob'}"


@dataclass
class Traffic:
    """What the datastore sent: requests by operation, seconds waiting on them, bytes of data."""

    calls: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    data_bytes: int = 0

    def taken(self) -> Traffic:
        """A copy of the counts so far, and the counts back at zero for what comes next."""
        copy = Traffic(Counter(self.calls), self.seconds, self.data_bytes)
        self.calls.clear()
        self.seconds, self.data_bytes = 0.0, 0
        return copy


# Every request the benchmark's datastore sends. Module-level: Dagster builds the resource anew
# from its fields for every tick, so nothing set on one instance (private attributes) survives.
TRAFFIC = Traffic()


class CountingTransport(HttpTransport):
    """Hands every request to the store's own transport, counting it in TRAFFIC on the way."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def send(self, request: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        response = self._inner.send(request, **kwargs)
        TRAFFIC.seconds += time.perf_counter() - started
        kind = operation(request.method, request.url)
        TRAFFIC.calls[kind] += 1
        if kind == "Get Blob":
            TRAFFIC.data_bytes += int(response.headers.get("Content-Length") or 0)
        return response

    def open(self) -> None:
        self._inner.open()

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> CountingTransport:
        self._inner.__enter__()
        return self

    def __exit__(self, *args: object) -> None:
        self._inner.__exit__(*args)


class CountingBlobDatastore(AzureBlobDatastore):
    """The Azure Blob datastore as it is (timeouts, retries, transport), its requests counted."""

    def pipeline_options(self) -> dict[str, Any]:
        options = super().pipeline_options()
        options["transport"] = CountingTransport(options["transport"])
        return options


@dataclass(frozen=True)
class Scan:
    """One full paged listing by the sensor: each tick's seconds, the runs asked, the traffic."""

    ticks: list[float]
    runs: int
    cursor: str | None
    traffic: Traffic
    message: str

    @property
    def total(self) -> float:
        return sum(self.ticks)

    @property
    def longest(self) -> float:
        return max(self.ticks)


class Bench:
    """The sensor over one dataset on the store, and a way to run a whole scan tick by tick."""

    def __init__(self, store: AzureBlobDatastore) -> None:
        self.resources: dict[str, Any] = {"store": store}
        spec = DatasetSpec(datastore="store", path=PATTERN, trigger=DataChangeTrigger())
        sensor = build_data_change_sensor(SENSOR, [WatchedDataset(DATASET, spec, (DATASET,))])
        self.defs = dg.Definitions(
            assets=[dg.AssetSpec(DATASET)], sensors=[sensor], resources=self.resources
        )
        self.sensor = self.defs.resolve_sensor_def(SENSOR)
        self.instance = dg.DagsterInstance.ephemeral()

    def tick(self, cursor: str | None) -> SensorExecutionData:
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=cursor,
            definitions=self.defs,
            resources=self.resources,
        ) as context:
            return self.sensor.evaluate_tick(context)

    def scan(self, cursor: str | None) -> Scan:
        """Ticks from ``cursor``, each given the last one's cursor, until the listing finishes.

        Each tick is timed as the daemon runs it: context (resources) built and torn down too.
        """
        TRAFFIC.taken()
        ticks: list[float] = []
        runs = 0
        message = ""
        for _ in range(MAX_TICKS):
            started = time.perf_counter()
            result = self.tick(cursor)
            ticks.append(time.perf_counter() - started)
            runs += len(result.run_requests or [])
            message = result.skip_message or ""  # the last tick's: none if it asked a run
            cursor = result.cursor
            state = WatchCursor.parse(cursor).datasets.get(DATASET)
            if state is not None and state.scan is None:
                return Scan(ticks, runs, cursor, TRAFFIC.taken(), message)
        raise RuntimeError(f"the scan did not finish in {MAX_TICKS} ticks")


def upload(container: ContainerClient, start: int, stop: int) -> None:
    """Blobs ``start`` to ``stop`` - 1, a few bytes each, in parallel, with progress."""
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        for chunk in range(start, stop, PROGRESS_EVERY):
            end = min(chunk + PROGRESS_EVERY, stop)
            list(
                pool.map(
                    lambda i: container.upload_blob(blob_name(i), b"a,b\n1,2\n"), range(chunk, end)
                )
            )
            if stop - start > PROGRESS_EVERY:
                print(
                    f"  ... {end:,} / {stop:,} blobs ({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    print(
        f"  uploaded {stop - start:,} blobs ({start:,} -> {stop:,}) in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def bare_listing(container: ContainerClient) -> Callable[[], object]:
    def listing() -> list[tuple[str, int | None, str]]:
        return [
            (blob.name, blob.size, blob.etag)
            for blob in container.list_blobs(name_starts_with="data/")
        ]

    return listing


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def describe(label: str, scans: list[Scan], floor: float, runs_expected: int) -> None:
    """The best scan of the rounds (fewest seconds in all), the longest tick of any of them."""
    best = min(scans, key=lambda scan: scan.total)
    longest = max(scan.longest for scan in scans)
    runs = [scan.runs for scan in scans]
    calls = Counter[str]()
    for scan in scans:
        calls.update(scan.traffic.calls)
    data = sum(scan.traffic.data_bytes for scan in scans)
    only_lists = set(calls) == {"List Blobs"}
    verdict = "OK" if only_lists and data == 0 and set(runs) == {runs_expected} else "FAIL"
    print(
        f"  {label:15} {len(best.ticks)} ticks, all {ms(best.total):>10} ({best.total / floor:.2f}x"
        f" listing), longest tick {ms(best.longest)} (of any round {ms(longest)}, limit "
        f"{DAGSTER_TICK_LIMIT:.0f} s)"
    )
    print(
        f"  {'':15} runs asked per scan {runs} (expected {runs_expected}); requests per scan "
        f"{dict(best.traffic.calls)}, {best.traffic.seconds * 1000:,.0f} ms waiting on them; "
        f"data bytes read {data} [{verdict}]"
    )
    each = ", ".join(f"{seconds:.2f}" for seconds in best.ticks)
    print(f"  {'':15} its ticks (s): {each}")
    if best.message:
        print(f"  {'':15} last tick: {best.message}")


def bench(
    files: int,
    have: int,
    container: ContainerClient,
    plain: ContainerClient,
    store: AzureBlobDatastore,
) -> None:
    """Grow the store to ``files`` blobs, then list and scan it in rounds and print the figures.

    ``container`` (a pool as large as the upload threads) writes; ``plain``, a client as a
    hand-written script would build it, is the baseline's.
    """
    print(f"\n{files:,} blobs in {FOLDERS} folders (load average {load_average()})", flush=True)
    upload(container, have, files)
    sensor = Bench(store)
    first = sensor.scan(None)
    print(
        f"  first scan (new cursor): {len(first.ticks)} ticks, {ms(first.total)}, "
        f"{first.runs} run(s) asked",
        flush=True,
    )
    cursor = first.cursor
    rounds = ROUNDS if files <= LARGE else ROUNDS_LARGE
    listings: list[float] = []
    unchanged: list[Scan] = []
    changed: list[Scan] = []
    landed: list[str] = []
    for round_ in range(rounds):
        listings.append(timed(bare_listing(plain)))
        unchanged.append(sensor.scan(cursor))
        cursor = unchanged[-1].cursor
        landed.append(f"data/part={round_ % FOLDERS:03d}/landed-{round_}.csv")
        container.upload_blob(landed[-1], b"a,b\n3,4\n")
        changed.append(sensor.scan(cursor))
        cursor = changed[-1].cursor
        print(
            f"  round {round_ + 1}/{rounds}: listing {ms(listings[-1])}, unchanged scan "
            f"{ms(unchanged[-1].total)}, changed scan {ms(changed[-1].total)} "
            f"(load average {load_average()})",
            flush=True,
        )
    floor = min(listings)
    print(f"  bare list_blobs {ms(floor)} (best of {rounds}); {floor / files * 1e6:.0f} us a blob")
    describe("unchanged scan", unchanged, floor, 0)
    describe("one new blob", changed, floor, 1)
    container.delete_blobs(*landed)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--files", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    sizes: list[int] = sorted(args.files)
    print(f"Load average: {load_average()} on {os.cpu_count()} cores (other work skews figures).")
    print(f"Sensor budget {TICK_BUDGET_SECONDS:.0f} s a tick, pages of {LISTING_PAGE_SIZE:,}.")
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=THREADS))
    with tempfile.TemporaryDirectory() as location, running_azurite(Path(location)) as azurite:
        service = BlobServiceClient(
            azurite.account_url,
            credential=ACCOUNT_KEY,
            transport=RequestsTransport(session=session, session_owner=False),
        )
        container = service.create_container(CONTAINER)
        plain = ContainerClient(azurite.account_url, CONTAINER, credential=ACCOUNT_KEY)
        store = CountingBlobDatastore(
            name="store",
            account_url=azurite.account_url,
            container=CONTAINER,
            credential=AzureCredential(account_key=ACCOUNT_KEY),
        )
        have = 0
        for files in sizes:
            bench(files, have, container, plain, store)
            have = files
        plain.close()
        service.close()
        session.close()
    print(f"\nLoad average at the end: {load_average()}")


if __name__ == "__main__":
    main()
