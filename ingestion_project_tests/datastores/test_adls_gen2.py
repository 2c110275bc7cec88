"""AdlsGen2Datastore over both of its endpoints.

- ``endpoint="blob"`` is verified LIVE against Azurite (the ``azurite`` fixture): the store lists,
  reads, writes and deletes through azure-storage-blob on a real emulated Blob service.
- ``endpoint="dfs"`` is verified against RECORDED RESPONSES: Azurite has no DFS endpoint and there
  is no other emulator for the Data Lake API, so ``FakeDataLake`` (an azure-core HttpTransport)
  plays a minimal in-memory account. It answers the REST calls the real azure-storage-file-datalake
  client sends (Path - Create/Update/List/Delete on the dfs host; Get Blob and Get Blob Properties
  on the blob host, where the SDK itself sends reads), shaped as the REST reference documents them.
  The tests assert on the requests sent, so they prove our code drives the real SDK; they cannot
  prove the real service behaves as the fake does (signatures, for one, are not checked).
"""

from __future__ import annotations

import base64
import email.utils
import http
import io
import json
import os
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import dagster as dg
import pytest
import requests
from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import HttpTransport, RequestsTransport
from azure.core.rest._requests_basic import RestRequestsTransportResponse
from azure.storage.blob import ContainerClient
from requests.structures import CaseInsensitiveDict

from ingestion_project.datastores import adls_gen2
from ingestion_project.datastores.adls_gen2 import AdlsGen2Datastore
from ingestion_project.datastores.azure_common import AzureCredential, ServicePrincipal
from ingestion_project.datastores.base import DatastoreError, FileInfo, UnsafePathError
from ingestion_project.datastores.deadline import MIN_ATTEMPT_SECONDS
from ingestion_project_tests.azurite import Azurite, free_port
from ingestion_project_tests.datastores.timing import (
    FakeClock,
    SilentServer,
    TimeoutRecordingTransport,
)

STORE = "lake"
FILESYSTEM = "lake"
DFS_ACCOUNT_URL = "https://acct.dfs.core.windows.net"
KEY_VARIABLE = "ADLS_GEN2_TEST_ACCOUNT_KEY"


def planted_key() -> str:
    """A well-formed account key that exists nowhere else, so a leak of it is unmistakable."""
    return base64.b64encode(os.urandom(48)).decode()


def assert_secret_absent(error: BaseException, secret: str) -> None:
    rendered = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), rendered):
        assert secret not in text


def http_date(moment: datetime) -> str:
    return email.utils.format_datetime(moment, usegmt=True)


def fake_response(
    request: Any, status: int, headers: dict[str, str] | None = None, body: bytes = b""
) -> RestRequestsTransportResponse:
    """An azure-core response object, as RequestsTransport would return it for ``status``."""
    raw = requests.Response()
    raw.status_code = status
    raw.reason = http.HTTPStatus(status).phrase
    raw.headers = CaseInsensitiveDict(
        {"x-ms-request-id": str(uuid.uuid4()), "x-ms-version": "2026-10-06", **(headers or {})}
    )
    raw.headers.setdefault("Content-Length", str(len(body)))
    raw.raw = io.BytesIO(body)
    raw.url = request.url
    return RestRequestsTransportResponse(request=request, internal_response=raw)


def delivered(
    response: RestRequestsTransportResponse, stream: bool
) -> RestRequestsTransportResponse:
    """Like RequestsTransport: a response not asked for as a stream arrives already read."""
    if not stream:
        response.read()
    return response


def error_response(
    request: Any, status: int, code: str, message: str
) -> RestRequestsTransportResponse:
    """Errors as each host spells them: JSON on dfs, XML on blob, headers only for HEAD."""
    headers = {"x-ms-error-code": code}
    if request.method == "HEAD":
        return fake_response(request, status, headers)
    if ".dfs." in request.url:
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        headers["Content-Type"] = "application/json;charset=utf-8"
    else:
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ).encode()
        headers["Content-Type"] = "application/xml"
    return fake_response(request, status, headers, body)


@dataclass(frozen=True)
class Sent:
    """One request as the transport saw it: enough to assert what the SDK was made to do."""

    method: str
    host: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]

    @classmethod
    def of(cls, request: Any) -> Sent:
        url = urlsplit(request.url)
        return cls(
            method=request.method,
            host=url.hostname or "",
            path=unquote(url.path),
            query=dict(parse_qsl(url.query)),
            headers={key.lower(): value for key, value in request.headers.items()},
        )

    @property
    def service(self) -> str:
        return "dfs" if ".dfs." in self.host else "blob"


ERROR_CODES = {400: "InvalidInput", 429: "TooManyRequests", 500: "InternalError", 503: "ServerBusy"}


def busy_response(request: Any, status: int) -> RestRequestsTransportResponse:
    code = ERROR_CODES.get(status, "ServerBusy")
    return error_response(request, status, code, f"Planted failure {code}.")


@dataclass
class Fault:
    status: int
    remaining: int
    when: Callable[[Sent], bool]
    reset: bool = False


@dataclass
class Node:
    directory: bool
    etag: str
    modified: datetime
    content: bytes = b""
    staged: bytearray = field(default_factory=bytearray)


