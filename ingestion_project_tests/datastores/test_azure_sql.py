"""AzureSqlDatastore through the real pymssql driver, without a SQL Server.

No live SQL Server or Azure SQL Database was available: Microsoft's image needs Docker, which
has no engine on this machine, and there is no Azure account. So every test runs our methods
unchanged through SQLAlchemy's real ``mssql+pymssql`` dialect and the real pymssql 2.4 /
FreeTDS driver over real TCP sockets, against:

- a closed port and a listener that never answers (connect failures and the login timeout);
- ``FakeSqlServer`` below, a scripted TDS 7.4 endpoint: it completes the pre-login and login
  handshakes (or answers the login with SQL Server's own error messages), decodes every SQL
  batch the driver sends, and answers from a script with result sets, server errors or silence.
  That is the least fake point to cut: nothing of ours or of the driver is replaced, the
  statements are captured twice (as SQLAlchemy hands them to the driver, and as they arrive on
  the wire) and the errors are the exception objects pymssql itself builds.

Verified here: the SQL each method sends (bracket-quoted identifiers, values only as parameters,
which pymssql quotes as ``N'...'`` literals), names that could inject refused before any
connection, streaming in batches with early close cancelling the query, the login and statement
timeouts (including FreeTDS's process-wide query timeout), the encryption level the driver
requests, the classification of pymssql's real error formats (including its sticky per-process
error state), that the password never shows, and the catalog factory.
Not verified: that the T-SQL runs on a real server and returns what the script returns
(``sys.partitions``/``sys.allocation_units`` sizes, ``dm_db_index_usage_stats`` timing,
change tracking, CHECKSUM_AGG content), real permissions, the TLS handshake with Azure (the fake
server declines encryption), and that SQL Server stops a query when the client gives up.
"""

from __future__ import annotations

import re
import select
import socket
import struct
import threading
import traceback
import tracemalloc
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pymssql
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc

from ingestion_project.datastores.azure_sql import AzureSqlDatastore
from ingestion_project.datastores.base import DatastoreError
from ingestion_project.datastores.sql import SqlDatastore
from ingestion_project_tests.catalogs import project_catalog_of
from ingestion_project_tests.datastores.timing import SilentServer, recording_driver_connects

FINGERPRINT = re.compile(r"[0-9a-f]{64}")
SILENT = "silent"

_HEADER = struct.Struct(">BBHHBB")
_PACKET_SIZE = 4096
_SQL_BATCH, _ATTENTION, _LOGIN7, _PRELOGIN, _REPLY = 0x01, 0x06, 0x10, 0x12, 0x04
_DONE_ERROR, _DONE_COUNT, _DONE_ATTN = 0x02, 0x10, 0x20
_COLLATION = bytes([0x09, 0x04, 0xD0, 0x00, 0x34])
# What pymssql and SQLAlchemy send on their own; not recorded as batches.
_SESSION = re.compile(r"\s*(SET |use |BEGIN TRAN|IF @@TRANCOUNT|COMMIT|ROLLBACK)", re.IGNORECASE)


@dataclass
class Rows:
    """A result set; column types are taken from the values unless given."""

    columns: list[str]
    rows: Iterable[tuple[Any, ...]]
    types: list[str] | None = None


@dataclass
class ServerError:
    """An error message as SQL Server sends it: number, severity (class), text."""

    number: int
    severity: int
    text: str


@dataclass
class Later:
    """A reply the server sends only after ``seconds``: a slow statement, not a silent one."""

    seconds: float
    reply: Rows | ServerError | list[ServerError] | None


Reply = Rows | ServerError | list[ServerError] | Later | str | None

# SQLAlchemy's mssql dialect asks these when it first connects; matched by how they start.
_DIALECT_SETUP: list[tuple[str, Reply]] = [
    ("select @@version", Rows([""], [("Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64)",)])),
    ("SELECT schema_name()", Rows([""], [("dbo",)])),
    ("SELECT name FROM sys.system_views", Rows(["name"], [("dm_exec_sessions",)])),
    ("SELECT CASE transaction_isolation_level", Rows([""], [("READ COMMITTED",)])),
    ("SELECT CAST('test max support'", Rows([""], [("test max support",)])),
    ("SELECT 1 FROM fn_listextendedproperty", Rows([""], [(1,)])),
    ("select 1", Rows([""], [(1,)])),
]


def _b_varchar(text: str) -> bytes:
    return bytes([len(text)]) + text.encode("utf-16-le")


