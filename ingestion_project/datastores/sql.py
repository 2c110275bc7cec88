"""Datastores that answer SQL: PostgreSQL and MySQL/MariaDB through SQLAlchemy.

Queries take SQLAlchemy ``:name`` placeholders and values always travel as bound parameters.
Table and schema names are checked as plain identifiers and quoted by the dialect, so a name
coming from a catalog can never change the statement. Driver errors become ``DatastoreError``
messages that name the datastore, say what went wrong and what to do, and never hold a password.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from pydantic import Field, PrivateAttr, field_validator
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL

from ingestion_project.datastores.base import (
    HIDE_INPUT,
    CatalogDatastore,
    DatastoreError,
    refuse_url_credentials,
    resolve_secret,
    secret_field,
)

_IDENTIFIER = re.compile(r"[A-Za-z0-9_]{1,63}")
_DETAIL_LIMIT = 400
_EXACT_FINGERPRINT_DEFAULT_BYTES = 32 * 1024 * 1024

_AUTH_ADVICE = "check the user and the password environment variable"
_REACH_ADVICE = "check the host is reachable, the port is right and the server is running"
_TIMEOUT_ADVICE = "check the host is reachable or raise connect_timeout_seconds"
_STATEMENT_TIMEOUT_ADVICE = "make the query cheaper or raise statement_timeout_seconds"
_PERMISSION_ADVICE = "grant the user access to the objects the query reads"
_QUERY_ADVICE = "fix the query, table or parameter names"


class SqlDatastore(CatalogDatastore, dg.ConfigurableResource):
    """Interface for datastores that answer SQL.

    Catalog entries, assets and sensors program against this class so that a dataset can move
    between SQL engines without its code changing.
    """

    model_config = HIDE_INPUT

    name: str = Field(description="Catalog name of this datastore, used in every error message.")
    description: str = Field(default="", description="What the database holds, for people.")

    def read_sql(self, query: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run ``query`` with bound ``:name`` parameters and return every row."""
        raise NotImplementedError

    def iter_batches(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        batch_size: int = 50_000,
    ) -> Generator[pd.DataFrame, None, None]:
        """Stream the rows of ``query`` in frames of ``batch_size`` without holding them all."""
        raise NotImplementedError

    def list_tables(self, schema: str | None = None) -> list[str]:
        """Base tables in ``schema`` (the connection's default schema or database if omitted)."""
        raise NotImplementedError

    def table_fingerprint(self, table: str, schema: str | None = None) -> str:
        """A cheap value that changes whenever rows are inserted, updated or deleted."""
        raise NotImplementedError

    def query_fingerprint(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        tables: Sequence[str] = (),
    ) -> str:
        """Fingerprint of a query's result, from its text, its params and the tables it reads."""
        raise NotImplementedError

    def check(self) -> None:
        """Connect and run ``select 1``; raise DatastoreError saying precisely what failed."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where the store points, without any secret, for logs and the UI."""
        return self.name


def _normalize_query(query: str) -> str:
    """Whitespace and a trailing ';' do not change what a query means, so not its hash either."""
    return " ".join(query.split()).rstrip(";").rstrip()


