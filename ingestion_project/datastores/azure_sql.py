"""Azure SQL Database (or any SQL Server 2012+) through pymssql and SQLAlchemy's mssql dialect.

pymssql speaks TDS through FreeTDS. Its parameters are quoted into the batch by the driver
(strings as ``N'...'`` with quotes doubled), so values never pass through our string formatting;
table and schema names are checked as plain identifiers and bracket-quoted by the dialect.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc

from ingestion_project.datastores.base import DatastoreError
from ingestion_project.datastores.sql import ServerSqlDatastore

_AUTH_ADVICE = (
    "check the user, the password environment variable and that database '{database}' exists "
    "(SQL Server reports a missing database as a failed login)"
)
_REACH_ADVICE = "check the host is reachable, the port is right and the server is running"
_HANDSHAKE_ADVICE = (
    "check the host and port, and that the server accepts encryption='{encryption}' "
    "(Azure SQL Database requires 'require')"
)
_TIMEOUT_ADVICE = (
    "check the host is reachable (for Azure SQL, that the server firewall admits this client) "
    "or raise connect_timeout_seconds"
)
_STATEMENT_TIMEOUT_ADVICE = "make the query cheaper or raise statement_timeout_seconds"
_PERMISSION_ADVICE = "grant the user access to the objects the query reads"
_ACTION_PERMISSION_ADVICE = (
    "grant the user the permission the statement needs (sys.dm_* views need VIEW DATABASE STATE)"
)
_STATE_ADVICE = (
    "GRANT VIEW DATABASE STATE TO the user, enable change tracking on the table, or raise "
    "exact_fingerprint_max_bytes so the table is fingerprinted from its content"
)
_QUERY_ADVICE = "fix the query, table or parameter names"

# SQL Server message numbers that pymssql reports as the error number.
_LOGIN_FAILED = 18456
_CANNOT_OPEN_DATABASE = 4060
_NO_PERMISSION_FOR_ACTION = 297
_PERMISSION_NUMBERS = frozenset({229, 230, 262, _NO_PERMISSION_FOR_ACTION, 300})
_UNREACHABLE_MARKERS = (
    "unable to connect",
    "is unavailable or does not exist",
    "connection refused",
    "name or service not known",
)
_PERMISSION_MARKERS = ("permission was denied", "permission denied", "does not have permission")

_TABLE = (
    "SELECT t.object_id, s.name, CONVERT(varchar(33), t.modify_date, 126) "
    "FROM sys.tables AS t JOIN sys.schemas AS s ON s.schema_id = t.schema_id "
    "WHERE t.name = :table AND s.name = COALESCE(:schema, SCHEMA_NAME())"
)
# Catalog views, readable by anyone who can see the table: no VIEW DATABASE STATE needed.
_PARTITIONS = (
    "SELECT p.partition_id, p.index_id, p.partition_number, p.rows, "
    "COALESCE(SUM(au.used_pages), 0) "
    "FROM sys.partitions AS p LEFT JOIN sys.allocation_units AS au "
    "ON au.container_id = p.partition_id "
    "WHERE p.object_id = :object_id "
    "GROUP BY p.partition_id, p.index_id, p.partition_number, p.rows ORDER BY p.partition_id"
)
_CAN_VIEW_STATE = (
    "SELECT COALESCE(HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'VIEW DATABASE STATE'), 0), "
    "CASE WHEN EXISTS (SELECT 1 FROM sys.change_tracking_tables "
    "WHERE object_id = :object_id) THEN 1 ELSE 0 END"
)
_USAGE = (
    "SELECT index_id, user_updates, CONVERT(varchar(33), last_user_update, 126) "
    "FROM sys.dm_db_index_usage_stats "
    "WHERE database_id = DB_ID() AND object_id = :object_id ORDER BY index_id"
)
_CHANGE_TRACKING = (
    "SELECT CHANGE_TRACKING_CURRENT_VERSION(), CHANGE_TRACKING_MIN_VALID_VERSION(:object_id)"
)
_LIST_TABLES = (
    "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES "
    "WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA = COALESCE(:schema, SCHEMA_NAME())"
)
_SCHEMA_EXISTS = "SELECT COUNT(*) FROM sys.schemas WHERE name = :schema"


class AzureSqlDatastore(ServerSqlDatastore):
    """Azure SQL Database or SQL Server with SQL authentication, over an encrypted TDS 7.4 link.

    Bounds: ``connect_timeout_seconds`` is pymssql's ``login_timeout`` (TCP connect and login);
    pinning TDS 7.4 keeps FreeTDS from retrying the login once per protocol version (which
    multiplies the bound). ``statement_timeout_seconds`` is FreeTDS's query timeout: SQL Server
    has no server-side statement limit, so the client gives up, cancels and drops the connection.
    FreeTDS keeps one query timeout per process, so it is set again before every statement.
    ``encryption='require'`` encrypts the link; FreeTDS verifies the server certificate only when
    a freetds.conf names a ``ca file``.

    Streaming: the dialect has no server-side cursors (``stream_results`` is a no-op), but pymssql
    reads rows off the socket only as they are fetched, so ``iter_batches`` holds one batch; closing
    it early makes FreeTDS send a TDS attention, which cancels the query on the server.

    Table fingerprints: tables whose used pages (``sys.allocation_units``, data, indexes and LOB)
    fit in ``exact_fingerprint_max_bytes`` hash ``COUNT_BIG(*)`` and
    ``CHECKSUM_AGG(BINARY_CHECKSUM(*))``, a full scan; BINARY_CHECKSUM skips text/ntext/image/xml
    columns and an aggregate of checksums can in rare cases miss a change (e.g. two rows swapping
    values). Larger tables hash, without reading them, ``modify_date``, per-partition rows and used
    pages, and either ``sys.dm_db_index_usage_stats`` (``user_updates``, ``last_user_update``:
    per table, immediate, reset by a restart, needs VIEW DATABASE STATE) or, when the table is
    change-tracked and that permission is missing, the database's change tracking version (also
    moves when other tracked tables change). Without either it refuses rather than miss updates.
    """

    port: int = Field(default=1433, description="Server TCP port.")
    encryption: Literal["require", "request", "off"] = Field(
        default="require",
        description="FreeTDS encryption level; Azure SQL Database refuses unencrypted logins.",
    )
    tds_version: Literal["7.4", "7.3"] = Field(
        default="7.4",
        description="TDS protocol version: 7.4 for SQL Server 2012+ and Azure, 7.3 for 2008.",
    )

    kind: ClassVar[str] = "azure_sql"
    dialect: ClassVar[str] = "mssql"
    driver: ClassVar[str] = "mssql+pymssql"

    def _engine_options(self) -> dict[str, Any]:
        connect_args: dict[str, Any] = {
            "login_timeout": self.connect_timeout_seconds,
            "timeout": self.statement_timeout_seconds,
            "tds_version": self.tds_version,
            "encryption": self.encryption,
            "appname": f"ingestion_project:{self.name}"[:128],
        }
        return {"connect_args": connect_args}

    def _prepare_engine(self, engine: sa.Engine) -> None:
        sa_event.listen(engine, "before_cursor_execute", self._set_query_timeout)

    def _set_query_timeout(self, _conn: Any, cursor: Any, *_args: Any) -> None:
        """FreeTDS's dbsettime is process-wide: claim this store's bound for this statement."""
        cursor.connection._conn.query_timeout = self.statement_timeout_seconds

    def _classify(self, exc: sa_exc.DBAPIError) -> tuple[str, str]:
        number, text = _driver_error(exc)
        lowered = text.lower()
        connecting = exc.statement is None
        if "timed out" in lowered or "message 20003," in lowered:
            if connecting:
                return "timed out connecting", _TIMEOUT_ADVICE
            return "statement timed out", _STATEMENT_TIMEOUT_ADVICE
        if number == _CANNOT_OPEN_DATABASE or "cannot open database" in lowered:
            return "database not found", f"check that database '{self.database}' exists"
        auth_advice = _AUTH_ADVICE.format(database=self.database)
        if number == _LOGIN_FAILED or "login failed" in lowered:
            return "authentication failed", auth_advice
        if number in _PERMISSION_NUMBERS or any(m in lowered for m in _PERMISSION_MARKERS):
            if "view database state" in lowered:
                return "permission denied", _STATE_ADVICE
            if number == _NO_PERMISSION_FOR_ACTION:
                # pymssql keeps only this last message; the one before named the permission.
                return "permission denied", _ACTION_PERMISSION_ADVICE
            return "permission denied", _PERMISSION_ADVICE
        if any(marker in lowered for marker in _UNREACHABLE_MARKERS):
            return "unreachable", _REACH_ADVICE
        if connecting and "message 20018, severity 14" in lowered:
            # The server refused the login but pymssql lost its text (see _driver_error).
            return "authentication failed", auth_advice
        if connecting and isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return "unreachable", _HANDSHAKE_ADVICE.format(encryption=self.encryption)
        return "query failed", _QUERY_ADVICE

    def list_tables(self, schema: str | None = None) -> list[str]:
        """Sorted base tables of ``schema``, default the user's default schema (normally dbo)."""
        if schema is not None:
            self._identifier(schema, "schema")
        with self._translating_errors("listing tables"), self._engine().connect() as conn:
            if (
                schema is not None
                and not conn.execute(sa.text(_SCHEMA_EXISTS), {"schema": schema}).scalar_one()
            ):
                raise DatastoreError(
                    f"datastore '{self.name}' ({self.describe()}): schema '{schema}' does not "
                    "exist. Check the schema name in the catalog.",
                    reason="not found",
                )
            names = conn.execute(sa.text(_LIST_TABLES), {"schema": schema}).scalars().all()
        return sorted(names)

    def _table_fingerprint_parts(
        self, conn: sa.Connection, table: str, schema: str | None
    ) -> dict[str, Any]:
        target = conn.execute(sa.text(_TABLE), {"table": table, "schema": schema}).one_or_none()
        if target is None:
            raise self._missing_table(table, schema)
        object_id, resolved_schema, modified = target
        partitions = [
            [int(value) for value in row]
            for row in conn.execute(sa.text(_PARTITIONS), {"object_id": object_id})
        ]
        catalog = {"object_id": int(object_id), "modified": modified, "partitions": partitions}
        if sum(row[4] for row in partitions) * 8192 <= self.exact_fingerprint_max_bytes:
            # The schema the lookup resolved, so the default schema cannot point the read elsewhere.
            quote = conn.dialect.identifier_preparer.quote_identifier
            qualified = f"{quote(resolved_schema)}.{self._identifier(table, 'table')}"
            count, checksum = conn.execute(
                sa.text(f"SELECT COUNT_BIG(*), CHECKSUM_AGG(BINARY_CHECKSUM(*)) FROM {qualified}")
            ).one()
            return {"mode": "content", "rows": int(count), "checksum": checksum, **catalog}
        can_view_state, tracked = conn.execute(
            sa.text(_CAN_VIEW_STATE), {"object_id": object_id}
        ).one()
        if can_view_state:
            usage = conn.execute(sa.text(_USAGE), {"object_id": object_id}).all()
            return {"mode": "usage", "usage": [list(row) for row in usage], **catalog}
        if tracked:
            versions = conn.execute(sa.text(_CHANGE_TRACKING), {"object_id": object_id}).one()
            return {"mode": "change_tracking", "versions": list(versions), **catalog}
        raise DatastoreError(
            f"datastore '{self.name}' ({self.describe()}): table '{table}' is larger than "
            "exact_fingerprint_max_bytes and the user may not read index usage statistics, so "
            f"updates cannot be seen cheaply. To fix: {_STATE_ADVICE}.",
            reason="permission denied",
        )


def _driver_error(exc: sa_exc.DBAPIError) -> tuple[int | None, str]:
    """The error number and message pymssql gave, the number only when it can be trusted.

    Connect errors carry ``((number, message),)``, statement errors ``(number, message)``.
    pymssql keeps the highest severity seen per process, so after one failed login later errors
    may carry that stale number and lose the server's text: a message that starts with FreeTDS's
    own "DB-Lib error message" has no server text, and its number is ignored.
    """
    args: tuple[Any, ...] = tuple(getattr(exc.orig, "args", ()))
    if len(args) == 1 and isinstance(args[0], tuple):
        args = args[0]
    raw = args[1] if len(args) > 1 else (args[0] if args else str(exc.orig or exc))
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    number = args[0] if args and isinstance(args[0], int) else None
    if text.startswith("DB-Lib error message"):
        number = None
    return number, text