class FakeDataLake(HttpTransport):
    """A minimal in-memory ADLS Gen2 account behind the REST calls the datalake SDK makes.

    dfs host: Path - List (GET ?resource=filesystem, JSON ``paths``, paged by x-ms-continuation),
    Path - Create (PUT ?resource=file, and PUT with x-ms-rename-source, honouring If-None-Match: *),
    Path - Update (PATCH ?action=append&position= / ?action=flush&position=), Path - Delete.
    blob host: Get Blob (x-ms-range) and Get Blob Properties (HEAD). Anything else fails the test.
    """

    def __init__(self, *filesystems: str, page_size: int = 5000) -> None:
        self.filesystems: dict[str, dict[str, Node]] = {name: {} for name in filesystems}
        self.sent: list[Sent] = []
        self.timeouts: list[tuple[float, float]] = []
        self.faults: list[Fault] = []
        self.page_size = page_size
        self.deny_authentication = False
        self.rename_barrier: threading.Barrier | None = None
        self._version = 0
        self._lock = threading.RLock()

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None

    def fail(
        self,
        status: int = 503,
        times: int = 1,
        when: Callable[[Sent], bool] = lambda sent: True,
        reset: bool = False,
    ) -> None:
        self.faults.append(Fault(status, times, when, reset))

    def put(self, path: str, content: bytes, filesystem: str = FILESYSTEM) -> None:
        """Seed a file as if uploaded earlier (no request is recorded)."""
        with self._lock:
            files = self.filesystems[filesystem]
            self._make_parents(files, path)
            files[path] = self._node(directory=False, content=content)

    def files(self, filesystem: str = FILESYSTEM) -> dict[str, bytes]:
        return {
            name: node.content
            for name, node in self.filesystems[filesystem].items()
            if not node.directory
        }

    def requests_to(self, method: str, **query: str) -> list[Sent]:
        return [
            sent
            for sent in self.sent
            if sent.method == method and all(sent.query.get(k) == v for k, v in query.items())
        ]

    def send(self, request: Any, **kwargs: Any) -> RestRequestsTransportResponse:
        sent = Sent.of(request)
        with self._lock:
            self.sent.append(sent)
            self.timeouts.append((kwargs["connection_timeout"], kwargs["read_timeout"]))
            fault = next((f for f in self.faults if f.remaining > 0 and f.when(sent)), None)
            if fault is not None:
                fault.remaining -= 1
        if fault is not None:
            if fault.reset:
                raise ServiceRequestError("Connection reset by peer")
            response = busy_response(request, fault.status)
        elif self.deny_authentication:
            response = error_response(
                request, 403, "AuthenticationFailed", "Server failed to authenticate the request."
            )
        else:
            if self.rename_barrier is not None and "x-ms-rename-source" in sent.headers:
                self.rename_barrier.wait(timeout=5)
            with self._lock:
                response = self._route(request, sent)
        return delivered(response, bool(kwargs.get("stream")))

    def _route(self, request: Any, sent: Sent) -> RestRequestsTransportResponse:
        filesystem, _, name = sent.path.lstrip("/").partition("/")
        files = self.filesystems.get(filesystem)
        if files is None:
            code = "FilesystemNotFound" if sent.service == "dfs" else "ContainerNotFound"
            return error_response(request, 404, code, "The specified filesystem does not exist.")
        handlers: dict[tuple[str, str, bool], Callable[..., RestRequestsTransportResponse]] = {
            ("dfs", "GET", False): self._list,
            ("dfs", "PUT", True): self._create_or_rename,
            ("dfs", "PATCH", True): self._update,
            ("dfs", "DELETE", True): self._delete,
            ("blob", "HEAD", True): self._properties,
            ("blob", "GET", True): self._read,
        }
        handler = handlers.get((sent.service, sent.method, bool(name)))
        if handler is None:
            raise AssertionError(f"FakeDataLake does not answer {sent}")
        return handler(request, sent, files, name)

    def _node(self, *, directory: bool, content: bytes = b"") -> Node:
        self._version += 1
        modified = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=self._version)
        return Node(directory, f"0x8DC{self._version:013X}", modified, content)

    def _make_parents(self, files: dict[str, Node], path: str) -> None:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            if parent not in files:
                files[parent] = self._node(directory=True)

    def _list(self, request: Any, sent: Sent, files: dict[str, Node], _: str) -> Any:
        assert sent.query.get("resource") == "filesystem", sent
        directory = sent.query.get("directory", "").strip("/")
        if directory and (directory not in files or not files[directory].directory):
            return error_response(
                request, 404, "PathNotFound", "The specified path does not exist."
            )
        under = f"{directory}/" if directory else ""
        recursive = sent.query.get("recursive") == "true"
        names = sorted(
            name
            for name in files
            if name.startswith(under) and (recursive or "/" not in name[len(under) :])
        )
        start = int(sent.query.get("continuation") or 0)
        limit = min(int(sent.query.get("maxResults") or self.page_size), self.page_size)
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if start + limit < len(names):
            headers["x-ms-continuation"] = str(start + limit)
        paths = [self._listed(name, files[name]) for name in names[start : start + limit]]
        return fake_response(request, 200, headers, json.dumps({"paths": paths}).encode())

    def _listed(self, name: str, node: Node) -> dict[str, str]:
        # The service sends numbers and booleans as strings, and 'isDirectory' only for folders.
        entry = {
            "name": name,
            "contentLength": str(len(node.content)),
            "lastModified": http_date(node.modified),
            "etag": node.etag,
            "owner": "$superuser",
            "group": "$superuser",
            "permissions": "rw-r-----",
        }
        if node.directory:
            entry["isDirectory"] = "true"
        return entry

    def _written(self, request: Any, status: int, node: Node) -> Any:
        headers = {"ETag": f'"{node.etag}"', "Last-Modified": http_date(node.modified)}
        return fake_response(request, status, headers)

    def _create_or_rename(self, request: Any, sent: Sent, files: dict[str, Node], name: str) -> Any:
        exists = name in files
        if sent.headers.get("if-none-match") == "*" and exists:
            return error_response(request, 409, "PathAlreadyExists", "The path already exists.")
        source = sent.headers.get("x-ms-rename-source")
        if source is not None:
            source_filesystem, _, source_name = (
                unquote(source.split("?")[0]).lstrip("/").partition("/")
            )
            assert source_filesystem == sent.path.lstrip("/").split("/")[0]
            if source_name not in files:
                return error_response(request, 404, "SourcePathNotFound", "No source path.")
            self._make_parents(files, name)
            files[name] = files.pop(source_name)
            return self._written(request, 201, files[name])
        assert sent.query.get("resource") == "file", sent
        self._make_parents(files, name)
        files[name] = self._node(directory=False)
        return self._written(request, 201, files[name])

    def _update(self, request: Any, sent: Sent, files: dict[str, Node], name: str) -> Any:
        node = files.get(name)
        if node is None:
            return error_response(
                request, 404, "PathNotFound", "The specified path does not exist."
            )
        position = int(sent.query["position"])
        if sent.query.get("action") == "append":
            if position != len(node.staged):
                return error_response(request, 400, "InvalidFlushPosition", "Bad position.")
            node.staged.extend(request.content or b"")
            return fake_response(request, 202)
        assert sent.query.get("action") == "flush", sent
        if position != len(node.staged):
            return error_response(request, 400, "InvalidFlushPosition", "Bad position.")
        fresh = self._node(directory=False, content=bytes(node.staged))
        files[name] = fresh
        return self._written(request, 200, fresh)

    def _delete(self, request: Any, sent: Sent, files: dict[str, Node], name: str) -> Any:
        if name not in files:
            return error_response(
                request, 404, "PathNotFound", "The specified path does not exist."
            )
        if files[name].directory and any(other.startswith(f"{name}/") for other in files):
            return error_response(request, 409, "DirectoryNotEmpty", "The directory is not empty.")
        del files[name]
        return fake_response(request, 200)

    def _blob_headers(self, node: Node) -> dict[str, str]:
        headers = {
            "ETag": f'"{node.etag}"',
            "Last-Modified": http_date(node.modified),
            "x-ms-creation-time": http_date(node.modified),
            "x-ms-blob-type": "BlockBlob",
            "Content-Type": "application/octet-stream",
        }
        if node.directory:
            headers["x-ms-meta-hdi_isfolder"] = "true"
        return headers

    def _properties(self, request: Any, sent: Sent, files: dict[str, Node], name: str) -> Any:
        node = files.get(name)
        if node is None:
            return error_response(request, 404, "BlobNotFound", "The blob does not exist.")
        headers = {**self._blob_headers(node), "Content-Length": str(len(node.content))}
        return fake_response(request, 200, headers)

    def _read(self, request: Any, sent: Sent, files: dict[str, Node], name: str) -> Any:
        node = files.get(name)
        if node is None:
            return error_response(request, 404, "BlobNotFound", "The blob does not exist.")
        wanted = sent.headers.get("x-ms-range") or sent.headers.get("range")
        total = len(node.content)
        if not wanted:
            return fake_response(request, 200, self._blob_headers(node), node.content)
        if total == 0:
            return error_response(request, 416, "InvalidRange", "The range is not satisfiable.")
        first, _, last = wanted.removeprefix("bytes=").partition("-")
        start, end = int(first), min(int(last or total - 1), total - 1)
        headers = {**self._blob_headers(node), "Content-Range": f"bytes {start}-{end}/{total}"}
        return fake_response(request, 206, headers, node.content[start : end + 1])