def _sha256(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ServerSqlDatastore(SqlDatastore):
    """Shared SQLAlchemy machinery for SQL servers reached over TCP with a user and password.

    One engine is created lazily per resource instance (Dagster gives each run its own copy) and
    disposed after execution. Subclasses supply the URL, driver options and fingerprint queries.
    """

    host: str = Field(description="Server host name or IP address.")
    port: int = Field(description="Server TCP port.")
    database: str = Field(description="Database to connect to.")
    user: str = Field(description="User to connect as.")
    password: str | None = secret_field(
        "Password; give it as dg.EnvVar('NAME') (in a catalog {env: NAME}) so it never sits in "
        "a file."
    )
    connect_timeout_seconds: int = Field(
        default=10,
        gt=0,
        le=300,
        description=(
            "Upper bound on opening one connection (TCP connect and login), which is not "
            "retried; a host name with several addresses may get it once per address. Also the "
            "longest wait for a free pooled connection."
        ),
    )
    statement_timeout_seconds: int = Field(
        default=3600,
        ge=0,
        description=(
            "Limit on one statement, after which it is cancelled: by the server on PostgreSQL "
            "and MariaDB (MySQL: SELECTs only), by the client on Azure SQL. 0 disables it."
        ),
    )
    exact_fingerprint_max_bytes: int = Field(
        default=_EXACT_FINGERPRINT_DEFAULT_BYTES,
        ge=0,
        description=(
            "Tables up to this size are fingerprinted from their content (exact, reads the table); "
            "larger ones from server statistics (cheap, see table_fingerprint)."
        ),
    )

    _engine_cache: tuple[str, sa.Engine] | None = PrivateAttr(default=None)
    _engine_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    # The SQLAlchemy dialect name shown in describe().
    dialect: ClassVar[str] = "sql"
    driver: ClassVar[str] = ""
    url_query: ClassVar[dict[str, str]] = {}

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return refuse_url_credentials(value, query_allowed=False)

    def _url(self, password: str | None) -> URL:
        """The SQLAlchemy URL for this dialect and driver, built field by field, never formatted."""
        return URL.create(
            self.driver,
            username=self.user,
            password=password,
            host=self.host,
            port=self.port,
            database=self.database,
            query=self.url_query,
        )

    def _engine_options(self) -> dict[str, Any]:
        raise NotImplementedError

    def _prepare_engine(self, engine: sa.Engine) -> None:
        """Hook for per-connection session settings; called once per new engine."""

    def _classify(self, exc: sa_exc.DBAPIError) -> tuple[str, str]:
        """Map a driver error to a reason and what the user should do about it."""
        raise NotImplementedError

    def _table_fingerprint_parts(
        self, conn: sa.Connection, table: str, schema: str | None
    ) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        """A URL like ``postgresql://user@host:5432/db``; the password is never part of it."""
        url = URL.create(
            self.dialect, username=self.user, host=self.host, port=self.port, database=self.database
        )
        return url.render_as_string(hide_password=True)

    def _secret(self) -> str | None:
        """The password value, resolving a dg.EnvVar when called outside a Dagster run."""
        return resolve_secret(self.password, store=self.name, field="the password")

    def _engine(self) -> sa.Engine:
        # Keyed by the settings because model_copy() shares private attributes with the original.
        key = _sha256([self.model_dump(mode="json", exclude={"password"}), self._secret()])
        with self._engine_lock:
            if self._engine_cache is None or self._engine_cache[0] != key:
                engine = sa.create_engine(
                    self._url(self._secret()),
                    pool_pre_ping=True,
                    pool_size=5,
                    max_overflow=5,
                    pool_recycle=1800,
                    pool_timeout=self.connect_timeout_seconds,
                    **self._engine_options(),
                )
                self._prepare_engine(engine)
                self._engine_cache = (key, engine)
            return self._engine_cache[1]

    def dispose(self) -> None:
        """Close pooled connections; the next call opens new ones."""
        with self._engine_lock:
            if self._engine_cache is not None:
                self._engine_cache[1].dispose()
                self._engine_cache = None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Dagster calls this after a run or sensor tick, so pooled connections do not linger."""
        self.dispose()

    def _error(self, reason: str, action: str, detail: str, advice: str) -> DatastoreError:
        message = (
            f"datastore '{self.name}' ({self.describe()}): {reason} while {action}: {detail}. "
            f"To fix: {advice}."
        )
        return DatastoreError(self._scrub(message), reason=reason)

    def _scrub(self, text: str) -> str:
        secret = self._secret_or_none()
        if secret:
            text = text.replace(secret, "***")
        return text

    @contextmanager
    def _translating_errors(self, action: str) -> Iterator[None]:
        """Turn driver and SQLAlchemy errors into DatastoreError without leaking the password."""
        try:
            yield
        except sa_exc.DBAPIError as exc:
            reason, advice = self._classify(exc)
            original = str(exc.orig) if exc.orig is not None else str(exc)
            detail = " ".join(original.split())[:_DETAIL_LIMIT] or type(exc).__name__
            error = self._error(reason, action, detail, advice)
            secret = self._secret_or_none()
            if secret and secret in str(exc):
                raise error from None
            raise error from exc
        except sa_exc.StatementError as exc:
            # Raised before reaching the server, e.g. a :name placeholder without a value.
            detail = " ".join(str(exc.orig or exc).split())[:_DETAIL_LIMIT]
            raise self._error("query failed", action, detail, _QUERY_ADVICE) from exc
        except sa_exc.TimeoutError as exc:
            raise self._error(
                "timed out waiting for a pooled connection",
                action,
                "all connections are busy",
                "close unused result streams or use fewer concurrent queries",
            ) from exc

    def _secret_or_none(self) -> str | None:
        try:
            return self._secret()
        except DatastoreError:
            return None

    def _identifier(self, value: str, what: str) -> str:
        """Validate a table or schema name and quote it for this dialect."""
        if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
            raise DatastoreError(
                f"datastore '{self.name}': {what} name {value!r} is not allowed. Use 1-63 "
                "letters, digits or underscores, and fix the name in the catalog."
            )
        return self._engine().dialect.identifier_preparer.quote_identifier(value)

    def _qualified(self, table: str, schema: str | None) -> str:
        quoted = self._identifier(table, "table")
        if schema is None:
            return quoted
        return f"{self._identifier(schema, 'schema')}.{quoted}"

    def read_sql(self, query: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run ``query`` with bound ``:name`` parameters and return every row as one frame."""
        with self._translating_errors("running a query"), self._engine().connect() as conn:
            result = conn.execute(sa.text(query), dict(params or {}))
            columns = list(result.keys())
            rows = result.fetchall()
        return pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)

    def iter_batches(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        batch_size: int = 50_000,
    ) -> Generator[pd.DataFrame, None, None]:
        """Stream rows through a server-side cursor, ``batch_size`` rows per frame.

        The connection stays open until the iterator is exhausted or closed. PostgreSQL reads
        through a named cursor; MySQL streams (SSCursor), and closing early there still reads the
        rest of the result off the wire (without keeping it), because the protocol cannot cancel.
        """
        if batch_size <= 0:
            raise DatastoreError(
                f"datastore '{self.name}': batch_size must be positive, got {batch_size}."
            )
        with self._translating_errors("streaming a query"), self._engine().connect() as conn:
            result = conn.execution_options(yield_per=batch_size).execute(
                sa.text(query), dict(params or {})
            )
            with result:
                columns = list(result.keys())
                for rows in result.partitions(batch_size):
                    yield pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)

    def list_tables(self, schema: str | None = None) -> list[str]:
        """Sorted base-table names; an unknown schema is an error rather than an empty list."""
        if schema is not None:
            self._identifier(schema, "schema")
        with self._translating_errors("listing tables"), self._engine().connect() as conn:
            inspector = sa.inspect(conn)
            if schema is not None and schema not in inspector.get_schema_names():
                raise DatastoreError(
                    f"datastore '{self.name}' ({self.describe()}): schema '{schema}' does not "
                    "exist. Check the schema name in the catalog (names are case-sensitive)."
                )
            return sorted(inspector.get_table_names(schema=schema))

    def table_fingerprint(self, table: str, schema: str | None = None) -> str:
        """Hash of either the table's content (small tables) or its change statistics (large ones).

        See the subclass for what the statistics are and how soon they reflect a change.
        """
        self._qualified(table, schema)
        with self._translating_errors("fingerprinting a table"), self._engine().connect() as conn:
            parts = self._table_fingerprint_parts(conn, table, schema)
        return _sha256({"store": self.describe(), "schema": schema, "table": table, **parts})

    def query_fingerprint(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        tables: Sequence[str] = (),
    ) -> str:
        """Hash of the normalized query, its params and the fingerprints of ``tables``.

        The result is never counted, so this stays cheap on huge tables; the caller names the
        tables (``table`` or ``schema.table``) because parsing SQL to find them is unreliable.
        """
        if isinstance(tables, str) or not tables:
            raise DatastoreError(
                f"datastore '{self.name}': query_fingerprint needs the tables the query reads "
                "(a list like ['orders', 'sales.customers']); without them it could never change."
            )
        fingerprints: dict[str, str] = {}
        for entry in sorted(set(tables)):
            schema, dot, table = entry.rpartition(".")
            fingerprints[entry] = self.table_fingerprint(table, schema if dot else None)
        return _sha256(
            {
                "store": self.describe(),
                "query": _normalize_query(query),
                "params": dict(params or {}),
                "tables": fingerprints,
            }
        )

    def check(self) -> None:
        """Open a connection and run ``select 1``, so catalog mistakes surface before a run."""
        with self._translating_errors("connecting"), self._engine().connect() as conn:
            conn.execute(sa.text("select 1")).scalar_one()

    def _missing_table(self, table: str, schema: str | None) -> DatastoreError:
        where = f"schema '{schema}'" if schema else "the default schema"
        return DatastoreError(
            f"datastore '{self.name}' ({self.describe()}): table '{table}' not found in {where} "
            "(views have no change statistics). Check the name (case-sensitive) or fingerprint "
            "the tables behind the view."
        )


