"""PostgresDatastore and MySqlDatastore against the real servers on this machine.

Every test works in its own uuid-named table (PostgreSQL: its own schema) and drops it after.
"""

from __future__ import annotations

import re
import time
import traceback
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from ingestion_project.datastores.base import DatastoreError
from ingestion_project.datastores.sql import (
    MySqlDatastore,
    PostgresDatastore,
    ServerSqlDatastore,
    SqlDatastore,
)
from ingestion_project_tests.datastores.timing import SilentServer, recording_driver_connects
from ingestion_project_tests.servers import require_tcp_server

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
MY_HOST, MY_PORT, MY_USER = "127.0.0.1", 3306, "root"
DATABASE = "test"
FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _admin_engine(kind: str) -> sa.Engine:
    """A plain engine for setup; NullPool so PostgreSQL flushes table statistics on disconnect."""
    if kind == "postgresql":
        require_tcp_server(PG_HOST, PG_PORT, "PostgreSQL")
        url = URL.create("postgresql+psycopg2", PG_USER, None, PG_HOST, PG_PORT, DATABASE)
    else:
        require_tcp_server(MY_HOST, MY_PORT, "MariaDB/MySQL")
        url = URL.create("mysql+pymysql", MY_USER, None, MY_HOST, MY_PORT, DATABASE)
    return sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def _make_store(kind: str, **overrides: Any) -> ServerSqlDatastore:
    if kind == "postgresql":
        defaults = {"name": "pg_test", "host": PG_HOST, "port": PG_PORT, "user": PG_USER}
        return PostgresDatastore(**{**defaults, "database": DATABASE, **overrides})
    defaults = {"name": "mysql_test", "host": MY_HOST, "port": MY_PORT, "user": MY_USER}
    return MySqlDatastore(**{**defaults, "database": DATABASE, **overrides})


@dataclass
class Workspace:
    """One test's private table on one server, with a setup engine and the store under test."""

    kind: str
    admin: sa.Engine
    store: ServerSqlDatastore
    schema: str | None
    table: str
    extra_stores: list[ServerSqlDatastore] = field(default_factory=list)

    @property
    def qualified(self) -> str:
        quote = self.admin.dialect.identifier_preparer.quote_identifier
        prefix = f"{quote(self.schema)}." if self.schema else ""
        return prefix + quote(self.table)

    def execute(self, statement: str, params: Any = None) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(statement), params or {})

    def table_exists(self) -> bool:
        return sa.inspect(self.admin).has_table(self.table, schema=self.schema)

    def make_store(self, **overrides: Any) -> ServerSqlDatastore:
        store = _make_store(self.kind, **overrides)
        self.extra_stores.append(store)
        return store

    def close(self) -> None:
        for store in [self.store, *self.extra_stores]:
            store.dispose()