class LiveTransport(RequestsTransport):
    """The real HTTP transport to Azurite that records requests and can fail some of them."""

    def __init__(
        self,
        fail: int = 0,
        status: int = 503,
        reset: bool = False,
        when: Callable[[Sent], bool] = lambda sent: True,
    ) -> None:
        super().__init__(connection_timeout=5, read_timeout=5)
        self.sent: list[Sent] = []
        self.remaining = fail
        self.status = status
        self.reset = reset
        self.when = when

    def send(self, request: Any, **kwargs: Any) -> Any:
        sent = Sent.of(request)
        self.sent.append(sent)
        if self.remaining > 0 and self.when(sent):
            self.remaining -= 1
            if self.reset:
                raise ServiceRequestError("Connection reset by peer")
            return delivered(busy_response(request, self.status), bool(kwargs.get("stream")))
        return super().send(request, **kwargs)


def listed(store: AdlsGen2Datastore, pattern: str) -> list[str]:
    return [info.path for info in store.list_files(pattern)]


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = planted_key()
    monkeypatch.setenv(KEY_VARIABLE, value)
    return value


def dfs_store(**overrides: Any) -> AdlsGen2Datastore:
    fields: dict[str, Any] = {
        "name": STORE,
        "account_url": DFS_ACCOUNT_URL,
        "filesystem": FILESYSTEM,
        "credential": AzureCredential(account_key=dg.EnvVar(KEY_VARIABLE)),
        "retry_backoff_seconds": 0.001,
        "max_retries": 3,
        "timeout_seconds": 5,
        **overrides,
    }
    return AdlsGen2Datastore(**fields)


@pytest.fixture
def lake(key: str) -> FakeDataLake:
    return FakeDataLake(FILESYSTEM)


@pytest.fixture
def dfs(lake: FakeDataLake) -> AdlsGen2Datastore:
    return dfs_store().using_transport(lake)


@dataclass
class Live:
    """A fresh container on Azurite, the store over it (blob endpoint) and a raw SDK client."""

    store: AdlsGen2Datastore
    container: ContainerClient
    azurite: Azurite
    transports: list[LiveTransport] = field(default_factory=list)

    def transport(self, **options: Any) -> LiveTransport:
        """A recording transport to Azurite, closed with the container at the end of the test."""
        transport = LiveTransport(**options)
        self.transports.append(transport)
        return transport

    def put(self, name: str, data: bytes = b"x", metadata: dict[str, str] | None = None) -> None:
        self.container.upload_blob(name, data, overwrite=True, metadata=metadata)

    def names(self) -> list[str]:
        return sorted(blob.name for blob in self.container.list_blobs())


