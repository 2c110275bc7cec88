"""The machine's PostgreSQL server: a fresh database per test, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2
import pytest
from psycopg2 import sql

from ingestion_project_tests.servers import require_tcp_server

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
PG_ADMIN_DB = "test"


def _admin_connection() -> psycopg2.extensions.connection:
    connection = psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_ADMIN_DB, connect_timeout=5
    )
    connection.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction.
    return connection


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A uniquely named, empty database, dropped afterwards, so parallel runs never collide."""
    require_tcp_server(PG_HOST, PG_PORT, "PostgreSQL")
    name = f"ingestion_deploy_{uuid.uuid4().hex[:8]}"
    admin = _admin_connection()
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield name
    finally:
        with admin.cursor() as cursor:
            # FORCE ends connections a leaked engine pool might still hold.
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        admin.close()