def _token(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + struct.pack("<H", len(body)) + body


def _errors(errors: ServerError | list[ServerError]) -> bytes:
    tokens = b""
    for error in errors if isinstance(errors, list) else [errors]:
        text = struct.pack("<H", len(error.text)) + error.text.encode("utf-16-le")
        body = struct.pack("<iBB", error.number, 1, error.severity) + text
        tokens += _token(0xAA, body + _b_varchar("fakesql") + _b_varchar("") + b"\x01\0\0\0")
    return tokens + _done(_DONE_ERROR)


def _done(status: int = 0, count: int = 0) -> bytes:
    return b"\xfd" + struct.pack("<HHQ", status, 0xC1 if status else 0, count)


def _type_of(values: list[Any]) -> str:
    for value in values:
        if isinstance(value, int):
            return "bigint"
        if isinstance(value, float):
            return "float"
        if value is not None:
            return "nvarchar"
    return "nvarchar"


def _column_metadata(columns: list[str], types: list[str]) -> bytes:
    out = b"\x81" + struct.pack("<H", len(columns))
    type_info = {"bigint": b"\x26\x08", "float": b"\x6d\x08"}
    for name, kind in zip(columns, types, strict=True):
        nvarchar = b"\xe7" + struct.pack("<H", 8000) + _COLLATION
        out += struct.pack("<IH", 0, 0x0001) + type_info.get(kind, nvarchar) + _b_varchar(name)
    return out


def _row(values: tuple[Any, ...], types: list[str]) -> bytes:
    out = b"\xd1"
    for value, kind in zip(values, types, strict=True):
        if kind in ("bigint", "float"):
            packed = struct.pack("<q" if kind == "bigint" else "<d", value or 0)
            out += b"\x00" if value is None else b"\x08" + packed
        elif value is None:
            out += b"\xff\xff"
        else:
            raw = str(value).encode("utf-16-le")
            out += struct.pack("<H", len(raw)) + raw
    return out


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class FakeSqlServer:
    """A TDS 7.4 endpoint on 127.0.0.1 that answers the real pymssql driver from a script.

    ``login``: None accepts every login; a ServerError (or list) refuses it as SQL Server would;
    SILENT never answers the login. ``answers`` maps a substring of a batch to its reply, tried
    in order before the dialect's own setup queries; SILENT never answers that batch, Later
    answers it late. ``connections`` counts the connections clients opened.
    """

    def __init__(self, login: Reply = None, answers: dict[str, Reply] | None = None) -> None:
        self.login = login
        self.answers = dict(answers or {})
        self.batches: list[str] = []
        self.client_encryption: list[int] = []
        self.cancelled_results = 0
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            try:
                self._converse(conn)
            except OSError:
                return

    def _converse(self, conn: socket.socket) -> None:
        kind, data = self._read(conn)
        if kind != _PRELOGIN:
            return
        self.client_encryption.append(self._requested_encryption(data))
        # VERSION 16.0, ENCRYPTION = 2 (not supported): the login goes unencrypted.
        self._send(conn, b"\x00\x00\x0b\x00\x06\x01\x00\x11\x00\x01\xff\x10\0\0\0\0\0\x02")
        kind, _ = self._read(conn)
        if kind != _LOGIN7 or self.login == SILENT:
            self._wait_until_closed(conn)
            return
        if self.login is not None:
            assert isinstance(self.login, ServerError | list)
            self._send(conn, _errors(self.login))
            return
        product = b"\x01\x74\x00\x00\x04" + _b_varchar("Microsoft SQL Server") + b"\x10\x00\x03\xe8"
        self._send(conn, _token(0xAD, product) + _done())
        while not self._stop.is_set():
            kind, data = self._read(conn)
            if kind is None:
                return
            if kind == _ATTENTION:
                self._send(conn, _done(_DONE_ATTN))
            elif kind == _SQL_BATCH:
                headers_length = struct.unpack("<I", data[:4])[0]
                reply = self._answer(data[headers_length:].decode("utf-16-le"))
                if reply == SILENT:
                    self._wait_until_closed(conn)
                    return
                if isinstance(reply, Later):
                    self._stop.wait(reply.seconds)
                    reply = reply.reply
                self._reply(conn, reply)

    def _answer(self, sql: str) -> Reply:
        if not _SESSION.match(sql):
            self.batches.append(sql)
        for needle, reply in self.answers.items():
            if needle.lower() in sql.lower():
                return reply
        for start, reply in _DIALECT_SETUP:
            if sql.strip().lower().startswith(start.lower()):
                return reply
        return None

    def _reply(self, conn: socket.socket, reply: Reply) -> None:
        if reply is None or isinstance(reply, str):
            self._send(conn, _done())
            return
        if not isinstance(reply, Rows):
            self._send(conn, _errors(reply))
            return
        rows: Iterable[tuple[Any, ...]] = reply.rows
        types = reply.types
        if types is None:
            rows = list(rows)
            types = [_type_of([row[i] for row in rows]) for i in range(len(reply.columns))]
        chunk, count = _column_metadata(reply.columns, types), 0
        for row in rows:
            chunk, count = chunk + _row(row, types), count + 1
            if len(chunk) >= 64 * 1024:
                if self._attention_arrived(conn):
                    self.cancelled_results += 1
                    self._send(conn, _done(_DONE_ATTN))
                    return
                self._send(conn, chunk, last=False)
                chunk = b""
        self._send(conn, chunk + _done(_DONE_COUNT, count))

    def _attention_arrived(self, conn: socket.socket) -> bool:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and self._read(conn)[0] == _ATTENTION

    @staticmethod
    def _requested_encryption(prelogin: bytes) -> int:
        offset = 0
        while prelogin[offset] != 0xFF:
            token, start, length = struct.unpack(">BHH", prelogin[offset : offset + 5])
            if token == 0x01 and length:
                return prelogin[start]
            offset += 5
        return -1

    @staticmethod
    def _send(conn: socket.socket, payload: bytes, last: bool = True) -> None:
        size = _PACKET_SIZE - _HEADER.size
        pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        for index, piece in enumerate(pieces):
            status = 1 if last and index == len(pieces) - 1 else 0
            conn.sendall(_HEADER.pack(_REPLY, status, _HEADER.size + len(piece), 0, 1, 0) + piece)

    @staticmethod
    def _read(conn: socket.socket) -> tuple[int | None, bytes]:
        data = b""
        while True:
            header = _recv_exact(conn, _HEADER.size)
            body = header and _recv_exact(conn, _HEADER.unpack(header)[2] - _HEADER.size)
            if header is None or body is None:
                return None, b""
            data += body
            if header[1] & 1:
                return header[0], data

    def _wait_until_closed(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        while not self._stop.is_set():
            try:
                if not conn.recv(65536):
                    return
            except TimeoutError:
                continue


@pytest.fixture
def server() -> Iterator[FakeSqlServer]:
    fake = FakeSqlServer()
    yield fake
    fake.close()


@pytest.fixture
def make_store() -> Iterator[Callable[..., AzureSqlDatastore]]:
    stores: list[AzureSqlDatastore] = []

    def make(port: int, **overrides: Any) -> AzureSqlDatastore:
        settings: dict[str, Any] = {
            "name": "warehouse",
            "host": "127.0.0.1",
            "port": port,
            "database": "sales",
            "user": "loader",
            "encryption": "off",
            "connect_timeout_seconds": 3,
        }
        store = AzureSqlDatastore(**{**settings, **overrides})
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.dispose()


@pytest.fixture
def store(server: FakeSqlServer, make_store: Callable[..., AzureSqlDatastore]) -> AzureSqlDatastore:
    return make_store(server.port)


def _fails(call: Callable[[], object]) -> DatastoreError:
    with pytest.raises(DatastoreError) as info:
        call()
    return info.value


def _full_text(error: BaseException) -> str:
    """Message plus the whole printed traceback, including chained causes."""
    return str(error) + "".join(traceback.format_exception(error))


def _statements(store: AzureSqlDatastore) -> list[tuple[str, Any]]:
    """Record each statement and its parameters as SQLAlchemy hands them to pymssql."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        seen.append((statement, parameters))

    sa_event.listen(store._engine(), "before_cursor_execute", record)
    return seen


def test_describe_hides_the_password_and_the_store_is_a_sql_datastore(
    make_store: Callable[..., AzureSqlDatastore],
) -> None:
    planted = f"planted-{uuid.uuid4().hex}"
    store = make_store(1433, password=planted)
    assert store.describe() == "mssql://loader@127.0.0.1:1433/sales"
    assert planted not in store.describe()
    assert planted not in repr(store._engine().url)
    assert isinstance(store, SqlDatastore)
    assert AzureSqlDatastore(name="a", host="h", database="d", user="u").port == 1433


def test_dialect_setup_and_check_go_through_the_real_driver(
    server: FakeSqlServer, store: AzureSqlDatastore
) -> None:
    store.check()
    assert server.batches[0] == "select @@version"
    assert server.batches[-1] == "select 1"
    assert store._engine().dialect.server_version_info == (16, 0, 1000, 6)


def test_read_sql_sends_values_only_as_driver_quoted_parameters(
    server: FakeSqlServer, store: AzureSqlDatastore
) -> None:
    server.answers["FROM orders"] = Rows(["id", "amount", "name"], [(8, 12.0, "n8"), (9, None, "")])
    statements = _statements(store)
    hostile = "x' OR '1'='1"
    frame = store.read_sql(
        "SELECT id, amount, name FROM orders WHERE id > :low AND name <> :name AND code LIKE 'n%'",
        {"low": 7, "name": hostile},
    )
    assert frame["id"].tolist() == [8, 9]
    assert frame["amount"].tolist()[0] == 12.0
    assert list(frame.columns) == ["id", "amount", "name"]

    sent, parameters = statements[-1]
    assert sent.endswith("WHERE id > %(low)s AND name <> %(name)s AND code LIKE 'n%'")
    assert parameters == {"low": 7, "name": hostile}
    assert hostile not in sent
    # pymssql quotes the value into one N'...' literal, its quotes doubled.
    assert server.batches[-1].endswith("id > 7 AND name <> N'x'' OR ''1''=''1' AND code LIKE 'n%'")


def test_missing_parameter_fails_before_the_server_sees_the_query(
    server: FakeSqlServer, store: AzureSqlDatastore
) -> None:
    error = _fails(lambda: store.read_sql("SELECT :value AS v"))
    assert "query failed" in str(error)
    assert "value" in str(error)
    assert not any("AS v" in sql for sql in server.batches)


def test_list_tables_binds_the_schema_and_sorts(
    server: FakeSqlServer, store: AzureSqlDatastore
) -> None:
    server.answers["FROM sys.schemas"] = Rows([""], [(1,)])
    server.answers["INFORMATION_SCHEMA.TABLES"] = Rows(["TABLE_NAME"], [("orders",), ("items",)])
    statements = _statements(store)

    assert store.list_tables("sales") == ["items", "orders"]
    assert statements[-2] == (
        "SELECT COUNT(*) FROM sys.schemas WHERE name = %(schema)s",
        {"schema": "sales"},
    )
    assert statements[-1][1] == {"schema": "sales"}
    assert "TABLE_TYPE = 'BASE TABLE'" in statements[-1][0]
    assert server.batches[-1].endswith("TABLE_SCHEMA = COALESCE(N'sales', SCHEMA_NAME())")

    assert store.list_tables() == ["items", "orders"]
    assert server.batches[-1].endswith("TABLE_SCHEMA = COALESCE(NULL, SCHEMA_NAME())")

    server.answers["FROM sys.schemas"] = Rows([""], [(0,)])
    error = _fails(lambda: store.list_tables("nosuch"))
    assert "schema 'nosuch' does not exist" in str(error)
    assert error.reason == "not found"


@pytest.mark.parametrize(
    "bad_name",
    [
        "t; drop table x",
        "t] or 1=1 --",
        "[x]",
        "t' or '1'='1",
        'x"',
        "x.y.z",
        "",
        "a" * 64,
        "tëst",
    ],
)
def test_names_that_could_inject_are_refused_before_any_connection(
    server: FakeSqlServer, store: AzureSqlDatastore, bad_name: str
) -> None:
    attempts: list[Callable[[], object]] = [
        lambda: store.table_fingerprint(bad_name),
        lambda: store.table_fingerprint("orders", bad_name),
        lambda: store.list_tables(bad_name),
        lambda: store.query_fingerprint("SELECT 1", tables=[bad_name]),
    ]
    for attempt in attempts:
        error = _fails(attempt)
        assert "datastore 'warehouse'" in str(error)
        assert "is not allowed" in str(error)
    assert server.client_encryption == []
    assert server.batches == []


def _fingerprint_script(server: FakeSqlServer, used_pages: int) -> None:
    server.answers.update(
        {
            "FROM sys.tables": Rows(["", "", ""], [(1205579333, "dbo", "2024-05-01T10:00:00.123")]),
            "FROM sys.partitions": Rows(
                ["", "", "", "", ""], [(72057594043236352, 1, 1, 10, used_pages)]
            ),
            "COUNT_BIG": Rows(["", ""], [(10, 1234567)]),
            "HAS_PERMS_BY_NAME": Rows(["", ""], [(1, 0)]),
            "dm_db_index_usage_stats": Rows(["", "", ""], [(1, 3, "2024-05-02T08:00:00.5")]),
            "CHANGE_TRACKING_CURRENT_VERSION": Rows(["", ""], [(42, 7)]),
        }
    )


def test_small_table_fingerprint_reads_the_content_of_the_bracketed_table(
    server: FakeSqlServer, store: AzureSqlDatastore
) -> None:
    _fingerprint_script(server, used_pages=2)
    statements = _statements(store)
    before = store.table_fingerprint("orders")
    assert FINGERPRINT.fullmatch(before)
    assert store.table_fingerprint("orders") == before

    lookup, parameters = statements[-6]
    assert "WHERE t.name = %(table)s AND s.name = COALESCE(%(schema)s, SCHEMA_NAME())" in lookup
    assert parameters == {"table": "orders", "schema": None}
    assert statements[-5][1] == {"object_id": 1205579333}
    assert (
        statements[-4][0]
        == "SELECT COUNT_BIG(*), CHECKSUM_AGG(BINARY_CHECKSUM(*)) FROM [dbo].[orders]"
    )
    assert not any("dm_db_index_usage_stats" in batch for batch in server.batches)

    server.answers["COUNT_BIG"] = Rows(["", ""], [(10, 7654321)])
    changed = store.table_fingerprint("orders")
    assert changed != before
    server.answers["FROM sys.tables"] = Rows(
        ["", "", ""], [(1205579333, "dbo", "2024-06-01T00:00:00")]
    )
    assert store.table_fingerprint("orders") not in (before, changed)


def test_schema_and_reserved_words_are_bracket_quoted(
    server: FakeSqlServer, store: AzureSqlDatastore
) -> None:
    _fingerprint_script(server, used_pages=2)
    server.answers["FROM sys.tables"] = Rows(["", "", ""], [(7, "select", "2024-05-01T10:00:00")])
    statements = _statements(store)
    store.table_fingerprint("order", "select")
    assert statements[-1][0].endswith("FROM [select].[order]")
    assert statements[-3][1] == {"table": "order", "schema": "select"}
    assert any("s.name = COALESCE(N'select', SCHEMA_NAME())" in sql for sql in server.batches)


def test_large_table_fingerprint_uses_statistics_without_reading_it(
    server: FakeSqlServer, make_store: Callable[..., AzureSqlDatastore]
) -> None:
    _fingerprint_script(server, used_pages=5000)
    store = make_store(server.port, exact_fingerprint_max_bytes=32 * 1024 * 1024)
    before = store.table_fingerprint("orders", "dbo")
    assert not any("COUNT_BIG" in batch for batch in server.batches)
    assert any("sys.dm_db_index_usage_stats" in batch for batch in server.batches)
    assert store.table_fingerprint("orders", "dbo") == before

    server.answers["dm_db_index_usage_stats"] = Rows(
        ["", "", ""], [(1, 4, "2024-05-02T08:00:01.25")]
    )
    updated = store.table_fingerprint("orders", "dbo")
    assert updated != before
    server.answers["FROM sys.partitions"] = Rows(
        ["", "", "", "", ""], [(72057594043236352, 1, 1, 11, 5000)]
    )
    assert store.table_fingerprint("orders", "dbo") not in (before, updated)


def test_statistics_fall_back_to_change_tracking_then_refuse(
    server: FakeSqlServer, make_store: Callable[..., AzureSqlDatastore]
) -> None:
    _fingerprint_script(server, used_pages=1)
    store = make_store(server.port, exact_fingerprint_max_bytes=0)
    server.answers["HAS_PERMS_BY_NAME"] = Rows(["", ""], [(0, 1)])
    tracked = store.table_fingerprint("orders")
    assert any("CHANGE_TRACKING_CURRENT_VERSION()" in batch for batch in server.batches)
    assert not any("dm_db_index_usage_stats" in batch for batch in server.batches)
    server.answers["CHANGE_TRACKING_CURRENT_VERSION"] = Rows(["", ""], [(43, 7)])
    assert store.table_fingerprint("orders") != tracked

    server.answers["HAS_PERMS_BY_NAME"] = Rows(["", ""], [(0, 0)])
    error = _fails(lambda: store.table_fingerprint("orders"))
    assert "GRANT VIEW DATABASE STATE" in str(error)
    assert error.reason == "permission denied"


def test_missing_table_is_named(server: FakeSqlServer, store: AzureSqlDatastore) -> None:
    server.answers["FROM sys.tables"] = Rows(
        ["", "", ""], [], types=["bigint", "nvarchar", "nvarchar"]
    )
    error = _fails(lambda: store.table_fingerprint("absent", "dbo"))
    assert "table 'absent' not found in schema 'dbo'" in str(error)


def test_query_fingerprint_follows_text_params_and_tables(
    server: FakeSqlServer, store: AzureSqlDatastore
) -> None:
    _fingerprint_script(server, used_pages=2)
    query = "SELECT id FROM dbo.orders WHERE id > :low"
    base = store.query_fingerprint(query, {"low": 1}, ["dbo.orders"])
    assert store.query_fingerprint(" " + query + " ;", {"low": 1}, ["dbo.orders"]) == base
    assert store.query_fingerprint(query, {"low": 2}, ["dbo.orders"]) != base
    server.answers["COUNT_BIG"] = Rows(["", ""], [(11, 1)])
    assert store.query_fingerprint(query, {"low": 1}, ["dbo.orders"]) != base


def test_iter_batches_yields_frames_of_the_requested_size(
    server: FakeSqlServer, store: AzureSqlDatastore
) -> None:
    server.answers["FROM orders"] = Rows(["id", "name"], [(i, f"n{i}") for i in range(1, 11)])
    statements = _statements(store)
    batches = list(
        store.iter_batches("SELECT id, name FROM orders WHERE id >= :low", {"low": 1}, 3)
    )
    assert [len(batch) for batch in batches] == [3, 3, 3, 1]
    assert [i for batch in batches for i in batch["id"].tolist()] == list(range(1, 11))
    assert statements[-1] == ("SELECT id, name FROM orders WHERE id >= %(low)s", {"low": 1})
    _fails(lambda: next(store.iter_batches("SELECT 1", batch_size=0)))


def test_iter_batches_streams_and_closing_early_cancels_the_query(
    server: FakeSqlServer, store: AzureSqlDatastore
) -> None:
    rows = ((i, f"name-{i}") for i in range(300_000))
    server.answers["FROM big"] = Rows(["k", "name"], rows, types=["bigint", "nvarchar"])
    batches = store.iter_batches("SELECT k, name FROM big", batch_size=1000)
    tracemalloc.start()
    try:
        first = next(batches)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(first) == 1000
    # Buffering 300,000 rows would take tens of MB of Python objects; a stream stays small.
    assert peak < 10 * 1024 * 1024
    batches.close()
    assert server.cancelled_results == 1
    assert store.read_sql("select 1").iloc[0, 0] == 1


def test_closed_port_fails_fast_as_unreachable(
    make_store: Callable[..., AzureSqlDatastore],
) -> None:
    planted = f"planted-{uuid.uuid4().hex}"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    store = make_store(closed_port, password=planted, encryption="require")
    with recording_driver_connects() as connects:
        error = _fails(store.check)
    # Refused, not timed out: the driver did not wait out its login timeout, and made one
    # connection attempt.
    assert len(connects) == 1
    assert error.reason == "unreachable"
    assert "check the host is reachable" in str(error)
    assert "datastore 'warehouse' (mssql://loader@127.0.0.1:" in str(error)
    assert planted not in _full_text(error)


@pytest.mark.parametrize("answers_prelogin", [False, True])
def test_silent_server_costs_one_login_timeout(
    make_store: Callable[..., AzureSqlDatastore], answers_prelogin: bool
) -> None:
    planted = f"planted-{uuid.uuid4().hex}"
    # A server that answers nothing at all, or the pre-login but never the login.
    silent = FakeSqlServer(login=SILENT) if answers_prelogin else SilentServer()
    try:
        store = make_store(silent.port, password=planted, connect_timeout_seconds=1)
        with recording_driver_connects() as connects:
            error = _fails(store.check)
    finally:
        silent.close()
    assert error.reason == "timed out connecting"
    assert "raise connect_timeout_seconds" in str(error)
    assert planted not in _full_text(error)
    # TDS 7.4 pinned: unpinned, FreeTDS logs in again with an older protocol version, and
    # the wait doubles.
    assert silent.connections == 1
    [params] = connects
    assert params["login_timeout"] == 1
    assert params["tds_version"] == "7.4"


def test_statement_timeout_is_per_store_though_freetds_keeps_one_per_process(
    make_store: Callable[..., AzureSqlDatastore],
) -> None:
    # Answered after 4 s: within the patient store's 8 s bound, past the quick store's 1 s.
    fake = FakeSqlServer(answers={"slow_report": Later(4, Rows(["n"], [(1,)]))})
    try:
        quick = make_store(fake.port, statement_timeout_seconds=1)
        quick.check()
        # Connecting another store sets FreeTDS's process-wide timeout to its own bound.
        make_store(fake.port, name="patient", statement_timeout_seconds=8).check()
        error = _fails(lambda: quick.read_sql("SELECT * FROM slow_report"))
        assert error.reason == "statement timed out"
        assert "raise statement_timeout_seconds" in str(error)
        # The timed-out connection is dead; the pool replaces it.
        assert quick.read_sql("select 1").iloc[0, 0] == 1
    finally:
        fake.close()


def test_wrong_password_is_an_authentication_failure_without_the_password(
    make_store: Callable[..., AzureSqlDatastore],
) -> None:
    planted = f"planted-{uuid.uuid4().hex}"
    fake = FakeSqlServer(login=ServerError(18456, 14, "Login failed for user 'loader'."))
    try:
        store = make_store(fake.port, password=planted)
        for _ in range(2):
            # The second time pymssql has lost the server's text (sticky per-process state).
            error = _fails(store.check)
            assert error.reason == "authentication failed"
            assert "check the user, the password environment variable" in str(error)
            assert planted not in _full_text(error)
    finally:
        fake.close()


def test_missing_database_surfaces_as_a_failed_login_naming_the_database(
    make_store: Callable[..., AzureSqlDatastore],
) -> None:
    refusal = [
        ServerError(4060, 11, 'Cannot open database "sales" requested by the login.'),
        ServerError(18456, 14, "Login failed for user 'loader'."),
    ]
    fake = FakeSqlServer(login=refusal)
    try:
        error = _fails(make_store(fake.port).check)
    finally:
        fake.close()
    assert error.reason == "authentication failed"
    assert "database 'sales' exists" in str(error)


def test_required_encryption_reaches_the_wire(
    make_store: Callable[..., AzureSqlDatastore],
) -> None:
    fake = FakeSqlServer()
    try:
        for level in ("off", "request", "require"):
            store = make_store(fake.port, encryption=level)
            if level == "require":
                error = _fails(store.check)
            else:
                store.check()
    finally:
        fake.close()
    # PRELOGIN ENCRYPTION byte: 2 not supported, 0 off (login only), 1 on.
    assert fake.client_encryption == [2, 0, 1]
    assert error.reason == "unreachable"
    assert "encryption='require'" in str(error)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            ServerError(229, 14, "The SELECT permission was denied on the object 'orders'."),
            "permission denied",
        ),
        (
            ServerError(262, 14, "CREATE TABLE permission denied in database 'sales'."),
            "permission denied",
        ),
        (
            [
                ServerError(
                    300, 14, "VIEW DATABASE STATE permission was denied on object 'sales'."
                ),
                ServerError(297, 16, "The user does not have permission to perform this action."),
            ],
            "permission denied",
        ),
        (ServerError(208, 16, "Invalid object name 'nosuch'."), "query failed"),
        (ServerError(102, 15, "Incorrect syntax near 'FORM'."), "query failed"),
    ],
)
def test_server_errors_from_the_driver_are_classified(
    server: FakeSqlServer,
    store: AzureSqlDatastore,
    error: ServerError | list[ServerError],
    reason: str,
) -> None:
    server.answers["FROM target"] = error
    failure = _fails(lambda: store.read_sql("SELECT * FROM target"))
    assert failure.reason == reason
    if isinstance(error, list):
        # pymssql keeps only the most severe message (297), yet the advice names the permission.
        assert "(297, b'The user does not have permission" in str(failure)
        assert "sys.dm_* views need VIEW DATABASE STATE" in str(failure)
    assert "datastore 'warehouse'" in str(failure)
    assert "while running a query" in str(failure)


def _login_error(number: int, text: str) -> pymssql.OperationalError:
    """As pymssql.connect raises it: OperationalError((number, message_bytes))."""
    return pymssql.OperationalError((number, text.encode()))


def _statement_error(number: int, text: str) -> pymssql.OperationalError:
    """As Cursor.execute raises it: OperationalError(number, message_bytes)."""
    return pymssql.OperationalError(number, text.encode())


_DBLIB_LOGIN = (
    "DB-Lib error message 20018, severity 14:\nGeneral SQL Server error: Check messages from the "
    "SQL Server\nDB-Lib error message 20002, severity 9:\nAdaptive Server connection failed "
    "(db.example.net)\n"
)


@pytest.mark.parametrize(
    ("orig", "statement", "reason"),
    [
        (
            _login_error(18456, "Login failed for user 'loader'." + _DBLIB_LOGIN),
            None,
            "authentication failed",
        ),
        (_login_error(18456, _DBLIB_LOGIN), None, "authentication failed"),
        (
            _login_error(
                4060, 'Cannot open database "sales" requested by the login. The login failed.'
            ),
            None,
            "database not found",
        ),
        (
            _login_error(
                20009,
                "DB-Lib error message 20009, severity 9:\nUnable to connect: Adaptive Server is "
                "unavailable or does not exist (db.example.net)\n",
            ),
            None,
            "unreachable",
        ),
        # A stale number from an earlier failure in the process: the text decides.
        (
            _login_error(
                18456,
                "DB-Lib error message 20009, severity 9:\nUnable to connect: TDS server is "
                "unavailable or does not exist (127.0.0.1)\nNet-Lib error during Connection "
                "refused (111)\n",
            ),
            None,
            "unreachable",
        ),
        (
            _login_error(
                701,
                "DB-Lib error message 20003, severity 6:\nAdaptive Server connection timed out "
                "(db.example.net)\nDB-Lib error message 20002, severity 9:\nAdaptive Server "
                "connection failed (db.example.net)\n",
            ),
            None,
            "timed out connecting",
        ),
        (
            _statement_error(
                20003,
                "DB-Lib error message 20003, severity 6:\nAdaptive Server connection timed out\n",
            ),
            "SELECT 1",
            "statement timed out",
        ),
        (
            _statement_error(
                229, "The SELECT permission was denied on the object 'orders'." + _DBLIB_LOGIN
            ),
            "SELECT 1",
            "permission denied",
        ),
        (
            _statement_error(
                300,
                "VIEW DATABASE STATE permission was denied on object 'sales', database 'sales'.",
            ),
            "SELECT 1",
            "permission denied",
        ),
        (
            _statement_error(
                262, "CREATE TABLE permission denied in database 'sales'." + _DBLIB_LOGIN
            ),
            "SELECT 1",
            "permission denied",
        ),
    ],
)
def test_pymssql_error_formats_are_classified(
    make_store: Callable[..., AzureSqlDatastore],
    orig: pymssql.OperationalError,
    statement: str | None,
    reason: str,
) -> None:
    planted = f"planted-{uuid.uuid4().hex}"
    store = make_store(1433, password=planted)

    def fail() -> None:
        with store._translating_errors("connecting"):
            raise sa_exc.OperationalError(statement, None, orig)

    error = _fails(fail)
    assert error.reason == reason
    assert str(error).startswith("datastore 'warehouse' (mssql://loader@127.0.0.1:1433/sales): ")
    assert planted not in _full_text(error)


def test_factory_builds_it_with_the_password_as_an_env_var(
    tmp_path: Path, server: FakeSqlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = f"AZURE_SQL_TEST_{uuid.uuid4().hex[:8].upper()}"
    entry = {
        "kind": "azure_sql",
        "host": "127.0.0.1",
        "port": server.port,
        "database": "sales",
        "user": "loader",
        "password": {"env": variable},
    }
    store = project_catalog_of({"datastores": {"warehouse": entry}}).resources["warehouse"]
    assert isinstance(store, AzureSqlDatastore)
    assert isinstance(store.password, dg.EnvVar)
    assert store.password.env_var_name == variable
    assert store.encryption == "require"
    unset = _fails(store.check)
    assert variable in str(unset)

    monkeypatch.setenv(variable, f"planted-{uuid.uuid4().hex}")
    # The same settings, but unencrypted: the scripted server does not speak TLS.
    fields = ("name", "host", "port", "database", "user", "password")
    local = AzureSqlDatastore(
        **{field: getattr(store, field) for field in fields}, encryption="off"
    )
    server.answers["SUSER_SNAME"] = Rows(["me"], [("loader",)])

    @dg.asset
    def who_am_i(sql: SqlDatastore) -> dg.MaterializeResult:
        frame = sql.read_sql("SELECT SUSER_SNAME() AS me")
        return dg.MaterializeResult(metadata={"me": str(frame["me"].iloc[0])})

    try:
        result = dg.materialize(
            [who_am_i], resources={"sql": local}, instance=dg.DagsterInstance.ephemeral()
        )
    finally:
        local.dispose()
    assert result.success
    assert result.asset_materializations_for_node("who_am_i")[0].metadata["me"].value == "loader"