class PostgresDatastore(ServerSqlDatastore):
    """PostgreSQL through psycopg2 with a connect timeout, TCP keepalives and a statement timeout.

    Table fingerprints: tables (all partitions together) up to ``exact_fingerprint_max_bytes``
    hash their rows (count and a sum of row hashes, exact and immediate). Larger ones hash the
    cumulative statistics ``n_tup_ins``/``n_tup_upd``/``n_tup_del`` and ``relfilenode`` (which
    TRUNCATE changes) without reading data. Those counters never go backwards, so no change is
    missed, but PostgreSQL publishes them up to ~10 s after commit and rolled-back writes count too.
    """

    port: int = Field(default=5432, description="Server TCP port.")
    sslmode: str | None = Field(
        default=None, description="libpq sslmode, e.g. 'require' or 'verify-full'."
    )

    kind: ClassVar[str] = "postgresql"
    dialect: ClassVar[str] = "postgresql"
    driver: ClassVar[str] = "postgresql+psycopg2"

    def _engine_options(self) -> dict[str, Any]:
        connect_args: dict[str, Any] = {
            "connect_timeout": self.connect_timeout_seconds,
            "application_name": f"ingestion_project:{self.name}"[:63],
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 5,
        }
        if self.statement_timeout_seconds:
            connect_args["options"] = f"-c statement_timeout={self.statement_timeout_seconds}s"
        if self.sslmode:
            connect_args["sslmode"] = self.sslmode
        return {"connect_args": connect_args}

    def _classify(self, exc: sa_exc.DBAPIError) -> tuple[str, str]:
        code = getattr(exc.orig, "pgcode", None)
        text = str(exc.orig or exc).lower()
        if code == "57014" or "statement timeout" in text:
            return "statement timed out", _STATEMENT_TIMEOUT_ADVICE
        # Connection failures carry no SQLSTATE, so they are told apart by libpq's message.
        connecting = code is None
        auth_markers = (
            "password authentication failed",
            "no password supplied",
            "no pg_hba.conf entry",
            "authentication failed",
        )
        if (code or "").startswith("28") or (
            connecting
            and (
                any(marker in text for marker in auth_markers)
                or ("role" in text and "does not exist" in text)
            )
        ):
            return "authentication failed", _AUTH_ADVICE
        if code == "3D000" or (connecting and "database" in text and "does not exist" in text):
            return "database not found", f"check that database '{self.database}' exists"
        if "timeout expired" in text or "timed out" in text:
            return "timed out connecting", _TIMEOUT_ADVICE
        if "could not translate host name" in text:
            return "unreachable (host name not found)", "check the host name"
        if code == "42501":
            return "permission denied", _PERMISSION_ADVICE
        if isinstance(exc, sa_exc.OperationalError) and code is None:
            return "unreachable", _REACH_ADVICE
        return "query failed", _QUERY_ADVICE

    def _table_fingerprint_parts(
        self, conn: sa.Connection, table: str, schema: str | None
    ) -> dict[str, Any]:
        target = conn.execute(
            sa.text(
                "SELECT c.oid::bigint, c.relkind::text, n.nspname::text FROM pg_catalog.pg_class c "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = coalesce(CAST(:schema AS text), current_schema()) "
                "AND c.relname = :table AND c.relkind IN ('r', 'p')"
            ),
            {"schema": schema, "table": table},
        ).one_or_none()
        if target is None:
            raise self._missing_table(table, schema)
        oid, relkind, resolved_schema = target
        leaves = conn.execute(
            sa.text(
                "SELECT c.oid::bigint, c.relfilenode::bigint, pg_table_size(c.oid), "
                "pg_stat_get_tuples_inserted(c.oid), pg_stat_get_tuples_updated(c.oid), "
                "pg_stat_get_tuples_deleted(c.oid) "
                "FROM pg_catalog.pg_class c WHERE c.oid = CAST(:oid AS oid) AND :relkind <> 'p' "
                "UNION ALL "
                "SELECT c.oid::bigint, c.relfilenode::bigint, pg_table_size(c.oid), "
                "pg_stat_get_tuples_inserted(c.oid), pg_stat_get_tuples_updated(c.oid), "
                "pg_stat_get_tuples_deleted(c.oid) "
                "FROM pg_partition_tree(CAST(CAST(:oid AS oid) AS regclass)) AS tree "
                "JOIN pg_catalog.pg_class c ON c.oid = tree.relid "
                "WHERE :relkind = 'p' AND tree.isleaf ORDER BY 1"
            ),
            {"oid": oid, "relkind": relkind},
        ).all()
        size = sum(int(row[2]) for row in leaves)
        if size <= self.exact_fingerprint_max_bytes:
            # The schema the lookup resolved, so search_path cannot point the read elsewhere.
            quote = conn.dialect.identifier_preparer.quote_identifier
            qualified = f"{quote(resolved_schema)}.{self._identifier(table, 'table')}"
            count, row_hash_sum = conn.execute(
                sa.text(
                    "SELECT count(*), coalesce(sum(hashtextextended(CAST(ROW(fp_row.*) AS text), "
                    f"0)), 0) FROM {qualified} AS fp_row"
                )
            ).one()
            return {"mode": "content", "rows": int(count), "row_hash_sum": str(row_hash_sum)}
        if conn.execute(sa.text("SELECT current_setting('track_counts')")).scalar_one() != "on":
            raise DatastoreError(
                f"datastore '{self.name}' ({self.describe()}): table '{table}' is larger than "
                "exact_fingerprint_max_bytes and the server has track_counts off, so changes "
                "cannot be seen cheaply. Turn track_counts on or raise exact_fingerprint_max_bytes."
            )
        return {
            "mode": "statistics",
            "relations": [
                [int(oid), int(node), int(i), int(u), int(d)] for oid, node, _, i, u, d in leaves
            ],
        }