@pytest.fixture
def live(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    container_name = f"adls-{uuid.uuid4().hex[:16]}"
    container = ContainerClient.from_connection_string(azurite.connection_string, container_name)
    container.create_container()
    monkeypatch.setenv(KEY_VARIABLE, azurite.account_key)
    store = AdlsGen2Datastore(
        name=STORE,
        account_url=azurite.account_url,
        filesystem=container_name,
        endpoint="blob",
        credential=AzureCredential(account_key=dg.EnvVar(KEY_VARIABLE)),
        retry_backoff_seconds=0.001,
        max_retries=2,
        timeout_seconds=5,
    )
    live = Live(store, container, azurite)
    try:
        yield live
    finally:
        for transport in live.transports:
            transport.close()
        container.delete_container()
        container.close()


def test_blob_endpoint_lists_nested_files_with_globs(live: Live) -> None:
    for name in (
        "data/a.csv",
        "data/b.txt",
        "data/sub/c.csv",
        "data/sub/deeper/d.csv",
        "top.csv",
    ):
        live.put(name)

    assert listed(live.store, "data/*.csv") == ["data/a.csv"]
    assert listed(live.store, "*.csv") == ["top.csv"]
    assert listed(live.store, "data/**/*.csv") == [
        "data/a.csv",
        "data/sub/c.csv",
        "data/sub/deeper/d.csv",
    ]
    assert listed(live.store, "**/d.csv") == ["data/sub/deeper/d.csv"]
    assert listed(live.store, "data/2025/*.csv") == []
    assert listed(live.store, "data/a.csv/*.csv") == []


def test_blob_endpoint_reports_listing_metadata_and_stat_agrees(live: Live) -> None:
    live.put("data/a.csv", b"id\n1\n")

    [info] = live.store.list_files("data/*.csv")

    properties = live.container.get_blob_client("data/a.csv").get_blob_properties()
    assert info.path == "data/a.csv"
    assert info.size == 5
    assert info.modified == properties.last_modified
    assert info.modified.tzinfo is not None
    assert info.etag == properties.etag.strip('"')
    assert live.store.stat("data/a.csv") == info
    assert FileInfo.from_dict(info.to_dict()) == info


def test_blob_endpoint_prefix_isolates_the_store(live: Live) -> None:
    for name in ("root/data/a.csv", "root2/data/b.csv", "other/c.csv", "root.csv"):
        live.put(name)
    rooted = live.store.model_copy(update={"prefix": "root"})

    assert listed(rooted, "**") == ["data/a.csv"]
    assert rooted.read_bytes("data/a.csv") == b"x"
    assert not rooted.exists("data/b.csv")

    rooted.write_bytes("data/new.csv", b"n")

    assert "root/data/new.csv" in live.names()


def test_blob_endpoint_skips_hidden_files_and_folder_markers(live: Live) -> None:
    live.put("data/a.csv")
    live.put("data/.tmp-123-a.csv")
    live.put("data/.cache/b.csv")
    # On a hierarchical namespace the Blob API also lists each directory as a marker blob.
    live.put("data/sub", b"", metadata={"hdi_isfolder": "true"})

    assert listed(live.store, "**") == ["data/a.csv"]
    assert not live.store.exists("data/sub")
    with pytest.raises(FileNotFoundError, match="is a folder"):
        live.store.read_bytes("data/sub")


def test_blob_endpoint_etag_changes_with_content_and_is_stable_otherwise(live: Live) -> None:
    live.store.write_bytes("data/a.csv", b"id\n1\n")
    before = live.store.stat("data/a.csv")

    assert live.store.stat("data/a.csv") == before

    live.store.write_bytes("data/a.csv", b"id\n2\n")
    after = live.store.stat("data/a.csv")

    assert after.size == before.size
    assert after.etag != before.etag


def test_blob_endpoint_streams_reads_in_chunks(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adls_gen2, "CHUNK_BYTES", 64 * 1024)
    payload = os.urandom(64 * 1024 * 3 + 17)
    live.put("big.bin", payload)
    transport = live.transport()
    store = live.store.using_transport(transport)

    with store.open_read("big.bin") as stream:
        first = stream.read(1000)
        rest = stream.read()

    assert first + rest == payload
    downloads = [sent for sent in transport.sent if sent.method == "GET"]
    assert len(downloads) == 4
    assert all("x-ms-range" in sent.headers for sent in downloads)


def test_blob_endpoint_write_read_exists_delete(live: Live) -> None:
    live.store.write_bytes("deep/nested/file.json", b"{}")

    assert live.names() == ["deep/nested/file.json"]
    assert live.store.read_bytes("deep/nested/file.json") == b"{}"
    assert live.store.exists("deep/nested/file.json")
    assert not live.store.exists("deep/nested")
    assert not live.store.exists("deep/other.json")

    live.store.write_bytes("empty.bin", b"")
    assert live.store.read_bytes("empty.bin") == b""

    live.store.delete("deep/nested/file.json")
    live.store.delete("deep/nested/file.json")

    assert live.names() == ["empty.bin"]
    with pytest.raises(FileNotFoundError, match=f"datastore '{STORE}'.*'deep/nested/file.json'"):
        live.store.stat("deep/nested/file.json")
    with pytest.raises(FileNotFoundError, match=f"datastore '{STORE}'"):
        live.store.read_bytes("deep/nested/file.json")


def test_blob_endpoint_write_without_overwrite_refuses_and_keeps_the_original(
    live: Live,
) -> None:
    live.store.write_bytes("v000001.json", b"first", overwrite=False)

    with pytest.raises(FileExistsError, match=f"datastore '{STORE}'.*'v000001.json'"):
        live.store.write_bytes("v000001.json", b"second", overwrite=False)

    assert live.store.read_bytes("v000001.json") == b"first"
    assert live.names() == ["v000001.json"]


def test_blob_endpoint_two_writers_without_overwrite_one_wins(live: Live) -> None:
    outcomes = race_two_writers(live.store)

    assert sorted(outcomes.values()) == ["exists", "ok"]
    [winner] = [payload for payload, outcome in outcomes.items() if outcome == "ok"]
    assert live.store.read_bytes("claim.json") == winner
    assert live.names() == ["claim.json"]


def race_two_writers(store: AdlsGen2Datastore) -> dict[bytes, str]:
    outcomes: dict[bytes, str] = {}
    start = threading.Barrier(2)

    def write(payload: bytes) -> None:
        start.wait(timeout=5)
        try:
            store.write_bytes("claim.json", payload, overwrite=False)
            outcomes[payload] = "ok"
        except FileExistsError:
            outcomes[payload] = "exists"

    threads = [threading.Thread(target=write, args=(p,)) for p in (b"writer-1", b"writer-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return outcomes


def test_blob_endpoint_check_passes_and_connection_string_works(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    live.put("data/a.csv")
    live.store.check()
    monkeypatch.setenv("ADLS_GEN2_TEST_CONNECTION", live.azurite.connection_string)
    by_connection = AdlsGen2Datastore(
        name=STORE,
        filesystem=live.store.filesystem,
        endpoint="blob",
        credential=AzureCredential(connection_string=dg.EnvVar("ADLS_GEN2_TEST_CONNECTION")),
    )

    by_connection.check()
    assert listed(by_connection, "data/*.csv") == ["data/a.csv"]
    assert live.azurite.account_key not in by_connection.describe()


def test_blob_endpoint_wrong_key_is_authentication_failed_without_the_key(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = planted_key()
    monkeypatch.setenv(KEY_VARIABLE, wrong)

    for action in (live.store.check, lambda: live.store.list_files("**")):
        with pytest.raises(DatastoreError, match="authentication failed") as caught:
            action()
        assert caught.value.reason == "authentication failed"
        assert f"datastore '{STORE}'" in str(caught.value)
        assert_secret_absent(caught.value, wrong)


def test_blob_endpoint_missing_filesystem_is_not_found(live: Live) -> None:
    missing = live.store.model_copy(update={"filesystem": f"nope-{uuid.uuid4().hex[:12]}"})

    for action in (
        missing.check,
        lambda: missing.list_files("**"),
        lambda: missing.read_bytes("a.csv"),
        lambda: missing.write_bytes("a.csv", b"x"),
    ):
        with pytest.raises(DatastoreError, match="not found") as caught:
            action()
        assert caught.value.reason == "not found"
        assert missing.filesystem in str(caught.value)


def test_blob_endpoint_retries_503_then_succeeds(live: Live) -> None:
    live.put("data/a.csv", b"abc")
    transport = live.transport(fail=2)

    assert live.store.using_transport(transport).read_bytes("data/a.csv") == b"abc"

    assert len(transport.sent) == 3


def test_blob_endpoint_retries_a_connection_reset(live: Live) -> None:
    live.put("data/a.csv", b"abc")
    transport = live.transport(fail=1, reset=True)

    assert live.store.using_transport(transport).stat("data/a.csv").size == 3
    assert len(transport.sent) == 2


def test_blob_endpoint_a_failed_commit_of_a_large_upload_leaves_no_file(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adls_gen2, "CHUNK_BYTES", 1024)
    transport = live.transport(fail=100, when=lambda sent: sent.query.get("comp") == "blocklist")
    store = live.store.using_transport(transport)

    with pytest.raises(DatastoreError, match=f"datastore '{STORE}'.*writing 'big.bin'"):
        store.write_bytes("big.bin", os.urandom(3000))

    blocks = [sent for sent in transport.sent if sent.query.get("comp") == "block"]
    assert len(blocks) == 3
    assert live.names() == []


def test_blob_endpoint_gives_up_after_max_retries(live: Live) -> None:
    transport = live.transport(fail=100)

    with pytest.raises(DatastoreError, match="ServerBusy") as caught:
        live.store.using_transport(transport).list_files("**")

    assert len(transport.sent) == live.store.max_retries + 1
    assert f"datastore '{STORE}'" in str(caught.value)


@pytest.mark.parametrize("endpoint", ["dfs", "blob"])
def test_unreachable_account_fails_fast(key: str, endpoint: str) -> None:
    clock = FakeClock()
    transport = TimeoutRecordingTransport()
    store = (
        dfs_store(
            account_url=f"http://127.0.0.1:{free_port()}/devstoreaccount1",
            endpoint=endpoint,
            max_retries=2,
            retry_backoff_seconds=0.01,
            timeout_seconds=2,
        )
        .using_transport(transport)
        .using_clock(clock)
    )

    with pytest.raises(DatastoreError, match="unreachable") as caught:
        store.list_files("**")

    assert caught.value.reason == "unreachable"
    assert "To fix" in str(caught.value)
    assert_secret_absent(caught.value, key)
    # A refused connection costs no timeout: three attempts, two pauses of 0.01 s doubling,
    # and each retry may wait for what the pauses left of timeout_seconds.
    assert clock.sleeps == [pytest.approx(0.01, rel=0.2), pytest.approx(0.02, rel=0.2)]
    left = [2 - sum(clock.sleeps[:retry]) for retry in range(3)]
    assert transport.timeouts == [pytest.approx((budget, budget)) for budget in left]


@pytest.mark.parametrize("endpoint", ["dfs", "blob"])
def test_a_server_that_never_answers_costs_one_timeout_not_one_per_retry(
    key: str, endpoint: str
) -> None:
    transport = TimeoutRecordingTransport()
    with SilentServer() as silent:
        store = dfs_store(
            account_url=f"http://127.0.0.1:{silent.port}/devstoreaccount1",
            endpoint=endpoint,
            max_retries=3,
            timeout_seconds=1,
        ).using_transport(transport)

        with pytest.raises(DatastoreError) as caught:
            store.list_files("**")

    assert caught.value.reason == "timed out"
    # The one attempt waited the whole budget, so no retry was left any time.
    assert silent.connections == 1
    assert transport.timeouts == [(1, 1)]


def test_dfs_a_503_then_200_succeeds_on_a_retry_within_a_short_budget(
    lake: FakeDataLake,
) -> None:
    lake.put("data/a.csv", b"abc")
    lake.fail(status=503, times=1)
    store = dfs_store(timeout_seconds=1, max_retries=3).using_transport(lake)

    assert listed(store, "data/*.csv") == ["data/a.csv"]

    assert len(lake.sent) == 2
    first, second = lake.timeouts
    assert first == (1, 1)
    assert MIN_ATTEMPT_SECONDS <= second[0] == second[1] < 1


UNSAFE_PATHS = ["../x", "/etc/passwd", "a/../../b", "C:\\x", "..\\x", ""]
OPERATIONS = [
    pytest.param(lambda s, p: s.read_bytes(p), id="read"),
    pytest.param(lambda s, p: s.write_bytes(p, b"x"), id="write"),
    pytest.param(lambda s, p: s.exists(p), id="exists"),
    pytest.param(lambda s, p: s.delete(p), id="delete"),
    pytest.param(lambda s, p: s.stat(p), id="stat"),
    pytest.param(lambda s, p: s.list_files(p), id="list"),
]


@pytest.mark.parametrize("endpoint", ["dfs", "blob"])
@pytest.mark.parametrize("path", UNSAFE_PATHS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_paths_that_leave_the_root_are_refused_before_any_request(
    lake: FakeDataLake, endpoint: str, path: str, operation: Callable[..., object]
) -> None:
    store = dfs_store(endpoint=endpoint, prefix="root").using_transport(lake)

    with pytest.raises(UnsafePathError, match=f"datastore '{STORE}'"):
        operation(store, path)

    assert lake.sent == []


def test_describe_names_the_store_without_secrets(key: str) -> None:
    store = dfs_store(prefix="/root/")

    described = store.describe()

    assert "acct.dfs.core.windows.net" in described
    assert f"filesystem '{FILESYSTEM}'/root" in described
    assert "dfs" in described
    assert key not in described + repr(store)


def test_a_sas_inside_the_account_url_is_refused_without_echo(key: str) -> None:
    with pytest.raises(ValueError, match="value not shown") as caught:
        dfs_store(account_url=f"{DFS_ACCOUNT_URL}?sv=2024&sig={key}")

    assert key not in str(caught.value)


def test_blob_endpoint_derives_the_blob_host_from_a_dfs_url(lake: FakeDataLake) -> None:
    lake.put("a.csv", b"abc")
    store = dfs_store(endpoint="blob").using_transport(lake)

    assert store.stat("a.csv").size == 3

    assert [sent.host for sent in lake.sent] == ["acct.blob.core.windows.net"]


def test_dfs_endpoint_accepts_a_blob_url_and_talks_to_the_dfs_host(lake: FakeDataLake) -> None:
    lake.put("a.csv", b"abc")
    store = dfs_store(account_url="https://acct.blob.core.windows.net").using_transport(lake)

    assert listed(store, "*.csv") == ["a.csv"]

    assert [sent.host for sent in lake.sent] == ["acct.dfs.core.windows.net"]


@pytest.mark.parametrize("endpoint", ["dfs", "blob"])
def test_an_identity_over_http_is_refused_before_any_request(
    lake: FakeDataLake, endpoint: Literal["dfs", "blob"], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    store = AdlsGen2Datastore(
        name=STORE,
        account_url="http://acct.dfs.core.windows.net",
        filesystem=FILESYSTEM,
        endpoint=endpoint,
        credential=AzureCredential(
            service_principal=ServicePrincipal(
                tenant_id="t", client_id="c", client_secret="not-a-real-secret"
            )
        ),
    ).using_transport(lake)

    with pytest.raises(DatastoreError, match="needs an https account_url") as caught:
        store.list_files("**")

    assert caught.value.reason == "invalid request"
    assert lake.sent == []


def test_a_malformed_connection_string_is_a_clear_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADLS_GEN2_TEST_CONNECTION", "AccountKey")
    store = AdlsGen2Datastore(
        name=STORE,
        filesystem=FILESYSTEM,
        credential=AzureCredential(connection_string=dg.EnvVar("ADLS_GEN2_TEST_CONNECTION")),
    )

    with pytest.raises(DatastoreError, match=r"invalid request.*connection string") as caught:
        store.list_files("**")

    assert caught.value.reason == "invalid request"


def test_dfs_write_stages_a_hidden_file_then_renames_it(
    dfs: AdlsGen2Datastore, lake: FakeDataLake
) -> None:
    dfs.write_bytes("data/a.csv", b"id\n1\n")

    calls = [(sent.method, sent.path, sent.query.get("action")) for sent in lake.sent]
    temporary = lake.sent[0].path
    assert temporary.startswith(f"/{FILESYSTEM}/data/.tmp-")
    assert temporary.endswith("-a.csv")
    assert calls == [
        ("PUT", temporary, None),
        ("PATCH", temporary, "append"),
        ("PATCH", temporary, "flush"),
        ("PUT", f"/{FILESYSTEM}/data/a.csv", None),
    ]
    create, append, flush, rename = lake.sent
    assert create.query == {"resource": "file"}
    assert append.query["position"] == "0"
    assert flush.query["position"] == "5"
    assert unquote(rename.headers["x-ms-rename-source"]) == temporary
    assert "if-none-match" not in rename.headers
    assert all(sent.service == "dfs" for sent in lake.sent)
    assert lake.files() == {"data/a.csv": b"id\n1\n"}


def test_dfs_write_appends_large_data_in_pieces(
    dfs: AdlsGen2Datastore, lake: FakeDataLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adls_gen2, "CHUNK_BYTES", 1024)
    payload = os.urandom(2500)

    dfs.write_bytes("big.bin", payload)

    positions = [sent.query["position"] for sent in lake.requests_to("PATCH", action="append")]
    assert positions == ["0", "1024", "2048"]
    assert lake.requests_to("PATCH", action="flush")[0].query["position"] == "2500"
    assert lake.files() == {"big.bin": payload}


def test_dfs_write_of_empty_data_creates_an_empty_file(
    dfs: AdlsGen2Datastore, lake: FakeDataLake
) -> None:
    dfs.write_bytes("empty.bin", b"")

    assert lake.requests_to("PATCH", action="append") == []
    assert lake.files() == {"empty.bin": b""}
    assert dfs.read_bytes("empty.bin") == b""
    assert dfs.stat("empty.bin").size == 0


def test_dfs_write_replaces_an_existing_file(dfs: AdlsGen2Datastore, lake: FakeDataLake) -> None:
    lake.put("model.bin", b"old contents")
    before = dfs.stat("model.bin")

    dfs.write_bytes("model.bin", b"new")

    assert lake.files() == {"model.bin": b"new"}
    assert dfs.stat("model.bin").etag != before.etag


def test_dfs_write_without_overwrite_renames_conditionally(
    dfs: AdlsGen2Datastore, lake: FakeDataLake
) -> None:
    dfs.write_bytes("v000001.json", b"first", overwrite=False)

    [rename] = [sent for sent in lake.sent if "x-ms-rename-source" in sent.headers]
    assert rename.headers["if-none-match"] == "*"

    with pytest.raises(FileExistsError, match=f"datastore '{STORE}'.*'v000001.json'"):
        dfs.write_bytes("v000001.json", b"second", overwrite=False)

    assert lake.files() == {"v000001.json": b"first"}
    # The losing writer's staged file was removed, not left behind.
    assert lake.sent[-1].method == "DELETE"
    assert lake.sent[-1].path.startswith(f"/{FILESYSTEM}/.tmp-")


def test_dfs_two_writers_without_overwrite_exactly_one_wins(
    dfs: AdlsGen2Datastore, lake: FakeDataLake
) -> None:
    # Hold both renames until each writer has staged its file: the service alone decides.
    lake.rename_barrier = threading.Barrier(2)

    outcomes = race_two_writers(dfs)

    assert sorted(outcomes.values()) == ["exists", "ok"]
    [winner] = [payload for payload, outcome in outcomes.items() if outcome == "ok"]
    assert lake.files() == {"claim.json": winner}
    renames = [sent for sent in lake.sent if "x-ms-rename-source" in sent.headers]
    assert len(renames) == 2


def test_dfs_a_failed_append_leaves_nothing_under_the_final_name(
    dfs: AdlsGen2Datastore, lake: FakeDataLake
) -> None:
    lake.put("data/keep.csv", b"keep")
    lake.fail(status=400, times=1, when=lambda sent: sent.query.get("action") == "append")

    with pytest.raises(DatastoreError, match=f"datastore '{STORE}'.*writing 'data/a.csv'"):
        dfs.write_bytes("data/a.csv", b"payload")

    assert lake.files() == {"data/keep.csv": b"keep"}
    assert lake.requests_to("PATCH", action="flush") == []
    assert [sent for sent in lake.sent if "x-ms-rename-source" in sent.headers] == []
    assert lake.sent[-1].method == "DELETE"


def test_dfs_a_write_interrupted_by_503s_leaves_nothing(
    dfs: AdlsGen2Datastore, lake: FakeDataLake
) -> None:
    lake.fail(status=503, times=100, when=lambda sent: sent.query.get("action") == "flush")

    with pytest.raises(DatastoreError):
        dfs.write_bytes("data/a.csv", b"payload")

    assert len(lake.requests_to("PATCH", action="flush")) == dfs.max_retries + 1
    assert lake.files() == {}


def test_dfs_lists_under_the_glob_prefix_and_skips_folders_and_hidden_files(
    dfs: AdlsGen2Datastore, lake: FakeDataLake
) -> None:
    for path in (
        "data/a.csv",
        "data/b.txt",
        "data/sub/c.csv",
        "data/.tmp-1-d.csv",
        "data/.cache/e.csv",
        "other/f.csv",
    ):
        lake.put(path, b"abc")

    assert listed(dfs, "data/**/*.csv") == ["data/a.csv", "data/sub/c.csv"]
    assert listed(dfs, "data/*") == ["data/a.csv", "data/b.txt"]

    [first, _] = lake.requests_to("GET")
    assert first.query == {"resource": "filesystem", "recursive": "true", "directory": "data"}


def test_dfs_listing_follows_continuation_pages(key: str) -> None:
    lake = FakeDataLake(FILESYSTEM, page_size=2)
    for index in range(5):
        lake.put(f"data/{index}.csv", b"x")
    store = dfs_store().using_transport(lake)

    assert listed(store, "data/*.csv") == [f"data/{index}.csv" for index in range(5)]

    pages = lake.requests_to("GET")
    assert len(pages) == 3
    assert [sent.query.get("continuation") for sent in pages] == [None, "2", "4"]


def test_dfs_listing_reports_metadata_that_stat_agrees_with(
    dfs: AdlsGen2Datastore, lake: FakeDataLake
) -> None:
    lake.put("data/a.csv", b"id\n1\n")
    node = lake.filesystems[FILESYSTEM]["data/a.csv"]

    [info] = dfs.list_files("data/*.csv")

    assert info == FileInfo("data/a.csv", 5, node.modified, node.etag)
    assert info.modified.tzinfo is not None
    assert dfs.stat("data/a.csv") == info
    head = lake.requests_to("HEAD")[0]
    assert (head.host, head.path) == ("acct.blob.core.windows.net", f"/{FILESYSTEM}/data/a.csv")


def test_dfs_prefix_isolates_the_store(key: str) -> None:
    lake = FakeDataLake(FILESYSTEM)
    for path in ("root/data/a.csv", "root2/data/b.csv", "other/c.csv"):
        lake.put(path, b"x")
    store = dfs_store(prefix="root").using_transport(lake)

    assert listed(store, "**") == ["data/a.csv"]
    assert lake.requests_to("GET")[0].query["directory"] == "root"

    store.write_bytes("data/new.csv", b"n")

    assert "root/data/new.csv" in lake.files()


def test_dfs_listing_of_a_missing_folder_or_a_file_is_empty(
    dfs: AdlsGen2Datastore, lake: FakeDataLake
) -> None:
    lake.put("data/2024/a.csv", b"x")

    assert listed(dfs, "data/2025/*.csv") == []
    assert listed(dfs, "data/2024/a.csv/*.csv") == []
    assert listed(dfs, "nothing/**") == []


def test_dfs_read_streams_ranged_gets(
    dfs: AdlsGen2Datastore, lake: FakeDataLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adls_gen2, "CHUNK_BYTES", 1024)
    payload = os.urandom(1024 * 3 + 5)
    lake.put("big.bin", payload)

    chunks = []
    with dfs.open_read("big.bin") as stream:
        while chunk := stream.read(1024):
            chunks.append(chunk)

    assert b"".join(chunks) == payload
    ranges = [sent.headers["x-ms-range"] for sent in lake.requests_to("GET")]
    assert ranges == [
        "bytes=0-1023",
        "bytes=1024-2047",
        "bytes=2048-3071",
        "bytes=3072-3076",
    ]


def test_dfs_exists_stat_and_delete(dfs: AdlsGen2Datastore, lake: FakeDataLake) -> None:
    lake.put("data/a.csv", b"abc")

    assert dfs.exists("data/a.csv")
    assert not dfs.exists("data/b.csv")
    assert not dfs.exists("data")
    assert dfs.stat("data/a.csv").size == 3

    dfs.delete("data/a.csv")
    dfs.delete("data/a.csv")

    assert lake.files() == {}
    deletes = lake.requests_to("DELETE")
    assert [(sent.service, sent.path) for sent in deletes] == [
        ("dfs", f"/{FILESYSTEM}/data/a.csv")
    ] * 2
    with pytest.raises(FileNotFoundError, match=f"datastore '{STORE}'.*'data/a.csv'"):
        dfs.stat("data/a.csv")
    with pytest.raises(FileNotFoundError, match=f"datastore '{STORE}'.*'data/a.csv'"):
        dfs.read_bytes("data/a.csv")


def test_dfs_check_lists_one_entry_at_the_root(key: str) -> None:
    lake = FakeDataLake(FILESYSTEM)
    store = dfs_store(prefix="root").using_transport(lake)

    store.check()  # a root folder that does not exist yet is a fresh store, not an error

    [sent] = lake.sent
    assert (sent.method, sent.path) == ("GET", f"/{FILESYSTEM}")
    assert sent.query == {
        "resource": "filesystem",
        "recursive": "false",
        "directory": "root",
        "maxResults": "1",
    }


def test_dfs_missing_filesystem_is_not_found(key: str) -> None:
    lake = FakeDataLake("another")
    store = dfs_store().using_transport(lake)

    for action in (
        store.check,
        lambda: store.list_files("**"),
        lambda: store.read_bytes("a.csv"),
        lambda: store.stat("a.csv"),
        lambda: store.write_bytes("a.csv", b"x"),
        lambda: store.delete("a.csv"),
    ):
        with pytest.raises(DatastoreError, match="not found") as caught:
            action()
        assert caught.value.reason == "not found"
        assert f"To fix: create file system '{FILESYSTEM}'" in str(caught.value)


def test_dfs_rejected_key_is_authentication_failed_without_the_key(
    dfs: AdlsGen2Datastore, lake: FakeDataLake, key: str
) -> None:
    lake.deny_authentication = True

    for action in (dfs.check, lambda: dfs.write_bytes("a.csv", b"x"), lambda: dfs.stat("a.csv")):
        with pytest.raises(DatastoreError, match="authentication failed") as caught:
            action()
        assert caught.value.reason == "authentication failed"
        assert_secret_absent(caught.value, key)
    # Authentication failures are not retried.
    assert len(lake.sent) == 3


def test_dfs_an_unset_key_variable_says_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    store = dfs_store().using_transport(FakeDataLake(FILESYSTEM))

    with pytest.raises(DatastoreError, match=KEY_VARIABLE) as caught:
        store.list_files("**")

    assert caught.value.reason == "missing secret"


def test_dfs_retries_503_twice_then_succeeds(dfs: AdlsGen2Datastore, lake: FakeDataLake) -> None:
    lake.put("data/a.csv", b"abc")
    lake.fail(status=503, times=2)

    assert listed(dfs, "data/*.csv") == ["data/a.csv"]

    assert len(lake.sent) == 3


def test_dfs_retries_429_like_503(dfs: AdlsGen2Datastore, lake: FakeDataLake) -> None:
    lake.put("data/a.csv", b"abc")
    lake.fail(status=429, times=2)

    assert listed(dfs, "data/*.csv") == ["data/a.csv"]

    assert len(lake.sent) == 3


def test_dfs_retries_the_blob_host_calls_the_sdk_makes(
    dfs: AdlsGen2Datastore, lake: FakeDataLake
) -> None:
    lake.put("data/a.csv", b"abc")
    lake.fail(status=500, times=2, when=lambda sent: sent.service == "blob")

    assert dfs.stat("data/a.csv").size == 3
    assert dfs.read_bytes("data/a.csv") == b"abc"

    assert [sent.method for sent in lake.sent] == ["HEAD", "HEAD", "HEAD", "GET"]


def test_dfs_retries_a_connection_reset(dfs: AdlsGen2Datastore, lake: FakeDataLake) -> None:
    lake.fail(times=1, reset=True)

    dfs.write_bytes("a.csv", b"x")

    assert lake.files() == {"a.csv": b"x"}
    assert len(lake.sent) == 5


def test_dfs_gives_up_on_a_persistent_503_after_max_retries(
    dfs: AdlsGen2Datastore, lake: FakeDataLake
) -> None:
    clock = FakeClock()
    lake.fail(status=503, times=100)

    with pytest.raises(DatastoreError, match=f"datastore '{STORE}'.*listing") as caught:
        dfs.using_clock(clock).list_files("**")

    assert len(lake.sent) == dfs.max_retries + 1
    # Pauses of 0.001 s doubling (±20% jitter), not the SDK's whole seconds.
    assert clock.sleeps == [pytest.approx(0.001 * 2**n, rel=0.2) for n in range(3)]
    assert "To fix" in str(caught.value)
