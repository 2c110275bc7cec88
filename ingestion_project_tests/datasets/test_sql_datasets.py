"""SQL query datasets snapshotted into Parquet, against the real PostgreSQL and MariaDB.

Every test works in its own uuid-named table and drops it after.
"""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from pandas.testing import assert_frame_equal
from pydantic import PrivateAttr
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.profile import frame_profile, frame_schema
from ingestion_project.datasets.sql_datasets import (
    DISTINCT_EXACT_LIMIT,
    NO_ORDER_BY_WARNING,
    UNPARSED_ORDER_BY_WARNING,
    _StreamingProfile,
    has_top_level_order_by,
    register_sql_dataset,
)
from ingestion_project.datasets.versions import (
    DatasetError,
    DatasetRegistry,
    Registration,
    dataset_registry,
    load_version,
)
from ingestion_project.datastores.base import DatastoreError
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.datastores.sql import MySqlDatastore, PostgresDatastore, ServerSqlDatastore
from ingestion_project.records import DatasetLineage, ManifestEntry, ProfileRow
from ingestion_project_tests.servers import require_tcp_server

HOST, DATABASE = "127.0.0.1", "test"
SOURCE = "warehouse"
SNAPSHOTS = "workspace_default"
PREFIX = "_registry"
NAME = "orders"


@dataclass
class SqlTable:
    """One test's private table on one server: a setup engine and the datastore under test."""

    kind: str
    admin: sa.Engine
    store: ServerSqlDatastore
    table: str

    def execute(self, statement: str, params: Any = None) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(statement), params or {})

    def insert(self, rows: list[dict[str, Any]]) -> None:
        self.execute(
            f"INSERT INTO {self.table} (id, name, amount, qty) VALUES (:id, :name, :amount, :qty)",
            rows,
        )

    def exists(self) -> bool:
        return sa.inspect(self.admin).has_table(self.table)


def sql_source(kind: str) -> tuple[sa.Engine, ServerSqlDatastore]:
    """An autocommit engine for setup (NullPool so PostgreSQL flushes statistics) and the store."""
    if kind == "postgresql":
        require_tcp_server(HOST, 5432, "PostgreSQL")
        url = URL.create("postgresql+psycopg2", "postgres", None, HOST, 5432, DATABASE)
        store: ServerSqlDatastore = PostgresDatastore(
            name=SOURCE, host=HOST, user="postgres", database=DATABASE
        )
    else:
        require_tcp_server(HOST, 3306, "MariaDB/MySQL")
        url = URL.create("mysql+pymysql", "root", None, HOST, 3306, DATABASE)
        store = MySqlDatastore(name=SOURCE, host=HOST, user="root", database=DATABASE)
    return sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT"), store


@contextmanager
def sql_table(kind: str, rows: list[dict[str, Any]]) -> Iterator[SqlTable]:
    """A fresh table (id, name, amount, qty) holding ``rows``, dropped afterwards."""
    admin, store = sql_source(kind)
    space = SqlTable(kind, admin, store, f"t_{uuid.uuid4().hex[:12]}")
    space.execute(
        f"CREATE TABLE {space.table} (id INTEGER PRIMARY KEY, name VARCHAR(50), "
        "amount NUMERIC(10, 2), qty INTEGER)"
    )
    try:
        if rows:
            space.insert(rows)
        yield space
    finally:
        store.dispose()
        space.execute(f"DROP TABLE IF EXISTS {space.table}")
        admin.dispose()


ROWS = [
    {"id": 1, "name": "anna", "amount": 1.5, "qty": None},
    {"id": 2, "name": None, "amount": 2.25, "qty": 3},
    {"id": 3, "name": "bert", "amount": None, "qty": 7},
    {"id": 4, "name": "cleo", "amount": 4.0, "qty": 1},
    {"id": 5, "name": "anna", "amount": 10.75, "qty": 3},
]


@pytest.fixture(params=["postgresql", "mysql"])
def source(request: pytest.FixtureRequest) -> Iterator[SqlTable]:
    with sql_table(request.param, ROWS) as space:
        yield space


