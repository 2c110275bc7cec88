"""A polling tick that lists a large store a page at a time, resuming across ticks, on Azurite.

Pages of 50 names stand in for the services' 5,000, and a clock that advances one unit per
reading with a budget of 1.5 units lets a tick read two pages: 230 files take three ticks.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import dagster as dg
import pytest
import requests
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._requests_basic import RestRequestsTransportResponse
from azure.storage.blob import BlobServiceClient, ContainerClient
from requests.structures import CaseInsensitiveDict

from ingestion_project.catalog.spec import DatasetSpec, RegistrySpec
from ingestion_project.datasets.versions import dataset_registry, register_file_dataset
from ingestion_project.datastores.adls_gen2 import AdlsGen2Datastore
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_common import AzureCredential
from ingestion_project.datastores.base import (
    FileDatastore,
    listing_digest,
    set_digest,
    set_fingerprint,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.triggers.change_cursor import ChangeCursor, ListingScan, WatchCursor
from ingestion_project.triggers.data_change import WatchedDataset, build_data_change_sensor
from ingestion_project_tests.azurite import Azurite

PAGE = 50
FILES = 230  # five pages: two ticks of two pages, then one
SENSOR = "lake__data_change_every_60s"


@pytest.fixture(autouse=True)
def direct_to_azurite(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def container(azurite: Azurite) -> Iterator[ContainerClient]:
    service = BlobServiceClient(azurite.account_url, credential=azurite.account_key)
    client = service.create_container(f"paged{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_container()


def land(container: ContainerClient, *names: str, text: str = "id\n1\n") -> None:
    for name in names:
        container.upload_blob(name, text.encode(), overwrite=True)


def blob_store(azurite: Azurite, container: ContainerClient) -> AzureBlobDatastore:
    return AzureBlobDatastore(
        name="lake",
        account_url=azurite.account_url,
        container=container.container_name,
        credential=AzureCredential(account_key=azurite.account_key),
    )


def adls_store(azurite: Azurite, container: ContainerClient) -> AdlsGen2Datastore:
    return AdlsGen2Datastore(
        name="lake",
        account_url=azurite.account_url,
        filesystem=container.container_name,
        endpoint="blob",
        credential=AzureCredential(account_key=azurite.account_key),
    )


def watched_spec(name: str) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {"datastore": "lake", "path": f"{name}/*.csv", "trigger": {"data_change": {}}}
    )


def sensor_defs(
    store: FileDatastore,
    names: tuple[str, ...] = ("trips",),
    registry: tuple[RegistrySpec, FileDatastore] | None = None,
) -> dg.Definitions:
    """A sensor over ``names`` (each ``<name>/*.csv``) whose tick can read two pages."""
    clock = itertools.count()
    watched = [WatchedDataset(name, watched_spec(name), (name,)) for name in names]
    sensor = build_data_change_sensor(
        SENSOR,
        watched,
        clock=lambda: float(next(clock)),
        budget_seconds=1.5,
        registry=None if registry is None else registry[0],
        page_size=PAGE,
    )
    resources: dict[str, Any] = {"lake": store}
    if registry is not None:
        resources[registry[0].datastore] = registry[1]
    return dg.Definitions(
        assets=[dg.AssetSpec(name) for name in names], sensors=[sensor], resources=resources
    )


def tick(defs: dg.Definitions, cursor: str | None) -> Any:
    with dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(),
        cursor=cursor,
        definitions=defs,
        resources=dict(defs.resources or {}),
    ) as context:
        return defs.resolve_sensor_def(SENSOR).evaluate_tick(context)


def scan(defs: dg.Definitions, cursor: str | None, ticks: int = 3) -> tuple[list[Any], str | None]:
    """``ticks`` ticks in a row (a full scan of FILES files); the results and the last cursor."""
    results = []
    for _ in range(ticks):
        results.append(tick(defs, cursor))
        cursor = results[-1].cursor
    return results, cursor


def keys(results: list[Any]) -> list[str]:
    return [request.run_key for result in results for request in result.run_requests]


def expected(store: FileDatastore, pattern: str = "trips/*.csv") -> str:
    entries = [(info.path, info.size, info.etag) for info in store.list_files(pattern)]
    return set_fingerprint(set_digest(entries))


def state(cursor: str | None, name: str = "trips") -> ChangeCursor:
    return WatchCursor.parse(cursor).datasets[name]


def trips(count: int = FILES) -> list[str]:
    return [f"trips/{index:04d}.csv" for index in range(count)]


@pytest.mark.parametrize("kind", ["azure_blob", "adls_gen2"])
def test_a_listing_spans_ticks_and_its_end_asks_for_one_run(
    azurite: Azurite, container: ContainerClient, kind: str
) -> None:
    store = (blob_store if kind == "azure_blob" else adls_store)(azurite, container)
    land(container, *trips(), "other/elsewhere.csv", "trips/notes.txt")
    defs = sensor_defs(store)

    (first, second, third), cursor = scan(defs, None)

    assert not first.run_requests and not second.run_requests
    assert first.skip_message == (
        "'trips' listing in progress: 100 files so far, resumes next tick"
    )
    assert "200 files so far" in (second.skip_message or "")
    assert state(second.cursor).scan is not None and state(second.cursor).fingerprint is None
    fingerprint = expected(store)
    assert keys([third]) == [f"trips:1:{fingerprint}"]
    assert state(cursor) == ChangeCursor(fingerprint, 1)


def test_a_repeated_tick_and_an_unchanged_scan_ask_for_nothing_more(
    azurite: Azurite, container: ContainerClient
) -> None:
    land(container, *trips())
    defs = sensor_defs(blob_store(azurite, container))
    (_, second, third), cursor = scan(defs, None)

    # The daemon may evaluate a tick again from the same cursor: the same key, run once.
    assert keys([tick(defs, second.cursor)]) == keys([third])
    again, after = scan(defs, cursor)

    assert keys(again) == []
    assert "'trips' unchanged (230 files)" in (again[-1].skip_message or "")
    assert after == cursor


def test_a_file_landing_ahead_of_the_scan_asks_for_one_run_when_the_scan_ends(
    azurite: Azurite, container: ContainerClient
) -> None:
    store = blob_store(azurite, container)
    land(container, *trips())
    defs = sensor_defs(store)
    _, cursor = scan(defs, None)

    first = tick(defs, cursor)
    land(container, "trips/9999.csv")  # on the last page, not read yet
    rest, after = scan(defs, first.cursor, ticks=2)

    assert keys([first]) == []
    assert keys(rest) == [f"trips:2:{expected(store)}"]
    assert state(after).scan is None
    assert keys(scan(defs, after)[0]) == []


def test_a_file_changed_behind_the_scan_asks_for_one_run_one_scan_later(
    azurite: Azurite, container: ContainerClient
) -> None:
    store = blob_store(azurite, container)
    land(container, *trips())
    defs = sensor_defs(store)
    _, cursor = scan(defs, None)

    first = tick(defs, cursor)
    land(container, "trips/0000.csv", text="id\n2\n")  # on the first page, read already
    rest, finished = scan(defs, first.cursor, ticks=2)
    following, after = scan(defs, finished)

    assert keys([first, *rest]) == []  # this scan saw the old file: nothing changed for it
    assert keys(following) == [f"trips:2:{expected(store)}"]
    assert keys(scan(defs, after)[0]) == []


def test_a_deleted_file_asks_for_one_run(azurite: Azurite, container: ContainerClient) -> None:
    store = blob_store(azurite, container)
    land(container, *trips())
    defs = sensor_defs(store)
    _, cursor = scan(defs, None)

    container.delete_blob("trips/0120.csv")
    results, after = scan(defs, cursor)

    assert keys(results) == [f"trips:2:{expected(store)}"]
    assert "229 files" in (scan(defs, after)[0][-1].skip_message or "")


def test_an_unfinished_scan_resumes_first_and_the_others_keep_their_turn(
    azurite: Azurite, container: ContainerClient
) -> None:
    land(container, *trips(), "stations/a.csv")
    defs = sensor_defs(blob_store(azurite, container), names=("stations", "trips"))

    first = tick(defs, None)
    second = tick(defs, first.cursor)
    third = tick(defs, second.cursor)
    fourth = tick(defs, third.cursor)

    assert [key.split(":")[0] for key in keys([first])] == ["stations"]
    assert WatchCursor.parse(first.cursor).after == "stations"  # 'trips' comes first next
    assert "'trips' listing in progress: 150 files so far" in (second.skip_message or "")
    assert [key.split(":")[0] for key in keys([third])] == ["trips"]
    assert WatchCursor.parse(third.cursor).after == "trips"  # out of time before 'stations'
    assert "'stations' unchanged (1 files)" in (fourth.skip_message or "")


def registered(store: FileDatastore, tmp_path: Path) -> tuple[RegistrySpec, LocalDatastore, int]:
    """The files of ``trips`` registered as a version, in a local registry."""
    spec = RegistrySpec(datastore="registry", prefix="_registry")
    local = LocalDatastore(name="registry", root=str(tmp_path / "registry"))
    dataset = watched_spec("trips").model_copy(update={"kind": "file"})
    registration = register_file_dataset(
        "trips", dataset, store, dataset_registry(local, spec.prefix), run_id="r", code_version="c"
    )
    return spec, local, registration.record.version


def test_a_reset_cursor_asks_nothing_for_files_already_registered(
    azurite: Azurite, container: ContainerClient, tmp_path: Path
) -> None:
    store = blob_store(azurite, container)
    land(container, *trips())
    spec, local, version = registered(store, tmp_path)
    defs = sensor_defs(store, registry=(spec, local))

    results, cursor = scan(defs, None)

    assert keys(results) == []
    assert "'trips' v1 holds these files already" in (results[-1].skip_message or "")
    assert state(cursor) == ChangeCursor(expected(store), version)
    land(container, "trips/9999.csv")
    assert keys(scan(defs, cursor)[0]) == [f"trips:2:{expected(store)}"]


def test_a_cursor_from_before_paging_asks_nothing_for_registered_files(
    azurite: Azurite, container: ContainerClient, tmp_path: Path
) -> None:
    """A cursor holding the whole-listing digest: the registry says the files are known."""
    store = blob_store(azurite, container)
    land(container, *trips())
    spec, local, _ = registered(store, tmp_path)
    defs = sensor_defs(store, registry=(spec, local))
    old = listing_digest((i.path, i.size, i.etag) for i in store.list_files("trips/*.csv"))
    before = WatchCursor(datasets={"trips": ChangeCursor(old, 4)}).serialize()

    results, cursor = scan(defs, before)

    assert keys(results) == []
    assert state(cursor) == ChangeCursor(expected(store), 4)  # the count never goes back


@pytest.mark.parametrize("kind", ["azure_blob", "adls_gen2"])
def test_the_set_digest_does_not_depend_on_page_boundaries(
    azurite: Azurite, container: ContainerClient, kind: str
) -> None:
    made = (blob_store if kind == "azure_blob" else adls_store)(azurite, container)
    land(container, *trips(123), "trips/skip.txt")
    digests = set()
    for size in (7, 50, 5000):
        digest, token, pages = 0, None, 0
        while True:
            page = made.listing_page("trips/*.csv", token, size)
            digest, token, pages = set_digest(page.entries, digest), page.next_token, pages + 1
            if token is None:
                break
        assert pages == -(-124 // size)  # the service's pages, the .txt among the names
        digests.add(digest)
    assert {set_fingerprint(digest) for digest in digests} == {expected(made)}


@pytest.mark.parametrize("seed", range(5))
def test_the_set_digest_is_the_same_for_any_order_and_split(seed: int) -> None:
    entries = [(f"data/{index}.csv", index, f"0x{index:x}") for index in range(300)]
    shuffled = random.Random(seed).sample(entries, len(entries))
    cut = random.Random(seed).randrange(1, 299)

    assert set_digest(shuffled[cut:], set_digest(shuffled[:cut])) == set_digest(entries)
    assert set_digest(entries[1:]) != set_digest(entries)
    assert set_fingerprint(set_digest(entries)).startswith("set:")


def test_old_cursors_parse_and_a_scan_survives_the_round_trip() -> None:
    old = '{"after": null, "datasets": {"trips": {"changes": 2, "fingerprint": "ab"}}}'
    scanning = ChangeCursor("ab", 2, ListingScan("token/1", 2**255 + 7, 5000))

    assert WatchCursor.parse(old).datasets == {"trips": ChangeCursor("ab", 2)}
    assert WatchCursor.parse(WatchCursor.parse(old).serialize()).serialize() == old
    both = WatchCursor(datasets={"trips": scanning})
    assert WatchCursor.parse(both.serialize()) == both


class ListPaths(HttpTransport):
    """Answers the Data Lake API's Path - List, as the REST reference documents it, in pages.

    Azurite has no DFS endpoint, so this plays one: ``maxResults`` names a page, the next
    page's start in ``x-ms-continuation``; it records the continuation each request sent.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = sorted(names)
        self.continuations: list[str | None] = []

    def send(self, request: Any, **kwargs: Any) -> RestRequestsTransportResponse:
        query = dict(parse_qsl(urlsplit(request.url).query))
        assert request.method == "GET" and query["resource"] == "filesystem", request.url
        under = f"{query['directory']}/"
        names = [name for name in self.names if name.startswith(under)]
        start, size = int(query.get("continuation") or 0), int(query.get("maxResults") or 5000)
        self.continuations.append(query.get("continuation"))
        modified = "Mon, 30 Nov 2026 10:00:00 GMT"
        paths = [
            {"name": name, "contentLength": "3", "etag": f"0x{index:X}", "lastModified": modified}
            | ({"isDirectory": "true"} if name.endswith("/dir") else {})
            for index, name in enumerate(names[start : start + size], start)
        ]
        raw = requests.Response()
        raw.status_code, raw.reason, raw.url = 200, "OK", request.url
        raw.headers = CaseInsensitiveDict({"Content-Type": "application/json;charset=utf-8"})
        if start + size < len(names):
            raw.headers["x-ms-continuation"] = str(start + size)
        raw.raw = io.BytesIO(json.dumps({"paths": paths}).encode())
        response = RestRequestsTransportResponse(request=request, internal_response=raw)
        if not kwargs.get("stream"):
            response.read()
        return response

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


def test_the_dfs_endpoint_pages_by_the_services_continuation() -> None:
    service = ListPaths([*trips(9), "trips/dir", "trips/skip.txt", "other/a.csv"])
    key = base64.b64encode(bytes(64)).decode()
    store = AdlsGen2Datastore(
        name="lake",
        account_url="https://acct.dfs.core.windows.net",
        filesystem="lake",
        credential=AzureCredential(account_key=key),
    ).using_transport(service)

    pages = [store.listing_page("trips/*.csv", None, 4)]
    while pages[-1].next_token is not None:
        pages.append(store.listing_page("trips/*.csv", pages[-1].next_token, 4))

    assert service.continuations == [None, "4", "8"]  # 11 names under trips/, 4 a page
    assert [len(page.entries) for page in pages] == [4, 4, 1]  # no folder, no .txt
    entries = [entry for page in pages for entry in page.entries]
    assert set_digest(entries) == set_digest(
        (info.path, info.size, info.etag) for info in store.list_files("trips/*.csv")
    )
