"""The http datastore against a real local HTTP server with switchable faults."""

import os
import re
import socket
import threading
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.versions import (
    DatasetVersionChangedError,
    dataset_registry,
    load_version,
    register_file_dataset,
)
from ingestion_project.datastores.base import DatastoreError, UnsafePathError
from ingestion_project.datastores.deadline import MIN_ATTEMPT_SECONDS
from ingestion_project.datastores.http import HttpDatastore
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project_tests.catalogs import project_catalog_of
from ingestion_project_tests.datastores.timing import FakeClock, SilentServer

STORE = "open_data"
BASE = "public"
_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


@dataclass
class Faults:
    """What the server does wrong; counters count down as requests arrive."""

    fail_first: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    reset_first: int = 0
    stall_first: int = 0
    refuse_head: bool = False
    truncate: bool = False
    send_etag: bool = True
    send_last_modified: bool = True
    weak_etag: bool = False
    deny: dict[str, int] = field(default_factory=dict)


@dataclass
class ServerState:
    root: Path
    faults: Faults = field(default_factory=Faults)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


class _Handler(BaseHTTPRequestHandler):
    """Serves files under the state's root, like a static host, with ETag and Last-Modified."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        state = self.server.state
        faults = state.faults
        with state.lock:
            state.requests.append((self.command, self.path, self.headers.get("Range")))
            reset = faults.reset_first > 0
            faults.reset_first -= int(reset)
            stall = not reset and faults.stall_first > 0
            faults.stall_first -= int(stall)
            fail = not (reset or stall) and faults.fail_first > 0
            faults.fail_first -= int(fail)
        if reset:
            self.close_connection = True  # close the socket without an answer
            return
        if stall:
            state.release.wait(10)
            self.close_connection = True
            return
        if fail:
            self.send_response(faults.fail_status)
            if faults.retry_after is not None:
                self.send_header("Retry-After", faults.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.command == "HEAD" and faults.refuse_head:
            self._empty(405, Allow="GET")
            return
        path = unquote(urlsplit(self.path).path).lstrip("/")
        if path in faults.deny:
            self._empty(faults.deny[path])
            return
        target = (state.root / path).resolve()
        if state.root.resolve() not in target.parents or not target.is_file():
            self._empty(404)
            return
        self._send_file(target, body=body)

    def _empty(self, status: int, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_file(self, target: Path, *, body: bool) -> None:
        faults = self.server.state.faults
        data = target.read_bytes()
        stat = target.stat()
        match = _RANGE.fullmatch(self.headers.get("Range") or "")
        status, payload = 200, data
        if match and data:
            start, end = int(match.group(1)), min(int(match.group(2)), len(data) - 1)
            status, payload = 206, data[start : end + 1]
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(len(payload)))
        if faults.send_last_modified:
            self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
        if faults.send_etag:
            tag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
            self.send_header("ETag", f"W/{tag}" if faults.weak_etag else tag)
        self.end_headers()
        if not body:
            return
        try:
            if faults.truncate:
                self.wfile.write(payload[: len(payload) // 2])
                self.close_connection = True
                return
            for start in range(0, len(payload), 256 * 1024):
                self.wfile.write(payload[start : start + 256 * 1024])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


@dataclass
class FileServer:
    state: ServerState
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{BASE}/"

    @property
    def faults(self) -> Faults:
        return self.state.faults

    def put(self, relative: str, data: bytes, *, mtime: float | None = None) -> Path:
        target = self.state.root / BASE / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if mtime is not None:
            os.utime(target, (mtime, mtime))
        return target

    def methods(self) -> Counter[str]:
        with self.state.lock:
            return Counter(method for method, _, _ in self.state.requests)

    def seen(self) -> list[tuple[str, str, str | None]]:
        with self.state.lock:
            return list(self.state.requests)

    def forget(self) -> None:
        with self.state.lock:
            self.state.requests.clear()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "site"
    (root / BASE).mkdir(parents=True)
    (root / "secret").write_text("outside the datastore")
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.state = ServerState(root=root)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield FileServer(state=httpd.state, port=httpd.server_address[1])
    finally:
        httpd.state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def make_store(base_url: str, **options: float) -> HttpDatastore:
    settings: dict[str, float] = {
        "timeout_seconds": 5,
        "max_retries": 3,
        "retry_backoff_seconds": 0.01,
    }
    settings.update(options)
    return HttpDatastore(name=STORE, base_url=base_url, **settings)  # type: ignore[arg-type]


@pytest.fixture
def store(server: FileServer) -> Iterator[HttpDatastore]:
    resource = make_store(server.base_url)
    yield resource
    resource.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error)


@pytest.fixture
def sent_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """The (connect, read) timeouts of every request sent, recorded on its way to the socket."""
    timeouts: list[tuple[float, float]] = []
    send = HTTPAdapter.send

    def recording(adapter: HTTPAdapter, request: PreparedRequest, **kwargs: Any) -> Response:
        timeouts.append(kwargs["timeout"])
        return send(adapter, request, **kwargs)

    monkeypatch.setattr(HTTPAdapter, "send", recording)
    return timeouts


def test_stat_reports_size_modified_and_etag_from_head_only(
    store: HttpDatastore, server: FileServer
) -> None:
    target = server.put("data/2024-01.csv", b"a,b\n1,2\n", mtime=1_700_000_000.5)

    info = store.stat("data/2024-01.csv")

    stat = target.stat()
    assert info.path == "data/2024-01.csv"
    assert info.size == 8
    assert info.modified == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert info.etag == f"{stat.st_mtime_ns:x}-{stat.st_size:x}"
    assert server.methods() == Counter({"HEAD": 1})


def test_list_files_of_one_named_file_reads_no_body(
    store: HttpDatastore, server: FileServer
) -> None:
    server.put("a.csv", b"x" * 1000)

    assert [info.path for info in store.list_files("a.csv")] == ["a.csv"]
    assert store.list_files("missing.csv") == []
    assert store.exists("a.csv")
    assert not store.exists("missing.csv")
    assert set(server.methods()) == {"HEAD"}


def test_weak_etags_lose_their_prefix_and_quotes(store: HttpDatastore, server: FileServer) -> None:
    server.put("a.csv", b"abc")
    server.faults.weak_etag = True

    etag = store.stat("a.csv").etag

    assert not etag.startswith(("W/", '"'))
    assert not etag.endswith('"')
    assert etag


def test_etag_changes_when_the_file_changes(store: HttpDatastore, server: FileServer) -> None:
    server.put("a.csv", b"a,b\n1,2\n", mtime=1_700_000_000)
    before = store.stat("a.csv")
    assert store.stat("a.csv") == before

    server.put("a.csv", b"a,b\n3,4\n", mtime=1_700_000_100)

    after = store.stat("a.csv")
    assert after.etag != before.etag
    assert after.size == before.size


def test_without_etag_the_tag_hashes_last_modified_and_length(
    store: HttpDatastore, server: FileServer
) -> None:
    server.faults.send_etag = False
    server.put("a.csv", b"a,b\n1,2\n", mtime=1_700_000_000)
    first = store.stat("a.csv")
    assert store.stat("a.csv").etag == first.etag

    server.put("a.csv", b"a,b\n3,4\n", mtime=1_700_000_100)

    assert store.stat("a.csv").etag != first.etag


def test_a_server_without_etag_or_last_modified_is_refused(
    store: HttpDatastore, server: FileServer
) -> None:
    server.faults.send_etag = False
    server.faults.send_last_modified = False
    server.put("a.csv", b"abc")

    with pytest.raises(DatastoreError, match="neither ETag nor Last-Modified") as raised:
        store.stat("a.csv")

    assert STORE in str(raised.value)


def test_open_read_streams_a_large_file_in_chunks(store: HttpDatastore, server: FileServer) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    server.put("big.bin", data)

    pieces = []
    with store.open_read("big.bin") as stream:
        first = stream.read(1000)
        assert len(first) == 1000
        pieces.append(first)
        while chunk := stream.read(256 * 1024):
            assert len(chunk) <= 256 * 1024
            pieces.append(chunk)

    assert b"".join(pieces) == data
    assert len(pieces) > 20
    assert store.read_bytes("big.bin") == data
    assert server.methods() == Counter({"GET": 2})


def test_names_are_percent_encoded_so_they_cannot_add_a_query(
    store: HttpDatastore, server: FileServer
) -> None:
    server.put("odd name#1?x=2 100%.csv", b"abc")

    assert store.read_bytes("odd name#1?x=2 100%.csv") == b"abc"
    assert store.stat("odd name#1?x=2 100%.csv").size == 3
    (_, path, _), *_ = server.seen()
    assert path == f"/{BASE}/odd%20name%231%3Fx%3D2%20100%25.csv"


@pytest.mark.parametrize(
    "path",
    [
        "../secret",
        "/etc/passwd",
        "%2e%2e/x",
        "%2E%2E/secret",
        "a/%2e%2e/%2e%2e/secret",
        "%252e%252e/secret",
        "%2fetc/passwd",
        "..\\secret",
        "C:/Windows/win.ini",
    ],
)
def test_paths_that_leave_the_base_url_are_refused_before_any_request(
    store: HttpDatastore, server: FileServer, path: str
) -> None:
    for call in (store.stat, store.exists, store.read_bytes, store.list_files):
        with pytest.raises(UnsafePathError, match=STORE):
            call(path)
    with pytest.raises(UnsafePathError), store.open_read(path):
        pass

    assert server.seen() == []


@pytest.mark.parametrize("pattern", ["data/*.csv", "**/x.csv", "x?.csv", "[ab].csv"])
def test_wildcards_are_refused_with_the_explanation(
    store: HttpDatastore, server: FileServer, pattern: str
) -> None:
    with pytest.raises(DatastoreError) as raised:
        store.list_files(pattern)

    message = str(raised.value)
    assert raised.value.reason == "invalid request"
    assert STORE in message
    assert "cannot list" in message
    assert "one per dataset" in message
    assert "copy them into a file datastore" in message
    assert server.seen() == []


def test_writes_and_deletes_are_refused_as_read_only(
    store: HttpDatastore, server: FileServer
) -> None:
    target = server.put("a.csv", b"original")

    for action in (
        lambda: store.write_bytes("a.csv", b"new"),
        lambda: store.write_bytes("b.csv", b"new", overwrite=False),
        lambda: store.delete("a.csv"),
    ):
        with pytest.raises(DatastoreError) as raised:
            action()
        assert raised.value.reason == "read-only"
        assert f"datastore '{STORE}'" in str(raised.value)
        assert "HTTP datastores are read-only" in str(raised.value)

    assert target.read_bytes() == b"original"
    assert server.seen() == []


def test_503_twice_then_success_is_retried(store: HttpDatastore, server: FileServer) -> None:
    server.put("a.csv", b"abc")
    server.faults.fail_first = 2

    assert store.stat("a.csv").size == 3
    assert server.methods() == Counter({"HEAD": 3})

    server.forget()
    server.faults.fail_first = 2
    assert store.read_bytes("a.csv") == b"abc"
    assert server.methods() == Counter({"GET": 3})


def test_429_with_retry_after_is_retried_after_the_pause_asked_for(
    store: HttpDatastore, server: FileServer, sent_timeouts: list[tuple[float, float]]
) -> None:
    clock = FakeClock()
    server.put("a.csv", b"abc")
    server.faults.fail_first = 1
    server.faults.fail_status = 429
    server.faults.retry_after = "2"

    assert store.using_clock(clock).read_bytes("a.csv") == b"abc"

    assert server.methods() == Counter({"GET": 2})
    assert clock.sleeps == [2]
    # timeout_seconds=5 covers both attempts: the retry may wait what the pause left.
    assert sent_timeouts == [(5, 5), (3, 3)]


def test_a_retry_after_longer_than_the_budget_is_not_waited_for(
    store: HttpDatastore, server: FileServer
) -> None:
    clock = FakeClock()
    server.put("a.csv", b"abc")
    server.faults.fail_first = 1
    server.faults.retry_after = "10"

    with pytest.raises(DatastoreError) as raised:
        store.using_clock(clock).stat("a.csv")

    assert server.methods() == Counter({"HEAD": 1})
    assert clock.sleeps == []
    assert "503" in str(raised.value)
    assert "after 1 attempts" in str(raised.value)
    assert "timeout_seconds" in str(raised.value)


def test_a_persistent_503_gives_up_after_max_retries(server: FileServer) -> None:
    clock = FakeClock()
    store = make_store(server.base_url, max_retries=3, retry_backoff_seconds=0.01)
    server.put("a.csv", b"abc")
    server.faults.fail_first = 100

    with pytest.raises(DatastoreError) as raised:
        store.using_clock(clock).stat("a.csv")

    assert clock.sleeps == [0.01, 0.02, 0.04]
    assert server.methods() == Counter({"HEAD": 4})
    message = str(raised.value)
    assert "503" in message
    assert "after 4 attempts" in message
    assert f"datastore '{STORE}'" in message
    assert "To fix:" in message


def test_a_connection_reset_is_retried(store: HttpDatastore, server: FileServer) -> None:
    server.put("a.csv", b"abc")
    server.faults.reset_first = 2

    assert store.read_bytes("a.csv") == b"abc"
    assert server.methods() == Counter({"GET": 3})


def test_persistent_connection_resets_give_up_with_a_clear_error(server: FileServer) -> None:
    store = make_store(server.base_url, max_retries=2)
    server.put("a.csv", b"abc")
    server.faults.reset_first = 100

    with pytest.raises(DatastoreError, match="closed the connection without answering"):
        store.stat("a.csv")

    assert server.methods() == Counter({"HEAD": 3})


def test_a_stalled_server_times_out_without_retrying(
    server: FileServer, sent_timeouts: list[tuple[float, float]]
) -> None:
    store = make_store(server.base_url, timeout_seconds=1, max_retries=3)
    server.put("a.csv", b"abc")
    server.faults.stall_first = 100

    with pytest.raises(DatastoreError) as raised:
        store.stat("a.csv")

    assert raised.value.reason == "timed out"
    assert "timeout_seconds" in str(raised.value)
    assert server.methods() == Counter({"HEAD": 1})
    assert sent_timeouts == [(1, 1)]


def test_a_server_that_never_answers_costs_one_timeout_not_one_per_retry(
    sent_timeouts: list[tuple[float, float]],
) -> None:
    with SilentServer() as silent:
        store = make_store(f"http://127.0.0.1:{silent.port}/", timeout_seconds=1, max_retries=3)

        with pytest.raises(DatastoreError) as raised:
            store.stat("a.csv")

    assert raised.value.reason == "timed out"
    # The one attempt waited the whole budget, so no retry was left any time.
    assert silent.connections == 1
    assert sent_timeouts == [(1, 1)]


def test_a_body_that_stalls_fails_the_read_without_a_retry(
    sent_timeouts: list[tuple[float, float]],
) -> None:
    headers = b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nETag: "x"\r\n\r\nfirst bytes'
    with SilentServer(answer=headers) as stalling:
        store = make_store(f"http://127.0.0.1:{stalling.port}/", timeout_seconds=1, max_retries=3)

        with pytest.raises(DatastoreError, match="stopped sending") as raised:
            store.read_bytes("a.csv")

    assert raised.value.reason == "timed out"
    assert stalling.connections == 1
    assert sent_timeouts == [(1, 1)]


def test_a_503_then_200_succeeds_on_a_retry_within_a_short_budget(
    server: FileServer, sent_timeouts: list[tuple[float, float]]
) -> None:
    store = make_store(server.base_url, timeout_seconds=1, max_retries=3)
    server.put("a.csv", b"abc")
    server.faults.fail_first = 1

    assert store.read_bytes("a.csv") == b"abc"

    assert server.methods() == Counter({"GET": 2})
    first, second = sent_timeouts
    assert first == (1, 1)
    # The retry may wait only for what the first attempt and the pause left of the budget.
    assert MIN_ATTEMPT_SECONDS <= second[0] == second[1] < 1


def test_a_closed_port_is_unreachable_fast(sent_timeouts: list[tuple[float, float]]) -> None:
    clock = FakeClock()
    store = make_store(
        f"http://127.0.0.1:{closed_port()}/{BASE}/", retry_backoff_seconds=0.5
    ).using_clock(clock)

    for call in (store.check, lambda: store.stat("a.csv")):
        with pytest.raises(DatastoreError) as raised:
            call()
        assert raised.value.reason == "unreachable"
        assert f"datastore '{STORE}'" in str(raised.value)
        assert "To fix:" in str(raised.value)

    # A refused connection costs no timeout and is retried once, not max_retries times.
    assert len(sent_timeouts) == 2 * 2
    assert clock.sleeps == [0.5, 0.5]


def test_a_truncated_body_raises(store: HttpDatastore, server: FileServer) -> None:
    server.put("a.csv", b"x" * 100_000)
    server.faults.truncate = True

    with pytest.raises(DatastoreError, match="truncated") as raised:
        store.read_bytes("a.csv")
    assert f"datastore '{STORE}'" in str(raised.value)

    with pytest.raises(DatastoreError, match="truncated"), store.open_read("a.csv") as stream:
        while stream.read(4096):
            pass


def test_a_missing_file_is_file_not_found(store: HttpDatastore, server: FileServer) -> None:
    for call in (store.stat, store.read_bytes):
        with pytest.raises(FileNotFoundError, match=f"datastore '{STORE}'.*missing.csv"):
            call("missing.csv")
    assert not store.exists("missing.csv")


def test_a_refused_head_falls_back_to_a_one_byte_range(
    store: HttpDatastore, server: FileServer
) -> None:
    server.put("a.csv", b"a,b\n1,2\n")
    expected = store.stat("a.csv")
    server.forget()
    server.faults.refuse_head = True

    assert store.stat("a.csv") == expected
    assert store.exists("a.csv")
    assert store.list_files("missing.csv") == []
    requests = server.seen()
    assert [method for method, _, _ in requests] == ["HEAD", "GET"] * 3
    assert {span for method, _, span in requests if method == "GET"} == {"bytes=0-0"}


def test_an_empty_file_has_size_zero_through_the_range_fallback(
    store: HttpDatastore, server: FileServer
) -> None:
    server.put("empty.csv", b"")
    server.faults.refuse_head = True

    assert store.stat("empty.csv").size == 0


@pytest.mark.parametrize(
    ("status", "reason"), [(401, "authentication failed"), (403, "permission denied")]
)
def test_a_denied_file_names_the_reason(
    store: HttpDatastore, server: FileServer, status: int, reason: str
) -> None:
    server.put("a.csv", b"abc")
    server.faults.deny[f"{BASE}/a.csv"] = status

    for call in (store.stat, store.read_bytes, store.exists):
        with pytest.raises(DatastoreError) as raised:
            call("a.csv")
        assert raised.value.reason == reason
        assert str(status) in str(raised.value)


def test_check_accepts_a_root_that_answers_404_or_403(
    store: HttpDatastore, server: FileServer
) -> None:
    store.check()
    server.faults.deny[f"{BASE}/"] = 403
    store.check()


def test_check_reports_401_and_a_failing_server(store: HttpDatastore, server: FileServer) -> None:
    server.faults.deny[f"{BASE}/"] = 401
    with pytest.raises(DatastoreError) as raised:
        store.check()
    assert raised.value.reason == "authentication failed"

    server.faults.fail_first = 100
    with pytest.raises(DatastoreError, match="503") as raised:
        store.check()
    assert raised.value.reason == "error"


def test_check_of_a_stalled_server_times_out(server: FileServer) -> None:
    store = make_store(server.base_url, timeout_seconds=1)
    server.faults.stall_first = 1

    with pytest.raises(DatastoreError) as raised:
        store.check()

    assert raised.value.reason == "timed out"


@pytest.mark.parametrize(
    "credentials",
    ["userinfo", "query"],
)
def test_credentials_in_base_url_are_refused_without_echo(credentials: str) -> None:
    planted = "pw-7f3c1e9a2b"  # a planted value, not a real credential
    userinfo = f"reader:{planted}@" if credentials == "userinfo" else ""
    query = f"?sig={planted}" if credentials == "query" else ""

    with pytest.raises(ValueError, match="value not shown") as raised:
        make_store(f"http://{userinfo}127.0.0.1:1/{BASE}/{query}")

    assert planted not in error_text(raised.value)


def test_a_plain_query_string_is_kept(server: FileServer) -> None:
    store = make_store(f"{server.base_url}?download=1")

    assert store.describe() == server.base_url


@pytest.mark.parametrize("url", ["ftp://example.org/data/", "example.org/data", "http:///x"])
def test_a_base_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"http\(s\) URL"):
        make_store(url)


def test_a_base_url_without_trailing_slash_is_a_folder(server: FileServer) -> None:
    server.put("a.csv", b"abc")
    store = make_store(server.base_url.rstrip("/"))

    assert store.read_bytes("a.csv") == b"abc"


def test_the_catalog_builds_the_resource() -> None:
    entry = {"kind": "http", "base_url": "https://example.org/open/", "timeout_seconds": 7}

    store = project_catalog_of({"datastores": {STORE: entry}}).resources[STORE]

    assert isinstance(store, HttpDatastore)
    assert store.describe() == "https://example.org/open/"
    assert store.timeout_seconds == 7


def test_a_dataset_registers_from_head_metadata_and_detects_changes(
    server: FileServer, store: HttpDatastore, tmp_path: Path
) -> None:
    original = b"fare,distance\n10.5,2.1\n7.25,1.0\n"
    server.put("taxi/2024-01.csv", original, mtime=1_700_000_000)
    registry = dataset_registry(LocalDatastore(name="registry", root=str(tmp_path / "reg")), "_r")
    spec = DatasetSpec(datastore=STORE, path="taxi/2024-01.csv")

    first = register_file_dataset("taxi", spec, store, registry, run_id="run-1", code_version="v1")
    again = register_file_dataset("taxi", spec, store, registry, run_id="run-2", code_version="v1")

    assert first.created
    assert not again.created
    assert first.record.row_count == 2
    assert first.record.manifest[0].size == len(original)
    assert server.methods() == Counter({"HEAD": 3, "GET": 1})
    expected = pd.DataFrame({"fare": [10.5, 7.25], "distance": [2.1, 1.0]})
    assert_frame_equal(load_version(first.record, store), expected)

    server.put("taxi/2024-01.csv", b"fare,distance\n99.0,9.9\n7.25,1.0\n", mtime=1_700_000_500)

    with pytest.raises(DatasetVersionChangedError, match=re.escape("taxi/2024-01.csv (modified)")):
        load_version(first.record, store)
    changed = register_file_dataset(
        "taxi", spec, store, registry, run_id="run-3", code_version="v1"
    )
    assert changed.created
    assert changed.record.version == first.record.version + 1