@pytest.fixture(params=["postgresql", "mysql"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def workspace(kind: str) -> Iterator[Workspace]:
    admin = _admin_engine(kind)
    suffix = uuid.uuid4().hex[:12]
    schema = f"s_{suffix}" if kind == "postgresql" else None
    space = Workspace(kind, admin, _make_store(kind), schema, f"t_{suffix}")
    if schema:
        space.execute(f"CREATE SCHEMA {schema}")
    space.execute(
        f"CREATE TABLE {space.qualified} "
        "(id INTEGER PRIMARY KEY, name VARCHAR(50), amount NUMERIC(10, 2))"
    )
    space.execute(
        f"INSERT INTO {space.qualified} (id, name, amount) VALUES (:id, :name, :amount)",
        [{"id": i, "name": f"n{i}", "amount": i * 1.5} for i in range(1, 11)],
    )
    try:
        yield space
    finally:
        space.close()
        if schema:
            space.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        else:
            space.execute(f"DROP TABLE IF EXISTS {space.qualified}")
        admin.dispose()


def _fails(call: Callable[[], object]) -> DatastoreError:
    with pytest.raises(DatastoreError) as info:
        call()
    return info.value


def _full_text(error: BaseException) -> str:
    """Message plus the whole printed traceback, including chained causes."""
    return str(error) + "".join(traceback.format_exception(error))


def _million_rows_query() -> str:
    """A portable 1,000,000-row query (cross join of digit tables), no table needed."""
    digits = "(" + " UNION ALL ".join(f"SELECT {d} AS n" for d in range(10)) + ")"
    joins = " CROSS JOIN ".join(f"{digits} d{i}" for i in range(6))
    value = " + ".join(f"d{i}.n * {10**i}" for i in range(6))
    return f"SELECT {value} AS k FROM {joins}"


def test_check_and_describe_hide_the_password(workspace: Workspace) -> None:
    workspace.store.check()
    described = workspace.store.describe()
    port = PG_PORT if workspace.kind == "postgresql" else MY_PORT
    assert described == f"{workspace.kind}://{workspace.store.user}@127.0.0.1:{port}/{DATABASE}"
    with_password = workspace.make_store(password="planted-describe-secret")
    assert "planted-describe-secret" not in with_password.describe()
    assert isinstance(workspace.store, SqlDatastore)


def test_read_sql_binds_parameters(workspace: Workspace) -> None:
    frame = workspace.store.read_sql(
        f"SELECT id, name, amount FROM {workspace.qualified} "
        "WHERE id > :low AND name LIKE 'n%' ORDER BY id",
        {"low": 7},
    )
    assert list(frame.columns) == ["id", "name", "amount"]
    assert frame["id"].tolist() == [8, 9, 10]
    assert frame["amount"].tolist() == [12.0, 13.5, 15.0]

    hostile = workspace.store.read_sql(
        f"SELECT id FROM {workspace.qualified} WHERE name = :name", {"name": "x' OR '1'='1"}
    )
    assert hostile.empty
    assert list(hostile.columns) == ["id"]


def test_read_sql_error_names_the_store(workspace: Workspace) -> None:
    error = _fails(lambda: workspace.store.read_sql("SELECT * FROM no_such_table_here"))
    assert f"datastore '{workspace.store.name}'" in str(error)
    assert "query failed" in str(error)


def test_iter_batches_yields_batches_of_the_requested_size(workspace: Workspace) -> None:
    batches = list(
        workspace.store.iter_batches(
            f"SELECT id, name FROM {workspace.qualified} WHERE id >= :low ORDER BY id",
            {"low": 1},
            batch_size=3,
        )
    )
    assert [len(batch) for batch in batches] == [3, 3, 3, 1]
    assert [row for batch in batches for row in batch["id"].tolist()] == list(range(1, 11))
    assert all(list(batch.columns) == ["id", "name"] for batch in batches)

    empty = workspace.store.iter_batches(f"SELECT id FROM {workspace.qualified} WHERE id < 0")
    assert list(empty) == []
    _fails(lambda: next(workspace.store.iter_batches("SELECT 1", batch_size=0)))


def test_iter_batches_streams_without_loading_all_rows(workspace: Workspace) -> None:
    store = workspace.make_store(name=f"stream_{workspace.table}")
    batches = store.iter_batches(_million_rows_query(), batch_size=1000)
    tracemalloc.start()
    try:
        first = next(batches)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(first) == 1000
    if workspace.kind == "postgresql":
        # libpq buffers outside Python's heap, so ask the server: a named cursor is fetching.
        with workspace.admin.connect() as conn:
            last_query = conn.execute(
                sa.text("SELECT query FROM pg_stat_activity WHERE application_name = :app"),
                {"app": f"ingestion_project:{store.name}"},
            ).scalar_one()
        assert last_query.startswith("FETCH FORWARD")
    else:
        # PyMySQL buffering a million rows costs ~95 MB of Python objects; a stream, under 1 MB.
        assert peak < 20 * 1024 * 1024
    batches.close()
    assert store.read_sql("SELECT 1 AS one")["one"].tolist() == [1]


def test_missing_bind_parameter_is_a_clear_error(workspace: Workspace) -> None:
    error = _fails(lambda: workspace.store.read_sql("SELECT :value AS v"))
    assert "query failed" in str(error)
    assert "value" in str(error)


def test_list_tables_finds_the_test_table(workspace: Workspace) -> None:
    if workspace.kind == "postgresql":
        assert workspace.store.list_tables(workspace.schema) == [workspace.table]
    else:
        assert workspace.table in workspace.store.list_tables()
        assert workspace.table in workspace.store.list_tables(DATABASE)
    error = _fails(lambda: workspace.store.list_tables("no_such_schema_" + workspace.table))
    assert "does not exist" in str(error)
    assert f"datastore '{workspace.store.name}'" in str(error)


def _assert_fingerprint_tracks_writes(
    space: Workspace, store: ServerSqlDatastore, wait_before_write: float, deadline: float
) -> None:
    """Stable while unchanged; different after an insert, an update and a delete."""
    before = store.table_fingerprint(space.table, space.schema)
    assert FINGERPRINT.fullmatch(before)
    assert store.table_fingerprint(space.table, space.schema) == before
    writes = [
        f"INSERT INTO {space.qualified} (id, name, amount) VALUES (100, 'new', 1)",
        f"UPDATE {space.qualified} SET amount = amount + 1 WHERE id = 3",
        f"DELETE FROM {space.qualified} WHERE id = 4",
    ]
    seen = {before}
    for write in writes:
        time.sleep(wait_before_write)
        space.execute(write)
        give_up = time.monotonic() + deadline
        after = store.table_fingerprint(space.table, space.schema)
        while after in seen and time.monotonic() < give_up:
            time.sleep(0.2)
            after = store.table_fingerprint(space.table, space.schema)
        assert after not in seen, f"fingerprint did not change after: {write}"
        seen.add(after)
        assert store.table_fingerprint(space.table, space.schema) == after


def test_table_fingerprint_from_content_changes_on_every_write(workspace: Workspace) -> None:
    _assert_fingerprint_tracks_writes(workspace, workspace.store, 0.0, 0.0)


def test_table_fingerprint_from_statistics_changes_on_every_write(workspace: Workspace) -> None:
    store = workspace.make_store(exact_fingerprint_max_bytes=0)
    if workspace.kind == "postgresql":
        # Setup connections have closed, so their statistics are flushed; let them land.
        time.sleep(0.3)
        _assert_fingerprint_tracks_writes(workspace, store, 0.0, 15.0)
    else:
        # information_schema UPDATE_TIME has one-second resolution. The give-up deadline is
        # generous: a loaded machine must not turn a slow poll into a failure.
        _assert_fingerprint_tracks_writes(workspace, store, 1.1, 15.0)


def test_table_fingerprint_sums_postgres_partitions() -> None:
    admin = _admin_engine("postgresql")
    schema = f"s_{uuid.uuid4().hex[:12]}"
    statements = [
        f"CREATE SCHEMA {schema}",
        f"CREATE TABLE {schema}.events (id INTEGER, day DATE) PARTITION BY RANGE (day)",
        f"CREATE TABLE {schema}.events_a PARTITION OF {schema}.events "
        "FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')",
        f"CREATE TABLE {schema}.events_b PARTITION OF {schema}.events "
        "FOR VALUES FROM ('2024-02-01') TO ('2024-03-01')",
        f"INSERT INTO {schema}.events VALUES (1, '2024-01-05')",
    ]
    content = _make_store("postgresql")
    statistics = _make_store("postgresql", exact_fingerprint_max_bytes=0)
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
        time.sleep(0.3)
        before = [store.table_fingerprint("events", schema) for store in (content, statistics)]
        with admin.connect() as conn:
            conn.execute(sa.text(f"INSERT INTO {schema}.events VALUES (2, '2024-02-07')"))
        assert content.table_fingerprint("events", schema) != before[0]
        give_up = time.monotonic() + 15
        while statistics.table_fingerprint("events", schema) == before[1]:
            assert time.monotonic() < give_up, "statistics fingerprint missed a partition write"
            time.sleep(0.2)
    finally:
        content.dispose()
        statistics.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def test_table_fingerprint_of_a_missing_table(workspace: Workspace) -> None:
    error = _fails(lambda: workspace.store.table_fingerprint("absent_" + workspace.table))
    assert "not found" in str(error)
    assert f"datastore '{workspace.store.name}'" in str(error)


@pytest.mark.parametrize(
    "bad_name",
    [
        "t; drop table x",
        't" or 1=1 --',
        "t`; drop table x; --",
        "t' or '1'='1",
        "schema.table",
        "",
        "a" * 64,
        "tëst",
    ],
)
def test_names_that_are_not_plain_identifiers_are_refused(
    workspace: Workspace, bad_name: str
) -> None:
    store = workspace.store
    attempts: list[Callable[[], object]] = [
        lambda: store.table_fingerprint(bad_name),
        lambda: store.table_fingerprint(workspace.table, bad_name),
        lambda: store.list_tables(bad_name),
        lambda: store.query_fingerprint("SELECT 1", tables=[bad_name]),
    ]
    for attempt in attempts:
        error = _fails(attempt)
        assert f"datastore '{store.name}'" in str(error)
    assert workspace.table_exists()


def test_injection_aimed_at_the_real_table_leaves_it_intact(workspace: Workspace) -> None:
    table = workspace.table
    for name in (f"{table}; DROP TABLE {table}", f'{table}" ; DROP TABLE "{table}', f"{table}`"):
        _fails(lambda name=name: workspace.store.table_fingerprint(name, workspace.schema))
    assert workspace.table_exists()
    assert len(workspace.store.read_sql(f"SELECT id FROM {workspace.qualified}")) == 10


def test_query_fingerprint_follows_text_params_and_tables(workspace: Workspace) -> None:
    store = workspace.store
    entry = f"{workspace.schema}.{workspace.table}" if workspace.schema else workspace.table
    query = f"SELECT id FROM {workspace.qualified} WHERE id > :low"

    base = store.query_fingerprint(query, {"low": 1}, [entry])
    assert FINGERPRINT.fullmatch(base)
    reformatted = "  " + query.replace(" WHERE", "\n   WHERE") + " ;"
    assert store.query_fingerprint(reformatted, {"low": 1}, [entry]) == base
    assert store.query_fingerprint(query, {"low": 2}, [entry]) != base
    assert store.query_fingerprint(query + " AND id < 5", {"low": 1}, [entry]) != base

    workspace.execute(f"UPDATE {workspace.qualified} SET name = 'changed' WHERE id = 1")
    assert store.query_fingerprint(query, {"low": 1}, [entry]) != base

    assert "needs the tables" in str(_fails(lambda: store.query_fingerprint(query, {"low": 1})))
    _fails(lambda: store.query_fingerprint(query, {"low": 1}, entry))


def test_unknown_database_is_named(kind: str) -> None:
    _admin_engine(kind).dispose()
    store = _make_store(kind, database="no_such_db_" + uuid.uuid4().hex[:8])
    error = _fails(store.check)
    assert "database not found" in str(error)
    assert store.database in str(error)
    assert f"datastore '{store.name}'" in str(error)


def test_unreachable_port_fails_fast(kind: str) -> None:
    store = _make_store(kind, port=1, connect_timeout_seconds=3)
    with recording_driver_connects() as connects:
        error = _fails(store.check)
    # Refused, not timed out: the driver did not wait out its connect timeout, and one
    # connection attempt was made.
    assert error.reason == "unreachable"
    assert "check the host is reachable" in str(error)
    assert len(connects) == 1


def test_a_silent_server_costs_one_connect_timeout(kind: str) -> None:
    with SilentServer() as silent:
        store = _make_store(kind, port=silent.port, connect_timeout_seconds=1)
        with recording_driver_connects() as connects:
            error = _fails(store.check)
    assert error.reason == "timed out connecting"
    assert "raise connect_timeout_seconds" in str(error)
    # One connection, not one per address family, TLS mode or retry; given the store's bound.
    assert silent.connections == 1
    [params] = connects
    assert params["connect_timeout"] == 1
    if kind == "mysql":
        assert params["read_timeout"] == 1  # PyMySQL reads the server's greeting with it


@pytest.mark.parametrize(
    ("statement", "reason", "advice"),
    [
        pytest.param(None, "timed out connecting", "connect_timeout_seconds", id="handshake"),
        pytest.param("SELECT 1", "statement timed out", "statement_timeout_seconds", id="query"),
    ],
)
def test_a_mysql_read_timeout_names_the_setting_that_bounds_it(
    statement: str | None, reason: str, advice: str
) -> None:
    """PyMySQL words both alike; the handshake is bound by one setting, a query by the other."""
    store = _make_store("mysql")
    orig = pymysql.err.OperationalError(
        2013, "Lost connection to MySQL server during query (timed out)"
    )

    def fail() -> None:
        with store._translating_errors("running a query"):
            raise sa_exc.OperationalError(statement, None, orig)

    error = _fails(fail)
    assert error.reason == reason
    assert f"raise {advice}" in str(error)


def test_statement_timeout_stops_long_queries(workspace: Workspace) -> None:
    store = workspace.make_store(statement_timeout_seconds=1)
    if workspace.kind == "postgresql":
        sleep, setting = "SELECT pg_sleep(5)", "SELECT current_setting('statement_timeout')"
        assert store.read_sql(setting).iloc[0, 0] == "1s"
    else:
        sleep, setting = "SELECT SLEEP(5)", "SELECT @@max_statement_time"
        assert float(store.read_sql(setting).iloc[0, 0]) == 1
    # The server cancels the statement and says so; a statement left to finish would not fail.
    error = _fails(lambda: store.read_sql(sleep))
    assert error.reason == "statement timed out"
    assert "statement timed out" in str(error)
    # A query slower than the connect timeout is fine: only the handshake is bound by it.
    quick = "SELECT pg_sleep(2.5)" if workspace.kind == "postgresql" else "SELECT SLEEP(2.5)"
    assert len(workspace.make_store(connect_timeout_seconds=2).read_sql(quick)) == 1


def test_postgres_unknown_role_is_an_authentication_failure() -> None:
    _admin_engine("postgresql").dispose()
    planted = f"planted-{uuid.uuid4().hex}"
    store = _make_store("postgresql", user="no_role_" + uuid.uuid4().hex[:8], password=planted)
    error = _fails(store.check)
    assert "authentication failed" in str(error)
    assert "check the user and the password environment variable" in str(error)
    assert planted not in _full_text(error)


@pytest.fixture
def mysql_user() -> Iterator[tuple[str, str]]:
    """A MariaDB user with a known password, since PostgreSQL here trusts every local login."""
    admin = _admin_engine("mysql")
    user, password = f"u_{uuid.uuid4().hex[:12]}", f"right-{uuid.uuid4().hex}"
    with admin.connect() as conn:
        conn.execute(
            sa.text("CREATE USER :user@'127.0.0.1' IDENTIFIED BY :password"),
            {"user": user, "password": password},
        )
        conn.execute(sa.text(f"GRANT SELECT ON {DATABASE}.* TO :user@'127.0.0.1'"), {"user": user})
    try:
        yield user, password
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text("DROP USER IF EXISTS :user@'127.0.0.1'"), {"user": user})
        admin.dispose()


def test_mysql_wrong_password_names_the_cause_but_never_the_password(
    mysql_user: tuple[str, str],
) -> None:
    user, _ = mysql_user
    wrong = f"wrong-{uuid.uuid4().hex}"
    store = _make_store("mysql", user=user, password=wrong)
    error = _fails(store.check)
    assert "authentication failed" in str(error)
    assert "check the user and the password environment variable" in str(error)
    assert f"datastore '{store.name}'" in str(error)
    assert wrong not in _full_text(error)


def test_password_from_env_var_outside_and_inside_a_run(
    mysql_user: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    user, password = mysql_user
    variable = f"SQL_TEST_PASSWORD_{uuid.uuid4().hex[:8].upper()}"
    store = MySqlDatastore(
        name="mysql_env",
        host=MY_HOST,
        port=MY_PORT,
        database=DATABASE,
        user=user,
        password=dg.EnvVar(variable),
    )
    unset = _fails(store.check)
    assert variable in str(unset)

    monkeypatch.setenv(variable, password)
    store.check()
    store.dispose()

    @dg.asset
    def who_am_i(sql: SqlDatastore) -> dg.MaterializeResult:
        frame = sql.read_sql("SELECT CURRENT_USER() AS me")
        return dg.MaterializeResult(metadata={"me": str(frame["me"].iloc[0])})

    result = dg.materialize(
        [who_am_i], resources={"sql": store}, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    materialization = result.asset_materializations_for_node("who_am_i")[0]
    assert materialization.metadata["me"].value == f"{user}@127.0.0.1"


def test_postgres_statistics_mode_refuses_when_track_counts_is_off() -> None:
    """Without counters a large table's fingerprint could never change, so it must say so."""
    admin = _admin_engine("postgresql")
    suffix = uuid.uuid4().hex[:12]
    schema, role = f"s_{suffix}", f"r_{suffix}"
    statements = [
        f"CREATE SCHEMA {schema}",
        f"CREATE TABLE {schema}.items (id INTEGER)",
        f"INSERT INTO {schema}.items VALUES (1)",
        f"CREATE ROLE {role} LOGIN",
        f"ALTER ROLE {role} SET track_counts = off",
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT ON {schema}.items TO {role}",
    ]
    store = _make_store("postgresql", user=role, exact_fingerprint_max_bytes=0)
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
        error = _fails(lambda: store.table_fingerprint("items", schema))
        assert "track_counts" in str(error)
        assert f"datastore '{store.name}'" in str(error)
    finally:
        store.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()
