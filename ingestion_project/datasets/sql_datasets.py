"""SQL query datasets, versioned by snapshot: each version is an immutable Parquet copy of a result.

Azure ML cannot version a SQL dataset because rows change in place. Materializing one here streams
the query result into Parquet parts under a fresh folder of the snapshot store and registers those
parts, so a version keeps its rows however the tables change afterwards.

The fingerprint is the sha256 of the result's Arrow IPC record batches, taken while streaming. It is
the same for the same rows in the same order read with the same ``batch_size``, so a query needs an
``ORDER BY`` on a unique key: without one the server may return rows in a different order each time
and unchanged data would register a new version (the record then carries a warning).
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.profile import _number, frame_schema
from ingestion_project.datasets.snapshot import new_snapshot_token, snapshot_prefix
from ingestion_project.datasets.versions import (
    DatasetError,
    DatasetRegistry,
    Registration,
    load_columns,
)
from ingestion_project.datastores.base import DatastoreError, FileDatastore, FileInfo
from ingestion_project.datastores.sql import ServerSqlDatastore, SqlDatastore
from ingestion_project.quality.gate import checked_columns, judge, judge_again
from ingestion_project.records import (
    DatasetLineage,
    DatasetVersionRecord,
    LoadOptions,
    Manifest,
    ProfileRow,
    QualityReport,
    SchemaColumn,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

BATCH_ROWS = 50_000
PART_ROWS = 500_000
DISTINCT_EXACT_LIMIT = 10_000
# 2**14 one-byte registers (16 KiB a column): relative standard error about 0.8%.
HLL_LG_K = 14
PROFILE_METHOD = (
    "streamed over every row: nulls, min, max and mean exact; distinct exact up to "
    f"{DISTINCT_EXACT_LIMIT} values per column, beyond that an Apache DataSketches HLL "
    "estimate (typically within 1%)"
)
NO_ORDER_BY_WARNING = (
    "the query has no top-level ORDER BY: the server may return rows in a different order on "
    "every read, which changes the fingerprint and registers unchanged data as a new version. "
    "Add an ORDER BY on a unique key."
)
UNPARSED_ORDER_BY_WARNING = (
    "the query could not be parsed to check for a top-level ORDER BY. Without one the server may "
    "return rows in a different order on every read, which changes the fingerprint and registers "
    "unchanged data as a new version. Make sure it ends with an ORDER BY on a unique key."
)
# sqlglot's dialect for each server dialect (ServerSqlDatastore.dialect); others parse generically.
_SQLGLOT_DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "mssql": "tsql"}


def has_top_level_order_by(query: str, dialect: str | None = None) -> bool | None:
    """Whether the outermost statement sorts its rows; None when the query cannot be parsed.

    sqlglot parses the query (in ``dialect``, a sqlglot dialect name, when the server is known),
    so ORDER BY in subqueries, CTEs, window or aggregate clauses, literals and comments does not
    count, and a set operation (UNION, ...) counts only with its final ORDER BY.
    """
    import sqlglot
    from sqlglot import exp

    try:
        statements = [tree for tree in sqlglot.parse(query, read=dialect) if tree is not None]
    except Exception as error:  # the check is advice: no parser failure may fail a registration
        detail = str(error).strip().splitlines() or [type(error).__name__]
        logger.info("no ORDER BY check, sqlglot could not parse the query: %s", detail[0])
        return None
    if len(statements) != 1:  # empty, or several statements whose result the driver picks
        return None
    statement = statements[0]
    while isinstance(statement, exp.Subquery) and statement.args.get("order") is None:
        statement = statement.this  # "(SELECT ... ORDER BY id)" is still sorted
    if not isinstance(statement, exp.Query):  # EXEC, SHOW or text sqlglot kept as a Command
        return None
    return statement.args.get("order") is not None


def _order_by_warnings(query: str, sql_store: SqlDatastore) -> list[str]:
    """The record's warning when the result's row order may change between reads."""
    dialect = sql_store.dialect if isinstance(sql_store, ServerSqlDatastore) else None
    ordered = has_top_level_order_by(query, _SQLGLOT_DIALECTS.get(dialect or ""))
    if ordered is None:
        return [UNPARSED_ORDER_BY_WARNING]
    return [] if ordered else [NO_ORDER_BY_WARNING]


def register_sql_dataset(
    name: str,
    spec: DatasetSpec,
    sql_store: SqlDatastore,
    registry: DatasetRegistry,
    snapshot_store: FileDatastore,
    snapshot_store_name: str,
    registry_prefix: str,
    *,
    run_id: str | None,
    code_version: str,
    batch_size: int = BATCH_ROWS,
    part_rows: int = PART_ROWS,
) -> Registration:
    """Snapshot the query's result and register it, unless it equals the newest version's rows.

    Memory stays bounded by one batch plus one compressed part; the result is never held whole, so
    ``Registration.frame`` is None. Declared checks judge the snapshot's parts before the record is
    written, reading back only the columns they name. Any failure leaves no version and deletes
    the parts written.
    """
    if spec.query is None:
        raise DatasetError(f"dataset '{name}' has no 'query': register it as a file dataset.")
    if batch_size <= 0 or part_rows <= 0:
        raise DatasetError(
            f"dataset '{name}': batch_size and part_rows must be positive "
            f"(got {batch_size} and {part_rows})."
        )
    query, params = spec.query, dict(spec.params)
    tables = _table_fingerprints(name, spec, sql_store)
    folder = snapshot_prefix(registry_prefix, name, new_snapshot_token())
    writer = _SnapshotWriter(name, snapshot_store, snapshot_store_name, folder, part_rows)
    try:
        writer.write(_query_batches(name, sql_store, query, params, batch_size))
        typed = _typed_columns(name, spec, writer.column_names())
        fingerprint = writer.fingerprint
        latest = registry.latest(name, include_failed=True)
        if (
            latest is not None
            and latest.fingerprint == fingerprint
            and not judge_again(latest, spec)
            and _parts_intact(latest, snapshot_store, snapshot_store_name)
        ):
            for problem in writer.discard():
                logger.warning("dataset '%s': unchanged snapshot left behind: %s", name, problem)
            return Registration(record=latest, created=False, frame=None)
        warnings = _order_by_warnings(query, sql_store)

        def build(version: int) -> DatasetVersionRecord:
            return DatasetVersionRecord(
                dataset=name,
                version=version,
                fingerprint=fingerprint,
                kind="tabular",
                mode="snapshot",
                datastore=spec.datastore,
                manifest_store=snapshot_store_name,
                snapshot_prefix=folder,
                path=f"{folder}/*.parquet",
                format="parquet",
                manifest=Manifest.of(writer.parts),
                query=query,
                params=params,
                tables=tables,
                load_options=LoadOptions(
                    header=True,
                    column_types=dict(spec.column_types),
                    partition_format=None,
                    path_column=None,
                    timestamp_column=spec.timestamp_column,
                ),
                table_schema=writer.schema(typed),
                row_count=writer.rows,
                bytes=sum(info.size for info in writer.parts),
                profile=writer.profile.rows(writer.dtypes(typed)),
                profile_method=PROFILE_METHOD,
                batch_size=batch_size,
                warnings=warnings,
                lineage=DatasetLineage(run_id=run_id, code_version=code_version, upstream=[]),
                description=spec.description,
                tags=spec.tags,
            )

        quality = _judge_snapshot(spec, build(1), snapshot_store, snapshot_store_name)
        record = registry.register(
            name, lambda version: build(version).model_copy(update={"quality": quality})
        )
    except Exception as error:
        for problem in writer.discard():
            error.add_note(f"Could not delete a partial snapshot part: {problem}")
        raise
    return Registration(record=record, created=True, frame=None)


def _judge_snapshot(
    spec: DatasetSpec, draft: DatasetVersionRecord, store: FileDatastore, store_name: str
) -> QualityReport | None:
    """The declared checks' verdict on the parts just written, read back as loading reads them.

    ``draft`` is the record about to be written; only the columns the checks name are kept.
    """
    if not spec.checks:
        return None
    return judge(spec, load_columns(draft, {store_name: store}, spec, checked_columns(spec)))


def _typed_columns(name: str, spec: DatasetSpec, columns: list[str]) -> dict[str, str]:
    """The dtypes loading applies (column_types, timestamp_column), checked against the result.

    The snapshot keeps the rows as the server returned them; versions convert these columns when
    loaded, as file datasets do, so the recorded schema says what loading gives.
    """
    typed = dict(spec.column_types)
    if spec.timestamp_column:
        typed.setdefault(spec.timestamp_column, "datetime64[ns]")
    unknown = sorted(set(typed) - set(columns))
    if unknown:
        raise DatasetError(
            f"dataset '{name}': 'column_types'/'timestamp_column' name columns the query does not "
            f"return: {', '.join(unknown)} (it returns: {', '.join(columns)}). Fix the names in "
            "the catalog or alias the columns in the query. Nothing was registered."
        )
    return typed


def _parts_intact(record: DatasetVersionRecord, store: FileDatastore, store_name: str) -> bool:
    """Whether a version's parts are still as registered; if not, unchanged rows are re-snapshot."""
    if record.manifest_store != store_name or not record.snapshot_prefix:
        return False
    now = {info.path: info for info in store.list_files(f"{record.snapshot_prefix}/**")}
    for entry in record.manifest:
        current = now.get(entry.path)
        if current is None or (current.etag, current.size) != (entry.etag, entry.size):
            return False
    return True