class MySqlDatastore(ServerSqlDatastore):
    """MySQL or MariaDB through PyMySQL, with connect/read timeouts and a statement timeout.

    Table fingerprints: tables up to ``exact_fingerprint_max_bytes`` (``DATA_LENGTH``) use
    ``CHECKSUM TABLE`` (exact; reads the whole table, briefly). Larger ones hash
    ``information_schema.TABLES`` (UPDATE_TIME, TABLE_ROWS, data and index length, AUTO_INCREMENT,
    CREATE_TIME and the live CHECKSUM when the table keeps one). UPDATE_TIME has one-second
    resolution and resets on server restart, so an update that leaves the row count alone within
    the same second as the previous change can be missed until the next change.
    """

    port: int = Field(default=3306, description="Server TCP port.")

    kind: ClassVar[str] = "mysql"
    dialect: ClassVar[str] = "mysql"

    driver: ClassVar[str] = "mysql+pymysql"
    url_query: ClassVar[dict[str, str]] = {"charset": "utf8mb4"}

    def _engine_options(self) -> dict[str, Any]:
        connect_args: dict[str, Any] = {
            "connect_timeout": self.connect_timeout_seconds,
            # PyMySQL's connect_timeout covers only the TCP connect; the handshake reads with
            # read_timeout, so it starts at the connect bound and is raised once connected.
            "read_timeout": self.connect_timeout_seconds,
            "write_timeout": 600,
        }
        return {"connect_args": connect_args}

    def _prepare_engine(self, engine: sa.Engine) -> None:
        sa_event.listen(engine, "connect", self._configure_session)

    def _configure_session(self, dbapi_connection: Any, _record: Any) -> None:
        """Set the statement timeout in the variable this server flavour understands."""
        server = dbapi_connection.get_server_info()
        is_mariadb = "mariadb" in server.lower()
        major = int(match.group(1)) if (match := re.match(r"(\d+)\.", server)) else 0
        timeout = self.statement_timeout_seconds
        cursor = dbapi_connection.cursor()
        try:
            if is_mariadb:
                cursor.execute("SET SESSION max_statement_time = %s", (timeout,))
            else:
                cursor.execute("SET SESSION max_execution_time = %s", (timeout * 1000,))
            if major >= 8 and not is_mariadb:
                # MySQL 8 caches information_schema statistics for a day by default.
                cursor.execute("SET SESSION information_schema_stats_expiry = 0")
            if timeout:
                # A streamed result whose reader pauses between batches must not be cut off
                # after the server's 60 s default.
                cursor.execute("SET SESSION net_write_timeout = %s", (timeout,))
        finally:
            cursor.close()
        # A socket read may wait as long as the server may run one statement, and no longer.
        dbapi_connection._read_timeout = timeout + 60 if timeout else None

    def _classify(self, exc: sa_exc.DBAPIError) -> tuple[str, str]:
        args = getattr(exc.orig, "args", ())
        code = args[0] if args and isinstance(args[0], int) else None
        text = str(exc.orig or exc).lower()
        if code in (1969, 3024):
            return "statement timed out", _STATEMENT_TIMEOUT_ADVICE
        if code in (1045, 1698, 1251, 2059):
            return "authentication failed", _AUTH_ADVICE
        if code == 1049:
            return "database not found", f"check that database '{self.database}' exists"
        if code in (1044, 1142, 1143, 1227):
            return "permission denied", _PERMISSION_ADVICE
        if "timed out" in text:
            if exc.statement is None:
                return "timed out connecting", _TIMEOUT_ADVICE
            # The socket read waits statement_timeout_seconds + 60 s (see _configure_session).
            return "statement timed out", _STATEMENT_TIMEOUT_ADVICE
        if code == 2005 or "name or service not known" in text:
            return "unreachable (host name not found)", "check the host name"
        if code in (2003, 2006, 2013) or (
            isinstance(exc, sa_exc.OperationalError) and code is None
        ):
            return "unreachable", _REACH_ADVICE
        return "query failed", _QUERY_ADVICE

    def _table_fingerprint_parts(
        self, conn: sa.Connection, table: str, schema: str | None
    ) -> dict[str, Any]:
        stats = conn.execute(
            sa.text(
                "SELECT TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, AUTO_INCREMENT, CREATE_TIME, "
                "UPDATE_TIME, CHECKSUM FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table "
                "AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')"
            ),
            {"schema": schema, "table": table},
        ).one_or_none()
        if stats is None:
            raise self._missing_table(table, schema)
        if int(stats.DATA_LENGTH or 0) <= self.exact_fingerprint_max_bytes:
            checksum = conn.execute(
                sa.text(f"CHECKSUM TABLE {self._qualified(table, schema)}")
            ).one()[1]
            return {"mode": "content", "checksum": checksum}
        return {"mode": "statistics", "tables_row": [str(value) for value in stats]}
