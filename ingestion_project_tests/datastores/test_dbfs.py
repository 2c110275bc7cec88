"""DbfsDatastore against a local stand-in of the Databricks DBFS REST API 2.0.

No Databricks workspace is available here, so these tests are verified against ``FakeDbfs``: an
HTTP server on 127.0.0.1 that implements the endpoints the SDK calls (``/api/2.0/dbfs/list``,
``get-status``, ``read``, ``create``, ``add-block``, ``close``, ``move``, ``delete``) with the
documented JSON shapes and error bodies, backed by an in-memory dict. Every test exercises the
real databricks-sdk client (Config, ApiClient, DbfsAPI, its error parsing) over real HTTP, and
asserts on the requests the server received. A socket guard fails any connection that is not to
the loopback address, so nothing here reaches a real workspace or a metadata service.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import pytest
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from ingestion_project.datastores.base import DatastoreError, UnsafePathError
from ingestion_project.datastores.dbfs import BLOCK_BYTES, DbfsDatastore
from ingestion_project_tests.catalogs import project_catalog_of
from ingestion_project_tests.datastores.timing import FakeClock, SilentServer

STORE = "lake"
ROOT = "/mnt/raw"
TOKEN_ENV = "DBFS_TEST_TOKEN"
DEFAULT_READ_LENGTH = 512 * 1024

Reply = tuple[int, dict[str, Any], dict[str, str]]


def error(status: int, code: Any, message: str, headers: dict[str, str] | None = None) -> Reply:
    return status, {"error_code": code, "message": message}, headers or {}


def not_found(path: str) -> Reply:
    return error(404, "RESOURCE_DOES_NOT_EXIST", f"No file or directory exists on path {path}.")


def already_exists(path: str) -> Reply:
    return error(400, "RESOURCE_ALREADY_EXISTS", f"A file or directory already exists at {path}.")


@dataclass
class Call:
    method: str
    endpoint: str
    args: dict[str, Any]


@dataclass
class Fault:
    endpoint: str
    reply: Reply
    times: int
    after: int = 0


@dataclass
class FakeDbfs:
    """DBFS API 2.0 semantics over dicts: create makes the file visible at once, as DBFS does."""

    token: str
    url: str = ""
    files: dict[str, bytearray] = field(default_factory=dict)
    mtimes: dict[str, int] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=lambda: {"/"})
    handles: dict[int, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    delays: dict[str, float] = field(default_factory=dict)
    forbidden: list[str] = field(default_factory=list)
    hooks: dict[str, Callable[[], None]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    last_ms: int = 1_700_000_000_000
    next_handle: int = 7_904_256

    # Setup and inspection helpers, used directly by tests.
    def put(self, path: str, data: bytes) -> None:
        with self.lock:
            self._parents(path)
            self.files[path] = bytearray(data)
            self.mtimes[path] = self._tick()

    def mkdirs(self, path: str) -> None:
        with self.lock:
            self._parents(path + "/x")

    def fail(self, endpoint: str, reply: Reply, times: int = 1, after: int = 0) -> None:
        self.faults.append(Fault(endpoint, reply, times, after))

    def dbfs_calls(self, endpoint: str | None = None) -> list[Call]:
        with self.lock:
            return [
                c
                for c in self.calls
                if c.endpoint != "/.well-known/databricks-config"
                and (endpoint is None or c.endpoint == endpoint)
            ]

    def endpoints(self) -> list[str]:
        return [c.endpoint for c in self.dbfs_calls()]

    def paths(self) -> list[str]:
        return sorted(self.files)

    # The HTTP side.
    def handle(self, method: str, path: str, args: dict[str, Any], auth: str | None) -> Reply:
        endpoint = path.removeprefix("/api/2.0/dbfs/")
        with self.lock:
            self.calls.append(Call(method, endpoint, args))
        if path == "/.well-known/databricks-config":
            return error(404, "ENDPOINT_NOT_FOUND", "No API found for this path.")
        if auth is None:
            return error(401, "401", "Credential was not sent or was of an unsupported type.")
        if auth != f"Bearer {self.token}":
            # What a workspace answers for a wrong or expired PAT (an integer error_code).
            return error(403, 403, "Invalid access token.", {"X-Databricks-Reason-Phrase": "x"})
        if endpoint in self.delays:
            time.sleep(self.delays[endpoint])
        with self.lock:
            reply = self._fault(endpoint)
            if reply is not None:
                return reply
            for key in ("path", "source_path", "destination_path"):
                if any(str(args.get(key, "")).startswith(p) for p in self.forbidden):
                    return error(403, "PERMISSION_DENIED", f"No permission on {args[key]}.")
            if endpoint in self.hooks:
                self.hooks.pop(endpoint)()
            operation = getattr(self, "op_" + endpoint.replace("-", "_"), None)
            expected = "GET" if endpoint in ("list", "get-status", "read") else "POST"
            if operation is None or method != expected:
                return error(404, "ENDPOINT_NOT_FOUND", f"No API found for {method} {path}.")
            return operation(args)

    def _fault(self, endpoint: str) -> Reply | None:
        for fault in self.faults:
            if fault.endpoint != endpoint or fault.times <= 0:
                continue
            if fault.after > 0:
                fault.after -= 1
                return None
            fault.times -= 1
            return fault.reply
        return None

    def _tick(self) -> int:
        self.last_ms = max(int(time.time() * 1000), self.last_ms + 1)
        return self.last_ms

    def _parents(self, path: str) -> None:
        parent = path.rsplit("/", 1)[0] or "/"
        while parent not in self.dirs:
            self.dirs.add(parent)
            parent = parent.rsplit("/", 1)[0] or "/"

    def _info(self, path: str) -> dict[str, Any]:
        if path in self.files:
            size, mtime = len(self.files[path]), self.mtimes[path]
            return {"path": path, "is_dir": False, "file_size": size, "modification_time": mtime}
        return {"path": path, "is_dir": True, "file_size": 0, "modification_time": self.last_ms}

    def _children(self, folder: str) -> list[str]:
        base = folder.rstrip("/") + "/"
        names = {p for p in [*self.files, *self.dirs] if p.startswith(base) and p != folder}
        return sorted(p for p in names if "/" not in p[len(base) :])

    def op_get_status(self, args: dict[str, Any]) -> Reply:
        path = args["path"]
        if path not in self.files and path not in self.dirs:
            return not_found(path)
        return 200, self._info(path), {}

    def op_list(self, args: dict[str, Any]) -> Reply:
        path = args["path"]
        if path in self.files:
            return 200, {"files": [self._info(path)]}, {}
        if path not in self.dirs:
            return not_found(path)
        children = [self._info(p) for p in self._children(path)]
        return 200, ({"files": children} if children else {}), {}

    def op_read(self, args: dict[str, Any]) -> Reply:
        path = args["path"]
        offset = int(args.get("offset", 0))
        length = int(args.get("length", DEFAULT_READ_LENGTH))
        if length > BLOCK_BYTES:
            return error(400, "MAX_READ_SIZE_EXCEEDED", f"Cannot read more than {BLOCK_BYTES}.")
        if offset < 0 or length < 0 or path in self.dirs:
            return error(400, "INVALID_PARAMETER_VALUE", f"Cannot read {path}.")
        if path not in self.files:
            return not_found(path)
        chunk = bytes(self.files[path][offset : offset + length])
        return 200, {"bytes_read": len(chunk), "data": base64.b64encode(chunk).decode()}, {}

    def op_create(self, args: dict[str, Any]) -> Reply:
        path = args["path"]
        if (path in self.files or path in self.dirs) and not args.get("overwrite", False):
            return already_exists(path)
        self.put(path, b"")
        self.next_handle += 1
        self.handles[self.next_handle] = path
        return 200, {"handle": self.next_handle}, {}

    def op_add_block(self, args: dict[str, Any]) -> Reply:
        path = self.handles.get(args["handle"])
        if path is None or path not in self.files:
            return error(404, "RESOURCE_DOES_NOT_EXIST", f"No stream with handle {args['handle']}.")
        data = base64.b64decode(args["data"])
        if len(data) > BLOCK_BYTES:
            return error(400, "MAX_BLOCK_SIZE_EXCEEDED", "Block size exceeds 1 MB.")
        self.files[path].extend(data)
        self.mtimes[path] = self._tick()
        return 200, {}, {}

    def op_close(self, args: dict[str, Any]) -> Reply:
        if self.handles.pop(args["handle"], None) is None:
            return error(404, "RESOURCE_DOES_NOT_EXIST", f"No stream with handle {args['handle']}.")
        return 200, {}, {}

    def op_move(self, args: dict[str, Any]) -> Reply:
        source, target = args["source_path"], args["destination_path"]
        if source not in self.files:
            return not_found(source)
        if target in self.files or target in self.dirs:
            return already_exists(target)
        self._parents(target)
        self.files[target] = self.files.pop(source)
        self.mtimes[target] = self.mtimes.pop(source)
        return 200, {}, {}

    def op_delete(self, args: dict[str, Any]) -> Reply:
        path = args["path"]
        if path in self.files:
            del self.files[path], self.mtimes[path]
        elif path in self.dirs:
            if self._children(path) and not args.get("recursive", False):
                return error(400, "IO_ERROR", f"{path} is a non-empty directory.")
            self.dirs.discard(path)
        return 200, {}, {}


class FakeDbfsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeDbfs) -> None:
        super().__init__(("127.0.0.1", 0), FakeDbfsHandler)
        self.fake = fake


class FakeDbfsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: FakeDbfsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if method == "POST":
            args = json.loads(self.rfile.read(length) or b"{}")
        else:
            args = {key: values[0] for key, values in parse_qs(url.query).items()}
        status, payload, headers = self.server.fake.handle(
            method, url.path, args, self.headers.get("Authorization")
        )
        body = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test): nobody is left to answer


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No Databricks settings from the machine, and no connection beyond 127.0.0.1."""
    import os

    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_", "AZURE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no.databrickscfg"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    real_connect = socket.socket.connect
    refused: list[Any] = []

    def guarded(sock: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1"):
            refused.append(address)
            raise OSError(f"test tried to reach {address}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield
    assert refused == [], f"external connections attempted: {refused}"


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    value = f"dapi-planted-{uuid.uuid4().hex}"
    monkeypatch.setenv(TOKEN_ENV, value)
    return value


@pytest.fixture
def fake(token: str) -> Iterator[FakeDbfs]:
    fake = FakeDbfs(token=token)
    fake.mkdirs(ROOT)
    server = FakeDbfsServer(fake)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def make_store(fake: FakeDbfs, **overrides: Any) -> DbfsDatastore:
    settings: dict[str, Any] = {
        "name": STORE,
        "host": fake.url,
        "token": dg.EnvVar(TOKEN_ENV),
        "root": ROOT,
        "timeout_seconds": 5,
        "max_retries": 3,
        "retry_backoff_seconds": 0.01,
    }
    settings.update(overrides)
    return DbfsDatastore(**settings)


@pytest.fixture
def store(fake: FakeDbfs) -> DbfsDatastore:
    return make_store(fake)


def listed(store: DbfsDatastore, pattern: str) -> list[str]:
    return [info.path for info in store.list_files(pattern)]


def full_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + str(error)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sent_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The timeout of every request the SDK sent, recorded on its way to the socket."""
    timeouts: list[Any] = []
    send = HTTPAdapter.send

    def recording(adapter: HTTPAdapter, request: PreparedRequest, **kwargs: Any) -> Response:
        timeouts.append(kwargs["timeout"])
        return send(adapter, request, **kwargs)

    monkeypatch.setattr(HTTPAdapter, "send", recording)
    return timeouts


def test_round_trip_through_the_dbfs_api(store: DbfsDatastore, fake: FakeDbfs) -> None:
    store.write_bytes("data/a.csv", b"id\n1\n")

    assert fake.files[f"{ROOT}/data/a.csv"] == b"id\n1\n"
    assert fake.paths() == [f"{ROOT}/data/a.csv"]  # the temporary file was moved, not copied
    assert fake.endpoints() == ["create", "add-block", "close", "move"]
    [create] = fake.dbfs_calls("create")
    temp = create.args["path"]
    assert temp.startswith(f"{ROOT}/data/.tmp-") and temp.endswith("a.csv")
    assert fake.dbfs_calls("move")[0].args == {
        "source_path": temp,
        "destination_path": f"{ROOT}/data/a.csv",
    }
    assert store.read_bytes("data/a.csv") == b"id\n1\n"
    assert store.exists("data/a.csv")

    info = store.stat("data/a.csv")
    mtime = fake.mtimes[f"{ROOT}/data/a.csv"]
    assert info.path == "data/a.csv"
    assert info.size == 5
    assert info.modified == datetime.fromtimestamp(mtime / 1000, tz=UTC)
    assert info.etag == f"{mtime:x}-5"
    assert store.list_files("data/*.csv") == [info]


def test_an_empty_file_round_trips(store: DbfsDatastore, fake: FakeDbfs) -> None:
    store.write_bytes("empty.txt", b"")

    assert fake.endpoints() == ["create", "close", "move"]
    assert store.read_bytes("empty.txt") == b""
    assert store.stat("empty.txt").size == 0


def test_listing_sends_only_list_calls_and_walks_only_reachable_folders(
    store: DbfsDatastore, fake: FakeDbfs
) -> None:
    for path in ("data/a.csv", "data/b.txt", "data/sub/c.csv", "data/sub/deep/d.csv", "x/e.csv"):
        fake.put(f"{ROOT}/{path}", b"x")

    assert listed(store, "data/*.csv") == ["data/a.csv"]
    # One folder listed; the glob cannot reach data/sub, so it is not listed either.
    assert [(c.endpoint, c.args["path"]) for c in fake.dbfs_calls()] == [("list", f"{ROOT}/data")]

    fake.calls.clear()
    assert listed(store, "data/**/*.csv") == [
        "data/a.csv",
        "data/sub/c.csv",
        "data/sub/deep/d.csv",
    ]
    assert set(fake.endpoints()) == {"list"}
    assert sorted(c.args["path"] for c in fake.dbfs_calls()) == [
        f"{ROOT}/data",
        f"{ROOT}/data/sub",
        f"{ROOT}/data/sub/deep",
    ]

    fake.calls.clear()
    assert listed(store, "*/*.csv") == ["data/a.csv", "x/e.csv"]
    assert sorted(c.args["path"] for c in fake.dbfs_calls()) == [ROOT, f"{ROOT}/data", f"{ROOT}/x"]
    assert "read" not in fake.endpoints()


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("data/*.csv", ["data/a.csv"]),
        ("*.csv", ["top.csv"]),
        ("*/*.csv", ["data/a.csv"]),
        ("data/**/*.csv", ["data/a.csv", "data/sub/b.csv", "data/sub/deeper/c.csv"]),
        ("data/**", ["data/a.csv", "data/b.txt", "data/sub/b.csv", "data/sub/deeper/c.csv"]),
        ("**/c.csv", ["data/sub/deeper/c.csv"]),
        ("data/sub/deeper/c.csv", ["data/sub/deeper/c.csv"]),
        ("data/[ab].*", ["data/a.csv", "data/b.txt"]),
        ("data/2025/*.csv", []),
        ("data/a.csv/*.csv", []),
    ],
)
def test_globs_match_like_the_local_store(
    store: DbfsDatastore, fake: FakeDbfs, pattern: str, expected: list[str]
) -> None:
    for path in ("top.csv", "data/a.csv", "data/b.txt", "data/sub/b.csv", "data/sub/deeper/c.csv"):
        fake.put(f"{ROOT}/{path}", b"x")

    assert listed(store, pattern) == expected


def test_hidden_files_and_folders_are_not_listed(store: DbfsDatastore, fake: FakeDbfs) -> None:
    for path in ("data/a.csv", "data/.tmp-1-b.csv", "data/.cache/c.csv", ".git/d.csv"):
        fake.put(f"{ROOT}/{path}", b"x")

    assert listed(store, "**") == ["data/a.csv"]


def test_the_root_isolates_the_store(store: DbfsDatastore, fake: FakeDbfs) -> None:
    fake.put("/mnt/raw2/a.csv", b"sibling with the same prefix")
    fake.put("/mnt/other/a.csv", b"elsewhere")
    fake.put("/a.csv", b"top of dbfs")
    fake.put(f"{ROOT}/a.csv", b"mine")

    assert listed(store, "**") == ["a.csv"]
    assert store.read_bytes("a.csv") == b"mine"
    store.write_bytes("b.csv", b"new")
    assert f"{ROOT}/b.csv" in fake.files
    assert "/b.csv" not in fake.files

    other = make_store(fake, root="dbfs:/mnt/other/")
    assert other.root == "/mnt/other"
    assert listed(other, "**") == ["a.csv"]
    assert other.read_bytes("a.csv") == b"elsewhere"


def test_a_missing_root_lists_nothing_and_a_write_creates_it(fake: FakeDbfs) -> None:
    store = make_store(fake, root="/mnt/not_yet")

    assert listed(store, "**") == []
    assert not store.exists("data/a.csv")
    store.write_bytes("data/a.csv", b"id\n")

    assert listed(store, "data/*.csv") == ["data/a.csv"]


def test_write_without_overwrite_refuses_and_keeps_the_original(
    store: DbfsDatastore, fake: FakeDbfs
) -> None:
    store.write_bytes("v000001.json", b"first", overwrite=False)
    fake.calls.clear()

    with pytest.raises(FileExistsError, match=f"datastore '{STORE}'.*'v000001.json'"):
        store.write_bytes("v000001.json", b"second", overwrite=False)

    assert fake.files[f"{ROOT}/v000001.json"] == b"first"
    assert fake.paths() == [f"{ROOT}/v000001.json"]
    assert fake.endpoints() == ["get-status"]  # refused before uploading anything


def test_create_if_absent_holds_when_another_writer_wins_the_race(
    store: DbfsDatastore, fake: FakeDbfs
) -> None:
    # Another writer creates the file after our status check but before our move.
    fake.hooks["move"] = lambda: fake.put(f"{ROOT}/v1.json", b"theirs")

    with pytest.raises(FileExistsError, match=r"'v1\.json' already exists"):
        store.write_bytes("v1.json", b"ours", overwrite=False)

    assert fake.files[f"{ROOT}/v1.json"] == b"theirs"
    assert fake.paths() == [f"{ROOT}/v1.json"]  # our temporary file was deleted


def test_overwrite_replaces_the_file_and_leaves_no_temporary_files(
    store: DbfsDatastore, fake: FakeDbfs
) -> None:
    fake.put(f"{ROOT}/model.bin", b"old contents")

    store.write_bytes("model.bin", b"new")

    assert fake.files[f"{ROOT}/model.bin"] == b"new"
    assert fake.paths() == [f"{ROOT}/model.bin"]
    assert "read" not in fake.endpoints()


def test_a_failed_replace_restores_the_previous_file(store: DbfsDatastore, fake: FakeDbfs) -> None:
    fake.put(f"{ROOT}/model.bin", b"old contents")
    # Moves: temp->target (exists), target->aside, temp->target (fails), aside->target.
    fake.fail("move", error(500, "INTERNAL_ERROR", "Unexpected failure"), after=2)

    with pytest.raises(DatastoreError) as caught:
        store.write_bytes("model.bin", b"new")

    assert caught.value.reason == "error"
    assert fake.files[f"{ROOT}/model.bin"] == b"old contents"
    assert fake.paths() == [f"{ROOT}/model.bin"]
    assert len(fake.dbfs_calls("move")) == 4  # the failed move is not blindly repeated


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(error(500, "INTERNAL_ERROR", "Unexpected failure"), id="500"),
        pytest.param(error(404, "RESOURCE_DOES_NOT_EXIST", "No stream"), id="handle-gone"),
    ],
)
def test_a_write_whose_add_block_fails_leaves_nothing(
    store: DbfsDatastore, fake: FakeDbfs, reply: Reply
) -> None:
    fake.fail("add-block", reply, after=1)

    with pytest.raises(DatastoreError, match=f"datastore '{STORE}'.*writing 'big.bin'"):
        store.write_bytes("big.bin", b"x" * (2 * BLOCK_BYTES + 10))

    assert fake.paths() == []
    # An add-block that may have landed is not repeated: that could duplicate a block.
    assert len(fake.dbfs_calls("add-block")) == 2
    assert fake.endpoints()[-1] == "delete"
    assert not store.exists("big.bin")


def test_a_write_onto_a_folder_is_refused_and_keeps_the_folder(
    store: DbfsDatastore, fake: FakeDbfs
) -> None:
    fake.put(f"{ROOT}/data/a.csv", b"x")

    with pytest.raises(DatastoreError, match="a folder has that name") as caught:
        store.write_bytes("data", b"new")

    assert caught.value.reason == "invalid request"
    assert fake.paths() == [f"{ROOT}/data/a.csv"]


def test_a_throttled_add_block_is_retried_because_it_was_not_applied(
    store: DbfsDatastore, fake: FakeDbfs
) -> None:
    fake.fail("add-block", error(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests"), times=2)

    store.write_bytes("a.bin", b"payload")

    assert fake.files[f"{ROOT}/a.bin"] == b"payload"
    assert len(fake.dbfs_calls("add-block")) == 3


def test_a_large_file_moves_in_blocks_of_at_most_one_megabyte(
    store: DbfsDatastore, fake: FakeDbfs
) -> None:
    payload = bytes(range(256)) * (3 * BLOCK_BYTES // 256) + b"tail!"

    store.write_bytes("big.bin", payload)

    blocks = [base64.b64decode(c.args["data"]) for c in fake.dbfs_calls("add-block")]
    assert [len(b) for b in blocks] == [BLOCK_BYTES, BLOCK_BYTES, BLOCK_BYTES, 5]
    assert b"".join(blocks) == payload

    fake.calls.clear()
    with store.open_read("big.bin") as stream:
        first = stream.read(65536)
        # Reads happen on demand: one status call and one 1 MB read so far.
        assert fake.endpoints() == ["get-status", "read"]
        rest = stream.read()

    assert first + rest == payload
    reads = fake.dbfs_calls("read")
    assert [int(c.args["offset"]) for c in reads] == [n * BLOCK_BYTES for n in range(4)]
    assert all(int(c.args["length"]) <= BLOCK_BYTES for c in reads)


def test_etag_changes_when_content_changes(store: DbfsDatastore) -> None:
    store.write_bytes("a.csv", b"id\n1\n")
    before = store.stat("a.csv")

    store.write_bytes("a.csv", b"id\n2\n")
    after = store.stat("a.csv")

    assert after.size == before.size
    assert after.etag != before.etag
    assert store.stat("a.csv").etag == after.etag


def test_missing_files_folders_and_deletes(store: DbfsDatastore, fake: FakeDbfs) -> None:
    fake.put(f"{ROOT}/data/a.csv", b"abc")

    with pytest.raises(FileNotFoundError, match=f"datastore '{STORE}'.*'data/none.csv'"):
        with store.open_read("data/none.csv"):
            pass
    with pytest.raises(FileNotFoundError, match="'data' is a folder"):
        store.stat("data")
    assert not store.exists("data")
    assert not store.exists("data/none.csv")

    store.delete("data/a.csv")
    store.delete("data/a.csv")

    assert not store.exists("data/a.csv")
    assert f"{ROOT}/data/a.csv" not in fake.files
    with pytest.raises(FileNotFoundError, match=f"datastore '{STORE}'"):
        store.stat("data/a.csv")


UNSAFE_PATHS = ["../x", "/etc/passwd", "a/../../b", "C:\\x", "..\\x", ""]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda s, p: s.read_bytes(p), id="read"),
        pytest.param(lambda s, p: s.write_bytes(p, b"x"), id="write"),
        pytest.param(lambda s, p: s.write_bytes(p, b"x", overwrite=False), id="create"),
        pytest.param(lambda s, p: s.exists(p), id="exists"),
        pytest.param(lambda s, p: s.delete(p), id="delete"),
        pytest.param(lambda s, p: s.stat(p), id="stat"),
        pytest.param(lambda s, p: s.list_files(p), id="list"),
    ],
)
def test_paths_that_leave_the_root_are_refused_before_any_request(
    store: DbfsDatastore, fake: FakeDbfs, path: str, operation: Callable[..., Any]
) -> None:
    with pytest.raises(UnsafePathError, match=f"datastore '{STORE}'"):
        operation(store, path)

    assert fake.calls == []  # not even the SDK's host probe: no client was built


def test_a_wrong_token_is_an_authentication_failure_that_never_shows_the_token(
    fake: FakeDbfs, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = f"dapi-wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv("DBFS_WRONG_TOKEN", wrong)
    store = make_store(fake, token=dg.EnvVar("DBFS_WRONG_TOKEN"))

    with pytest.raises(DatastoreError) as caught:
        store.list_files("**")

    assert caught.value.reason == "authentication failed"
    text = full_text(caught.value)
    assert wrong not in text
    assert fake.token not in text
    assert f"datastore '{STORE}'" in str(caught.value)
    assert "Invalid access token" in str(caught.value)
    assert "token environment variable" in str(caught.value)
    assert len(fake.dbfs_calls("list")) == 1  # an authentication failure is not retried
    assert wrong not in store.describe() and "dbfs:/mnt/raw on http://127.0.0.1" in store.describe()


def test_check_passes_on_an_existing_root(store: DbfsDatastore, fake: FakeDbfs) -> None:
    store.check()

    assert fake.endpoints() == ["get-status"]
    assert fake.dbfs_calls()[0].args == {"path": ROOT}


def test_check_reports_a_missing_root_as_not_found(fake: FakeDbfs) -> None:
    store = make_store(fake, root="/mnt/typo")

    with pytest.raises(DatastoreError, match="not found while checking the root") as caught:
        store.check()

    assert caught.value.reason == "not found"
    assert "fix 'root'" in str(caught.value)


def test_check_reports_a_root_without_permission(fake: FakeDbfs) -> None:
    fake.forbidden.append(ROOT)
    store = make_store(fake)

    with pytest.raises(DatastoreError) as caught:
        store.check()

    assert caught.value.reason == "permission denied"
    assert fake.token not in full_text(caught.value)


def test_an_unreachable_host_fails_fast(token: str) -> None:
    clock = FakeClock()
    store = DbfsDatastore(
        name=STORE,
        host=f"http://127.0.0.1:{closed_port()}",
        token=dg.EnvVar(TOKEN_ENV),
        root=ROOT,
        max_retries=4,
        retry_backoff_seconds=2.0,  # retrying a refused connection would take 30 s
    ).using_clock(clock)

    with pytest.raises(DatastoreError) as caught:
        store.check()

    assert caught.value.reason == "unreachable"
    assert "check 'host'" in str(caught.value)
    assert token not in full_text(caught.value)
    # A refused connection is not retried: not one of the 2, 4, 8, 16 s pauses is taken.
    assert clock.sleeps == []


def test_an_answer_slower_than_the_timeout_times_out_without_a_retry(
    fake: FakeDbfs, sent_timeouts: list[Any]
) -> None:
    fake.delays["get-status"] = 2.5
    store = make_store(fake, timeout_seconds=1, max_retries=3)

    with pytest.raises(DatastoreError) as caught:
        store.check()

    assert caught.value.reason == "timed out"
    assert "raise timeout_seconds" in str(caught.value)
    # The SDK's host probe, then one get-status: the timed-out request was not sent again.
    assert len(fake.dbfs_calls("get-status")) == 1
    assert sent_timeouts == [1, 1]


def test_a_server_that_never_answers_costs_one_timeout_not_one_per_retry(
    token: str, sent_timeouts: list[Any]
) -> None:
    with SilentServer() as silent:
        store = make_store(
            FakeDbfs(token=token, url=f"http://127.0.0.1:{silent.port}"),
            timeout_seconds=1,
            max_retries=3,
        )

        with pytest.raises(DatastoreError) as caught:
            store.check()

    assert caught.value.reason == "timed out"
    # Building the SDK client probes the host; that one unanswered request used up the budget,
    # so the call itself was not sent.
    assert silent.connections == 1
    assert sent_timeouts == [1]
    assert "probe" in str(caught.value)


def test_a_503_then_200_succeeds_on_a_retry_within_a_short_budget(fake: FakeDbfs) -> None:
    fake.put(f"{ROOT}/a.csv", b"x")
    fake.fail("get-status", error(503, "TEMPORARILY_UNAVAILABLE", "Service unavailable"))
    store = make_store(fake, timeout_seconds=1, max_retries=3)

    assert store.stat("a.csv").size == 1

    assert len(fake.dbfs_calls("get-status")) == 2


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(error(503, "TEMPORARILY_UNAVAILABLE", "Service unavailable"), id="503"),
        pytest.param(
            error(429, "REQUEST_LIMIT_EXCEEDED", "Rate limited", {"Retry-After": "0"}), id="429"
        ),
        pytest.param(error(500, "INTERNAL_ERROR", "Unexpected error"), id="500"),
    ],
)
def test_transient_errors_are_retried_with_backoff(
    store: DbfsDatastore, fake: FakeDbfs, reply: Reply
) -> None:
    fake.put(f"{ROOT}/data/a.csv", b"x")
    fake.fail("list", reply, times=2)
    fake.fail("read", reply, times=2)

    assert listed(store, "data/*.csv") == ["data/a.csv"]
    assert store.read_bytes("data/a.csv") == b"x"

    assert len(fake.dbfs_calls("list")) == 3
    assert len(fake.dbfs_calls("read")) == 3


def test_a_persistent_503_gives_up_after_max_retries(store: DbfsDatastore, fake: FakeDbfs) -> None:
    clock = FakeClock()
    fake.fail("get-status", error(503, "TEMPORARILY_UNAVAILABLE", "Service unavailable"), 99)

    with pytest.raises(DatastoreError) as caught:
        store.using_clock(clock).stat("data/a.csv")

    assert caught.value.reason == "error"
    assert "gave up after 4 attempt(s)" in str(caught.value)
    assert "raise max_retries" in str(caught.value)
    # Each attempt reached the server once: the SDK added no retries (or pauses) of its own.
    assert len(fake.dbfs_calls("get-status")) == store.max_retries + 1
    assert clock.sleeps == [0.01, 0.02, 0.04]


def test_no_retry_starts_once_the_budget_is_spent(fake: FakeDbfs) -> None:
    clock = FakeClock()
    fake.fail("get-status", error(503, "TEMPORARILY_UNAVAILABLE", "Service unavailable"), 99)
    store = make_store(fake, timeout_seconds=5, max_retries=10, retry_backoff_seconds=1)

    with pytest.raises(DatastoreError) as caught:
        store.using_clock(clock).stat("a.csv")

    # Pauses of 1 s and 2 s fit in 5 s; the next (4 s) would leave nothing to wait for an answer.
    assert clock.sleeps == [1, 2]
    assert len(fake.dbfs_calls("get-status")) == 3
    assert "timeout_seconds" in str(caught.value)


def test_default_authentication_is_used_without_a_token(
    fake: FakeDbfs, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.put(f"{ROOT}/a.csv", b"x")
    monkeypatch.setenv("DATABRICKS_TOKEN", fake.token)
    store = make_store(fake, token=None)

    assert listed(store, "*.csv") == ["a.csv"]


def test_default_authentication_with_nothing_configured_says_what_to_set(fake: FakeDbfs) -> None:
    store = make_store(fake, token=None)

    with pytest.raises(DatastoreError) as caught:
        store.check()

    assert caught.value.reason == "authentication failed"
    assert "DATABRICKS_TOKEN" in str(caught.value)
    assert fake.dbfs_calls() == []


def test_an_unset_token_variable_names_the_variable(fake: FakeDbfs) -> None:
    store = make_store(fake, token=dg.EnvVar("DBFS_TOKEN_NOT_SET"))

    with pytest.raises(DatastoreError, match="DBFS_TOKEN_NOT_SET") as caught:
        store.check()

    assert caught.value.reason == "missing secret"


@pytest.mark.parametrize("root", ["mnt/raw", "/mnt/../etc"])
def test_a_root_must_be_an_absolute_dbfs_folder(root: str) -> None:
    with pytest.raises(ValueError, match="root"):
        DbfsDatastore(name=STORE, host="https://adb-1.2.azuredatabricks.net", root=root)


def test_the_catalog_builds_the_store() -> None:
    entry = {
        "kind": "dbfs",
        "host": "https://adb-1.2.azuredatabricks.net/",
        "token": {"env": TOKEN_ENV},
        "root": "/mnt/raw",
        "timeout_seconds": 12,
    }

    store = project_catalog_of({"datastores": {STORE: entry}}).resources[STORE]

    assert isinstance(store, DbfsDatastore)
    assert store.describe() == "dbfs:/mnt/raw on https://adb-1.2.azuredatabricks.net"
    assert store.timeout_seconds == 12
    assert isinstance(store.token, dg.EnvVar)


def test_works_as_a_dagster_resource(fake: FakeDbfs) -> None:
    @dg.asset
    def report(lake: DbfsDatastore) -> dg.MaterializeResult:
        lake.write_bytes("reports/latest.txt", b"ok")
        return dg.MaterializeResult(metadata={"files": len(lake.list_files("reports/*.txt"))})

    result = dg.materialize(
        [report], resources={"lake": make_store(fake)}, instance=dg.DagsterInstance.ephemeral()
    )

    assert result.success
    assert fake.files[f"{ROOT}/reports/latest.txt"] == b"ok"