def _table_fingerprints(name: str, spec: DatasetSpec, sql_store: SqlDatastore) -> dict[str, str]:
    """Fingerprints of the declared tables, taken before the read: what the rows came from."""
    fingerprints: dict[str, str] = {}
    for entry in spec.tables:
        schema, dot, table = entry.rpartition(".")
        try:
            fingerprints[entry] = sql_store.table_fingerprint(table, schema if dot else None)
        except DatastoreError as error:
            raise DatasetError(
                f"dataset '{name}': could not fingerprint table '{entry}' listed in 'tables': "
                f"{error} Check 'tables' in the catalog. Nothing was registered."
            ) from error
    return fingerprints


def _query_batches(
    name: str, sql_store: SqlDatastore, query: str, params: dict[str, Any], batch_size: int
) -> Generator[pd.DataFrame, None, None]:
    """The store's batches, with query and connection errors naming the dataset."""
    try:
        with closing(sql_store.iter_batches(query, params, batch_size)) as batches:
            yield from batches
    except DatastoreError as error:
        raise DatasetError(
            f"dataset '{name}': its query failed: {error} Nothing was registered."
        ) from error


class _SnapshotWriter:
    """Turns a stream of frames into Parquet parts of ``part_rows`` rows, a fingerprint, a profile.

    Each batch is converted to Arrow once and cast to the snapshot's schema. When a batch cannot be
    cast (a column that was all NULL so far now has values, or integers turn fractional), the schema
    widens and the parts already written are rewritten to it: all parts share one schema, so every
    version loads with the same dtypes however its rows fell into batches.
    """

    def __init__(
        self, dataset: str, store: FileDatastore, store_name: str, folder: str, part_rows: int
    ) -> None:
        self.dataset = dataset
        self.store = store
        self.store_name = store_name
        self.folder = folder
        self.part_rows = part_rows
        self.parts: list[FileInfo] = []
        self.rows = 0
        self.profile = _StreamingProfile()
        self._paths: list[str] = []
        self._digest = hashlib.sha256()
        self._schema: pa.Schema | None = None
        self._sink: pa.BufferOutputStream | None = None
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_part = 0

    @property
    def fingerprint(self) -> str:
        return self._digest.hexdigest()

    def write(self, batches: Generator[pd.DataFrame, None, None]) -> None:
        with closing(batches):
            for frame in batches:
                table = self._conform(self._to_arrow(frame))
                for record_batch in table.to_batches():
                    self._digest.update(record_batch.serialize())
                self.profile.update(table)
                self._append(table)
                self.rows += table.num_rows
        self._close_part()
        if self.rows == 0:
            raise DatasetError(
                f"dataset '{self.dataset}': the query returned no rows, so there is nothing to "
                "version. Check the query and its params, or wait for data to arrive."
            )

    def column_names(self) -> list[str]:
        return [] if self._schema is None else list(self._schema.names)

    def schema(self, typed: dict[str, str]) -> list[SchemaColumn]:
        import pandas as pd

        dtypes = self.dtypes(typed)
        return frame_schema(pd.DataFrame({name: pd.Series(dtype=t) for name, t in dtypes}))

    def dtypes(self, typed: dict[str, str]) -> list[tuple[str, Any]]:
        """The pandas dtype each column loads as: integers and booleans with NULLs change dtype.

        Columns in ``typed`` are converted on load, so their declared dtype is what loading gives.
        """
        import pandas as pd
        import pyarrow as pa

        assert self._schema is not None
        nulls = self.profile.null_counts()
        result: list[tuple[str, Any]] = []
        for item in self._schema:
            if item.name in typed:
                result.append((item.name, pd.Series(dtype=typed[item.name]).dtype))
                continue
            values = [None] if nulls.get(item.name) else []
            frame = pa.table({item.name: pa.array(values, type=item.type)}).to_pandas()
            result.append((item.name, frame[item.name].dtype))
        return result

    def discard(self) -> list[str]:
        """Best-effort delete of every part this writer started; returns what was not deleted."""
        problems = []
        for path in self._paths:
            try:
                self.store.delete(path)
            except (DatastoreError, OSError) as error:
                problems.append(f"{path} in datastore '{self.store_name}' ({error})")
        self._paths.clear()
        return problems

    def _to_arrow(self, frame: pd.DataFrame) -> pa.Table:
        import pyarrow as pa

        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        if duplicated:
            raise DatasetError(
                f"dataset '{self.dataset}': the query returns several columns named "
                f"{', '.join(duplicated)}. Give each one its own alias (AS ...) in the query."
            )
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
            detail = " ".join(str(error).split())[:300]
            raise DatasetError(
                f"dataset '{self.dataset}': a query column cannot be stored in Parquet ({detail}). "
                "Cast it to a plain type in the query, e.g. CAST(column AS text)."
            ) from None
        return table.replace_schema_metadata(None)

    def _conform(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        if self._schema is None:
            self._adopt(table.schema)
            return table
        if table.schema == self._schema:
            return table
        try:
            return table.cast(self._schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
        try:
            widened = pa.unify_schemas([self._schema, table.schema], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise DatasetError(
                f"dataset '{self.dataset}': a query column changes type between rows "
                f"({' '.join(str(error).split())[:300]}). Cast it to one type in the query."
            ) from None
        self._close_part()
        self._adopt(widened)
        self._rewrite_parts()
        return table.cast(widened)

    def _adopt(self, schema: pa.Schema) -> None:
        self._schema = schema
        self._digest.update(schema.serialize())

    def _append(self, table: pa.Table) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        offset = 0
        while offset < table.num_rows:
            if self._writer is None:
                assert self._schema is not None
                self._sink = pa.BufferOutputStream()
                self._writer = pq.ParquetWriter(self._sink, self._schema)
            piece = table.slice(offset, self.part_rows - self._rows_in_part)
            self._writer.write_table(piece)
            self._rows_in_part += piece.num_rows
            offset += piece.num_rows
            if self._rows_in_part >= self.part_rows:
                self._close_part()

    def _close_part(self) -> None:
        if self._writer is None or self._sink is None:
            return
        self._writer.close()
        data = self._sink.getvalue().to_pybytes()
        self._writer, self._sink, self._rows_in_part = None, None, 0
        path = f"{self.folder}/part-{len(self._paths):05d}.parquet"
        self._paths.append(path)
        self.parts.append(self._store_part(path, data, overwrite=False))

    def _rewrite_parts(self) -> None:
        """Cast the parts written so far to the widened schema, one part in memory at a time."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        for index, info in enumerate(self.parts):
            try:
                data = self.store.read_bytes(info.path)
            except (DatastoreError, OSError) as error:
                raise self._store_error(info.path, "read back", error) from error
            table = pq.read_table(pa.BufferReader(data)).cast(self._schema)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            self.parts[index] = self._store_part(
                info.path, sink.getvalue().to_pybytes(), overwrite=True
            )

    def _store_part(self, path: str, data: bytes, *, overwrite: bool) -> FileInfo:
        try:
            self.store.write_bytes(path, data, overwrite=overwrite)
            return self.store.stat(path)
        except (DatastoreError, OSError) as error:
            raise self._store_error(path, "write", error) from error

    def _store_error(self, path: str, verb: str, error: Exception) -> DatasetError:
        return DatasetError(
            f"dataset '{self.dataset}': could not {verb} snapshot part '{path}' in datastore "
            f"'{self.store_name}': {error} Nothing was registered; check the datastore and "
            "materialize again."
        )


class _DistinctCounter:
    """Distinct values of one column from their 64-bit hashes, in bounded memory.

    Exact up to ``DISTINCT_EXACT_LIMIT`` values (a sorted array of hashes); beyond that an Apache
    DataSketches HLL sketch estimates it. The sketch is fed from the first batch on, in row order,
    so its estimate (which depends on the order values first arrive) is the same for any batch size.
    """

    def __init__(self) -> None:
        self._exact: np.ndarray | None = None
        self._sketch: Any = None  # a datasketches.hll_sketch from the first value on
        self._overflowed = False

    def add(self, hashes: np.ndarray) -> None:
        import numpy as np

        if self._sketch is None:
            # The package re-exports its compiled binding with "import *", which pyright cannot see.
            from datasketches import hll_sketch, tgt_hll_type  # pyright: ignore[reportAttributeAccessIssue]

            self._sketch = hll_sketch(HLL_LG_K, tgt_hll_type.HLL_8)
        # The binding takes one value per call (no array update); map() keeps the loop in C.
        # Measured: ~70 ns a value (numpy registers took ~8), about 5% of reading the rows
        # from PostgreSQL, so the library's accuracy and upkeep win.
        deque(map(self._sketch.update, hashes.view(np.int64).tolist()), maxlen=0)
        if self._overflowed:
            return
        merged = np.unique(hashes) if self._exact is None else np.union1d(self._exact, hashes)
        if len(merged) <= DISTINCT_EXACT_LIMIT:
            self._exact = merged
        else:
            self._exact, self._overflowed = None, True

    def count(self) -> int:
        if not self._overflowed:
            return 0 if self._exact is None else len(self._exact)
        assert self._sketch is not None
        return round(self._sketch.get_estimate())


@dataclass
class _ColumnStats:
    """Running statistics of one column; min and max are Python values of the column's type."""

    nulls: int = 0
    count: int = 0
    total: float = 0.0
    numeric: bool = False
    minimum: Any = None
    maximum: Any = None
    seen: bool = False
    distinct: _DistinctCounter = field(default_factory=lambda: _DistinctCounter())
    distinct_known: bool = True

    def update(self, column: pa.ChunkedArray) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.nulls += column.null_count
        present = len(column) - column.null_count
        if not present:
            return
        self.count += present
        kind = column.type
        self.numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        if self.numeric:
            total = pc.call_function("sum", [column.cast(pa.float64())])
            self.total += float(total.as_py() or 0.0)
        try:
            bounds = pc.call_function("min_max", [column])
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            bounds = None
        if bounds is not None:
            self._widen(bounds["min"].as_py(), bounds["max"].as_py())
        self._count_distinct(column)

    def _widen(self, low: Any, high: Any) -> None:
        if low is None:
            return
        if not self.seen:
            self.minimum, self.maximum, self.seen = low, high, True
            return
        try:
            self.minimum = min(self.minimum, low)
            self.maximum = max(self.maximum, high)
        except TypeError:
            self.minimum = min(str(self.minimum), str(low))
            self.maximum = max(str(self.maximum), str(high))

    def _count_distinct(self, column: pa.ChunkedArray) -> None:
        """Nested columns (JSON objects, arrays) cannot be hashed by Arrow: their count is None."""
        import pyarrow as pa

        if not self.distinct_known:
            return
        if isinstance(column.type, pa.BaseExtensionType):  # e.g. UUIDs: count their storage
            column = pa.chunked_array(
                [chunk.storage for chunk in column.chunks], type=column.type.storage_type
            )
        try:
            hashes = _value_hashes(column.unique().drop_null())
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            self.distinct_known = False
            return
        self.distinct.add(hashes)

    def row(self, column: str, dtype: Any) -> ProfileRow:
        """The same fields frame_profile gives, so SQL and file versions read alike."""
        low = high = mean = None
        if self.seen and self.numeric and str(dtype) not in ("bool", "object"):
            low, high = _number(self.minimum), _number(self.maximum)
            mean = _number(self.total / self.count) if self.count else None
        elif self.seen:
            low, high = _text(self.minimum, dtype), _text(self.maximum, dtype)
        return ProfileRow(
            column=column,
            type=str(dtype),
            nulls=self.nulls,
            distinct=self.distinct.count() if self.distinct_known else None,
            min=low,
            max=high,
            mean=mean,
        )


def _value_hashes(values: pa.Array) -> np.ndarray:
    """64-bit hashes of distinct values, in their order, the same for a value whatever its type.

    A column can widen between batches (int32 to int64, integers to double once a fraction
    arrives, seconds to microseconds), so integers and whole floats hash as the same int64, and
    times as nanoseconds where they fit: a value seen before and after the widening counts once.
    """
    import numpy as np
    import pyarrow as pa
    from pandas.util import hash_array

    kind = values.type
    if pa.types.is_integer(kind):  # unsigned values past 2**63 wrap, still one hash each
        return cast("np.ndarray", hash_array(values.cast(pa.int64(), safe=False).to_numpy()))
    if pa.types.is_floating(kind):
        numbers = values.cast(pa.float64()).to_numpy()
        hashes = cast("np.ndarray", hash_array(numbers))
        whole = np.isfinite(numbers) & (np.trunc(numbers) == numbers) & (np.abs(numbers) < 2.0**63)
        hashes[whole] = hash_array(numbers[whole].astype(np.int64))
        return hashes
    if pa.types.is_timestamp(kind) and kind.unit != "ns":
        try:
            values = values.cast(pa.timestamp("ns", kind.tz))
        except pa.ArrowInvalid:  # out of the nanosecond range: keep the unit it came in
            pass
    return cast("np.ndarray", hash_array(values.to_numpy(zero_copy_only=False)))


def _text(value: Any, dtype: Any) -> str:
    """How pandas shows a value as text (what frame_profile compares for non-numeric columns).

    A time zone-aware time loaded as naive ``datetime64[ns]`` is shown in UTC, as loading does.
    """
    import pandas as pd

    if hasattr(value, "isoformat") and hasattr(value, "hour"):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None and str(dtype) == "datetime64[ns]":
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return str(stamp)
    return str(value)


class _StreamingProfile:
    """Per-column statistics accumulated batch by batch; never more than one batch in memory."""

    def __init__(self) -> None:
        self._columns: dict[str, _ColumnStats] = {}

    def update(self, table: pa.Table) -> None:
        for name in table.column_names:
            self._columns.setdefault(name, _ColumnStats()).update(table.column(name))

    def null_counts(self) -> dict[str, int]:
        return {name: stats.nulls for name, stats in self._columns.items()}

    def rows(self, dtypes: list[tuple[str, Any]]) -> list[ProfileRow]:
        return [self._columns[name].row(name, dtype) for name, dtype in dtypes]