@pytest.fixture
def snapshots(tmp_path: Path) -> LocalDatastore:
    return LocalDatastore(name=SNAPSHOTS, root=str(tmp_path / "store"))


@pytest.fixture
def registry(snapshots: LocalDatastore) -> DatasetRegistry:
    return dataset_registry(snapshots, PREFIX)


def query_spec(query: str, **options: Any) -> DatasetSpec:
    return DatasetSpec(datastore=SOURCE, query=query, **options)


def ordered(source: SqlTable) -> DatasetSpec:
    return query_spec(
        f"SELECT id, name, amount, qty FROM {source.table} ORDER BY id", tables=[source.table]
    )


def register(
    source: SqlTable,
    spec: DatasetSpec,
    snapshots: LocalDatastore,
    registry: DatasetRegistry,
    **options: Any,
) -> Registration:
    return register_sql_dataset(
        NAME,
        spec,
        source.store,
        registry,
        snapshots,
        SNAPSHOTS,
        PREFIX,
        run_id="run-1",
        code_version="code-v1",
        **options,
    )


def snapshot_files(snapshots: LocalDatastore) -> list[str]:
    return [info.path for info in snapshots.list_files(f"{PREFIX}/snapshots/{NAME}/**")]


def test_versions_are_snapshots_that_survive_changes_to_the_table(
    source: SqlTable, snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    first = register(source, ordered(source), snapshots, registry, batch_size=2, part_rows=3)

    record = first.record
    assert first.created and first.frame is None
    assert record.version == 1
    assert record.mode == "snapshot"
    assert record.format == "parquet"
    assert record.datastore == SOURCE
    assert record.manifest_store == SNAPSHOTS
    assert (record.query or "").endswith("ORDER BY id")
    assert record.row_count == 5
    assert record.warnings == []
    assert record.lineage == DatasetLineage(run_id="run-1", code_version="code-v1", upstream=[])
    assert record.tables == {source.table: source.store.table_fingerprint(source.table)}
    paths = [item.path for item in record.manifest]
    token = paths[0].split("/")[-2]
    assert paths == [
        f"{PREFIX}/snapshots/{NAME}/{token}/part-00000.parquet",
        f"{PREFIX}/snapshots/{NAME}/{token}/part-00001.parquet",
    ]
    assert record.files() == [snapshots.stat(path) for path in paths]

    v1 = load_version(record, {SNAPSHOTS: snapshots})
    expected = source.store.read_sql(ordered(source).query or "")
    assert_frame_equal(v1, expected)
    # The streamed profile and schema are what profile.py says of the loaded frame.
    assert record.table_schema == frame_schema(v1)
    assert record.profile == frame_profile(v1)

    again = register(source, ordered(source), snapshots, registry, batch_size=2, part_rows=3)
    assert not again.created
    assert again.record == record
    assert snapshot_files(snapshots) == paths
    assert registry.version_numbers(NAME) == [1]

    source.insert([{"id": 6, "name": "dora", "amount": 6.5, "qty": 2}])
    second = register(source, ordered(source), snapshots, registry, batch_size=2, part_rows=3)
    assert second.created
    assert second.record.version == 2
    assert second.record.row_count == 6
    assert second.record.fingerprint != record.fingerprint
    assert second.record.tables != record.tables

    source.execute(f"DELETE FROM {source.table} WHERE id = 1")
    assert_frame_equal(load_version(registry.get(NAME, 1), {SNAPSHOTS: snapshots}), v1)
    v2 = load_version(registry.get(NAME, 2), {SNAPSHOTS: snapshots})
    assert v2["id"].tolist() == [1, 2, 3, 4, 5, 6]
    assert v2.iloc[-1]["name"] == "dora"


def test_fingerprint_does_not_depend_on_how_parts_are_cut(
    source: SqlTable, snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    first = register(source, ordered(source), snapshots, registry, batch_size=2, part_rows=1)
    assert len(first.record.manifest) == 5
    again = register(source, ordered(source), snapshots, registry, batch_size=2, part_rows=100)
    assert not again.created
    assert len(snapshot_files(snapshots)) == 5


def test_unchanged_rows_are_snapshot_again_when_the_latest_parts_were_damaged(
    source: SqlTable, snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    first = register(source, ordered(source), snapshots, registry)
    snapshots.delete(first.record.manifest[0].path)

    again = register(source, ordered(source), snapshots, registry)

    assert again.created
    assert again.record.version == 2
    assert again.record.fingerprint == first.record.fingerprint
    loaded = load_version(again.record, {SNAPSHOTS: snapshots})
    assert loaded["id"].tolist() == [1, 2, 3, 4, 5]


def test_params_are_bound_values_not_sql(
    source: SqlTable, snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    attack = "x' OR '1'='1'; DROP TABLE " + source.table + "; --"
    source.insert([{"id": 9, "name": attack[:50], "amount": 1, "qty": 1}])
    spec = query_spec(
        f"SELECT id, name FROM {source.table} WHERE name = :name ORDER BY id",
        params={"name": attack[:50]},
    )

    outcome = register(source, spec, snapshots, registry)

    assert outcome.record.params == {"name": attack[:50]}
    frame = load_version(outcome.record, {SNAPSHOTS: snapshots})
    assert frame.to_dict("records") == [{"id": 9, "name": attack[:50]}]
    assert source.exists()


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("SELEC id FROM {table} ORDER BY id", ["query failed"]),
        ("SELECT id FROM {table}_missing ORDER BY id", ["query failed", "_missing"]),
    ],
    ids=["syntax_error", "missing_table"],
)
def test_a_failing_query_names_the_dataset_and_registers_nothing(
    source: SqlTable,
    snapshots: LocalDatastore,
    registry: DatasetRegistry,
    query: str,
    words: list[str],
) -> None:
    with pytest.raises(DatasetError) as caught:
        register(source, query_spec(query.format(table=source.table)), snapshots, registry)

    message = str(caught.value)
    assert message.startswith(f"dataset '{NAME}': its query failed: datastore '{SOURCE}'")
    assert "Nothing was registered" in message
    assert all(word in message for word in words)
    assert isinstance(caught.value.__cause__, DatastoreError)
    assert registry.version_numbers(NAME) == []
    assert snapshot_files(snapshots) == []


def test_an_empty_result_is_an_error_not_an_empty_version(
    source: SqlTable, snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    spec = query_spec(f"SELECT id FROM {source.table} WHERE id < 0 ORDER BY id")
    with pytest.raises(DatasetError, match=f"dataset '{NAME}': the query returned no rows"):
        register(source, spec, snapshots, registry)
    assert registry.version_numbers(NAME) == []


def test_a_missing_table_in_tables_names_the_entry(
    source: SqlTable, snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    spec = query_spec(f"SELECT id FROM {source.table} ORDER BY id", tables=["nope_missing"])
    with pytest.raises(DatasetError, match="could not fingerprint table 'nope_missing'"):
        register(source, spec, snapshots, registry)


class RecordingStore(LocalDatastore):
    """A real local store that remembers what it wrote and can become unreachable after N writes."""

    fail_after: int | None = None
    _written: list[str] = PrivateAttr(default_factory=list)

    @property
    def written(self) -> list[str]:
        return self._written

    def write_bytes(self, path: str, data: bytes, *, overwrite: bool = True) -> None:
        if self.fail_after is not None and len(self._written) >= self.fail_after:
            raise DatastoreError(f"datastore '{self.name}': unreachable", reason="unreachable")
        super().write_bytes(path, data, overwrite=overwrite)
        self._written.append(path)


def test_store_failing_midway_leaves_no_version_and_no_parts(
    source: SqlTable, tmp_path: Path, registry: DatasetRegistry
) -> None:
    failing = RecordingStore(name=SNAPSHOTS, root=str(tmp_path / "store"), fail_after=1)

    with pytest.raises(DatasetError) as caught:
        register(source, ordered(source), failing, registry, batch_size=1, part_rows=2)

    message = str(caught.value)
    assert f"dataset '{NAME}': could not write snapshot part" in message
    assert f"in datastore '{SNAPSHOTS}'" in message and "unreachable" in message
    assert len(failing.written) == 1
    assert registry.version_numbers(NAME) == []
    assert snapshot_files(failing) == []


def test_query_failing_midway_leaves_no_version_and_no_parts(
    tmp_path: Path, registry: DatasetRegistry
) -> None:
    """PostgreSQL raises division by zero only when its cursor reaches row 30, after two parts."""
    recording = RecordingStore(name=SNAPSHOTS, root=str(tmp_path / "store"))
    with sql_table("postgresql", []) as source:
        spec = query_spec("SELECT g AS id, 1 / (30 - g) AS inverse FROM generate_series(1, 40) g")
        with pytest.raises(DatasetError, match="division by zero") as caught:
            register(source, spec, recording, registry, batch_size=10, part_rows=10)
    assert f"dataset '{NAME}': its query failed" in str(caught.value)
    assert len(recording.written) == 2
    assert registry.version_numbers(NAME) == []
    assert snapshot_files(recording) == []


def test_column_types_and_timestamp_column_apply_on_load_and_in_the_record(
    snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    with sql_table("postgresql", ROWS) as source:
        query = (
            f"SELECT id, name, now() - id * interval '1 day' AS seen_at FROM {source.table} "
            "ORDER BY id"
        )
        typed = query_spec(query, column_types={"name": "category"}, timestamp_column="seen_at")
        outcome = register(source, typed, snapshots, registry)
        wrong = query_spec(query, column_types={"nmae": "string"})
        with pytest.raises(DatasetError, match="name columns the query does not return: nmae"):
            register(source, wrong, snapshots, registry)

    frame = load_version(outcome.record, {SNAPSHOTS: snapshots})
    assert str(frame["name"].dtype) == "category"
    assert str(frame["seen_at"].dtype) == "datetime64[ns]"
    assert outcome.record.load_options.timestamp_column == "seen_at"
    assert outcome.record.table_schema == frame_schema(frame)
    assert outcome.record.profile == frame_profile(frame)
    assert registry.version_numbers(NAME) == [1]


def test_a_query_without_order_by_is_registered_with_a_warning(
    source: SqlTable, snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    outcome = register(source, query_spec(f"SELECT id FROM {source.table}"), snapshots, registry)
    assert outcome.record.warnings == [NO_ORDER_BY_WARNING]


@pytest.mark.parametrize(
    ("query", "dialect", "expected"),
    [
        pytest.param("SELECT * FROM t ORDER BY id", None, True, id="top_level"),
        pytest.param("select *\nfrom t\norder\n  by id desc;", None, True, id="lower_case"),
        pytest.param("(SELECT * FROM t ORDER BY id)", "postgres", True, id="parenthesized"),
        pytest.param(
            "SELECT id, (SELECT max(x) FROM u) FROM t ORDER BY 1", None, True, id="scalar_subquery"
        ),
        pytest.param("SELECT TOP 5 id FROM t ORDER BY id", "tsql", True, id="tsql_top"),
        pytest.param("SELECT `id` FROM t ORDER BY `id`", "mysql", True, id="mysql_backticks"),
        pytest.param(
            "SELECT * FROM (SELECT * FROM t ORDER BY id) AS s", None, False, id="subquery_only"
        ),
        pytest.param(
            "WITH c AS (SELECT * FROM t ORDER BY id) SELECT * FROM c", "postgres", False, id="cte"
        ),
        pytest.param(
            "WITH c AS (SELECT * FROM t) SELECT * FROM c ORDER BY id",
            "postgres",
            True,
            id="cte_top",
        ),
        pytest.param("SELECT row_number() OVER (ORDER BY id) FROM t", None, False, id="window"),
        pytest.param(
            "SELECT string_agg(name, ',' ORDER BY id) FROM t", "postgres", False, id="aggregate"
        ),
        pytest.param("SELECT 'order by' AS label FROM t", None, False, id="literal"),
        pytest.param("SELECT $$order by$$ AS label FROM t", "postgres", False, id="dollar_quoted"),
        pytest.param('SELECT "order by" FROM t', None, False, id="quoted_identifier"),
        pytest.param("SELECT [order by] FROM t", "tsql", False, id="bracket_identifier"),
        pytest.param("SELECT * FROM t -- ORDER BY id", None, False, id="line_comment"),
        pytest.param("SELECT * FROM t /* order by id */", None, False, id="block_comment"),
        pytest.param("SELECT * FROM t # ORDER BY id", "mysql", False, id="mysql_hash_comment"),
        pytest.param("SELECT * FROM t WHERE sorder_by = 1", None, False, id="word_part"),
        pytest.param(
            "SELECT a FROM t UNION ALL SELECT a FROM u ORDER BY a", None, True, id="union_final"
        ),
        pytest.param(
            "(SELECT a FROM t) UNION (SELECT a FROM u) ORDER BY 1", "mysql", True, id="union_parens"
        ),
        pytest.param(
            "SELECT a FROM t UNION (SELECT a FROM u ORDER BY a)", None, False, id="union_branch"
        ),
        pytest.param("SELECT a FROM t UNION SELECT a FROM u", "tsql", False, id="union_unsorted"),
        pytest.param("SELEC id FROM t ORDER BY id", None, None, id="syntax_error"),
        pytest.param("SELECT 'oops FROM t ORDER BY id", None, None, id="unterminated_literal"),
        pytest.param("SELECT id FROM t ORDER BY id USING <", "postgres", None, id="unsupported"),
        pytest.param("SELECT `id` FROM t ORDER BY `id`", None, None, id="needs_its_dialect"),
        pytest.param("SELECT 1; SELECT id FROM t ORDER BY id", None, None, id="two_statements"),
        pytest.param("  ;  ", None, None, id="empty"),
    ],
)
def test_order_by_is_found_only_at_the_top_level(
    query: str, dialect: str | None, expected: bool | None
) -> None:
    assert has_top_level_order_by(query, dialect) is expected


# Dollar quotes are PostgreSQL's and backticks MySQL's: a generic parse fails on both.
DIALECT_QUERIES = {
    "postgresql": "SELECT id, $$ order by $$ AS label FROM {table} ORDER BY id",
    "mysql": "SELECT `id` FROM `{table}` ORDER BY `id`",
}


def test_each_server_parses_the_query_in_its_own_dialect(
    source: SqlTable, snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    query = DIALECT_QUERIES[source.kind].format(table=source.table)
    assert has_top_level_order_by(query) is None

    outcome = register(source, query_spec(query), snapshots, registry)

    assert outcome.record.warnings == []


def test_a_query_the_parser_does_not_know_is_registered_with_a_warning(
    snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    with sql_table("postgresql", ROWS) as source:
        query = f"SELECT id FROM {source.table} ORDER BY id USING <"
        outcome = register(source, query_spec(query), snapshots, registry)

    assert outcome.record.warnings == [UNPARSED_ORDER_BY_WARNING]
    assert outcome.record.row_count == len(ROWS)


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_a_column_that_starts_all_null_widens_every_part(
    kind: str, snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    """The first batch alone cannot type 'name' and 'qty'; the part written from it is rewritten."""
    rows = [
        {"id": i, "name": None if i <= 2 else f"n{i}", "amount": None, "qty": None if i <= 2 else i}
        for i in range(1, 8)
    ]
    with sql_table(kind, rows) as source:
        outcome = register(source, ordered(source), snapshots, registry, batch_size=2, part_rows=3)
        frame = load_version(outcome.record, {SNAPSHOTS: snapshots})

    parts = [item.path for item in outcome.record.manifest]
    assert len(parts) == 3  # 2 rows (closed early when the schema widened), then 3, then 2
    schemas = {str(pq.read_schema(pa.BufferReader(snapshots.read_bytes(p)))) for p in parts}
    assert len(schemas) == 1
    assert "name: string" in schemas.pop()
    assert outcome.record.manifest == [ManifestEntry.of(snapshots.stat(path)) for path in parts]
    assert frame["name"].tolist() == [None, None, "n3", "n4", "n5", "n6", "n7"]
    assert frame["qty"].tolist()[2:] == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert outcome.record.table_schema == frame_schema(frame)
    assert outcome.record.profile == frame_profile(frame)


def test_postgres_types_without_a_plain_column_type_still_snapshot(
    snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    """JSON objects, arrays and UUIDs are stored as Parquet struct/list/uuid; nothing is lost."""
    query = (
        "SELECT g AS id, json_build_object('n', g) AS doc, ARRAY[g, g + 1] AS pair, "
        "md5(g::text)::uuid AS key, now() AS seen_at, CASE WHEN g > 1 THEN true END AS flag "
        "FROM generate_series(1, 3) AS g ORDER BY g"
    )
    with sql_table("postgresql", []) as source:
        outcome = register(source, query_spec(query), snapshots, registry, batch_size=2)
        again = register(source, query_spec(query), snapshots, registry, batch_size=2)

    frame = load_version(outcome.record, {SNAPSHOTS: snapshots})
    assert frame["doc"].tolist() == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [list(value) for value in frame["pair"]] == [[1, 2], [2, 3], [3, 4]]
    assert frame["flag"].tolist() == [None, True, True]
    assert outcome.record.table_schema == frame_schema(frame)
    profile = {row.column: row for row in outcome.record.profile or []}
    assert profile["doc"].distinct is None  # nested values have no hash in Arrow
    assert profile["key"].distinct == 3
    # now() differs between the two reads, so the second read is a new version.
    assert again.created and again.record.version == 2


BIG = 200_000
BIG_QUERIES = {
    "postgresql": (
        "SELECT g AS id, concat('customer-', g) AS name, g * 0.5::float8 AS amount "
        "FROM generate_series(1, :rows) AS g ORDER BY g"
    ),
    # MariaDB caps recursive CTEs (max_recursive_iterations), so digits are cross-joined instead.
    "mysql": (
        "WITH d (n) AS (SELECT 0 UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 "
        "UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 "
        "UNION ALL SELECT 8 UNION ALL SELECT 9), "
        "seq (n) AS (SELECT 1 + a.n + 10 * b.n + 100 * c.n + 1000 * e.n + 10000 * f.n "
        "+ 100000 * g.n FROM d a, d b, d c, d e, d f, d g) "
        "SELECT n AS id, concat('customer-', n) AS name, n * 5e-1 AS amount FROM seq "
        "WHERE n <= :rows ORDER BY n"
    ),
}


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_a_big_result_is_streamed_into_parts_with_bounded_memory(
    kind: str, snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    """The server generates the rows; Python never holds more than a batch and a part of them."""
    with sql_table(kind, []) as source:
        # A small version first, so lazy imports are not counted as memory for the rows.
        register(source, query_spec(BIG_QUERIES[kind], params={"rows": 10}), snapshots, registry)
        spec = query_spec(BIG_QUERIES[kind], params={"rows": BIG})
        tracemalloc.start()
        try:
            outcome = register(
                source, spec, snapshots, registry, batch_size=5_000, part_rows=60_000
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        frame = load_version(outcome.record, {SNAPSHOTS: snapshots})

    full = int(frame.memory_usage(deep=True).sum())
    assert peak < full / 4, f"peak {peak} bytes vs {full} bytes for the whole frame"
    assert outcome.record.version == 2
    assert outcome.record.row_count == BIG
    assert [item.path[-13:] for item in outcome.record.manifest] == [
        f"{index:05d}.parquet" for index in range(4)
    ]
    assert outcome.record.bytes == sum(item.size for item in outcome.record.manifest)
    assert frame["id"].tolist() == list(range(1, BIG + 1))
    assert frame["name"].iloc[-1] == f"customer-{BIG}"
    profile = {row.column: row for row in outcome.record.profile or []}
    distinct = profile["id"].distinct
    assert distinct is not None
    assert abs(distinct - BIG) < BIG * 0.02, "DataSketches HLL estimate beyond the exact limit"
    assert profile["id"] == ProfileRow(
        column="id", type="int64", nulls=0, distinct=distinct, min=1, max=BIG, mean=(BIG + 1) / 2
    )
    assert profile["amount"].max == BIG / 2
    assert profile["name"].min == "customer-1"


def streamed_distinct(batches: list[pa.Table]) -> dict[str, int | None]:
    """The distinct counts the streamed profile records for these batches."""
    profile = _StreamingProfile()
    for batch in batches:
        profile.update(batch)
    dtypes = [(name, "object") for name in batches[0].column_names]
    return {row.column: row.distinct for row in profile.rows(dtypes)}


def cut(table: pa.Table, batch_size: int) -> list[pa.Table]:
    return [table.slice(start, batch_size) for start in range(0, table.num_rows, batch_size)]


DISTINCT_ROWS = 200_000
# Every value twice, shuffled the same way each run: counts must not depend on repeats or order.
DISTINCT_VALUES = np.random.default_rng(7).permutation(np.arange(DISTINCT_ROWS).repeat(2))
DISTINCT_TABLE = pa.table(
    {
        "id": DISTINCT_VALUES,
        "name": pa.array([f"customer-{value}" for value in DISTINCT_VALUES]),
        "amount": DISTINCT_VALUES * 0.5,
        "day": pa.array(DISTINCT_VALUES % 500, type=pa.int32()),
    }
)


def test_distinct_beyond_the_exact_limit_is_estimated_within_two_percent() -> None:
    counts = streamed_distinct(cut(DISTINCT_TABLE, 5_000))

    assert counts["day"] == 500
    for column in ("id", "name", "amount"):
        assert abs(counts[column] - DISTINCT_ROWS) < DISTINCT_ROWS * 0.02, column


def test_distinct_is_exact_up_to_the_limit() -> None:
    values = np.arange(DISTINCT_EXACT_LIMIT).repeat(3)
    table = pa.table({"id": values, "name": pa.array([f"n{value}" for value in values])})

    assert streamed_distinct(cut(table, 777)) == {
        "id": DISTINCT_EXACT_LIMIT,
        "name": DISTINCT_EXACT_LIMIT,
    }


def test_distinct_counts_do_not_depend_on_the_batch_size() -> None:
    counts = [streamed_distinct(cut(DISTINCT_TABLE, size)) for size in (1_000, 7_919, 400_000)]

    assert counts[0] == counts[1] == counts[2]


def narrow_then_wide(kind: str, rows: int) -> list[pa.Table]:
    """Two batches of one column: ``rows`` values, then the same values widened and one more."""
    if kind == "numbers":  # integers that turn fractional widen the column to double
        narrow = pa.array(range(rows), type=pa.int32())
        wide = pa.array([value + 0.0 for value in range(rows)] + [0.5])
    else:  # a later batch with finer times widens seconds to microseconds
        seconds = np.arange(rows).astype("datetime64[s]")
        narrow = pa.array(seconds)
        wide = pa.array(np.append(seconds.astype("datetime64[us]"), np.datetime64(1, "us")))
    return [pa.table({"n": narrow}), pa.table({"n": wide})]


@pytest.mark.parametrize("kind", ["numbers", "times"])
@pytest.mark.parametrize("rows", [6_000, 60_000])
def test_a_value_counts_once_when_its_column_widens_between_batches(kind: str, rows: int) -> None:
    distinct = streamed_distinct(narrow_then_wide(kind, rows))["n"]

    assert distinct is not None
    if rows < DISTINCT_EXACT_LIMIT:
        assert distinct == rows + 1
    else:
        assert abs(distinct - (rows + 1)) <= rows * 0.02


def test_loaded_snapshot_matches_read_sql_exactly(
    source: SqlTable, snapshots: LocalDatastore, registry: DatasetRegistry
) -> None:
    outcome = register(source, ordered(source), snapshots, registry)
    loaded = load_version(outcome.record, {SNAPSHOTS: snapshots})
    direct = source.store.read_sql(ordered(source).query or "")
    assert_frame_equal(loaded, direct)
    assert pd.api.types.is_float_dtype(loaded["qty"])
