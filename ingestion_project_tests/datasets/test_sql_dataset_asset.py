"""A SQL query dataset declared in YAML: asset, versions, sensor, against the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from ingestion_project.datasets.api import Workspace
from ingestion_project_tests.catalogs import (
    catalog_definitions,
    materialization_metadata,
    materialize,
    write_project,
)
from ingestion_project_tests.servers import require_tcp_server


@pytest.fixture
def orders_table() -> Iterator[tuple[str, sa.Engine]]:
    require_tcp_server("127.0.0.1", 5432, "PostgreSQL")
    engine = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    table = f"orders_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (id int PRIMARY KEY, amount float)"))
        conn.execute(sa.text(f"INSERT INTO {table} VALUES (1, 9.5), (2, 12.0)"))
    yield table, engine
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


def test_sql_dataset_materializes_versions_and_has_a_change_sensor(
    tmp_path: Path, orders_table: tuple[str, sa.Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    table, engine = orders_table
    raw = {
        "datastores": {
            "warehouse": {
                "kind": "postgresql",
                "host": "127.0.0.1",
                "database": "test",
                "user": "postgres",
            }
        },
        "datasets": {
            "orders": {
                "datastore": "warehouse",
                "query": f"select id, amount from {table} where amount > :minimum order by id",
                "params": {"minimum": 1},
                "tables": [table],
                "trigger": {"data_change": {"every": "30s"}},
            }
        },
    }
    defs = catalog_definitions(raw)
    assert "defs__catalog__data_change_every_30s" in {sensor.name for sensor in defs.sensors or []}
    instance = dg.DagsterInstance.ephemeral()

    first = materialize(defs, "orders", instance=instance)
    with engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO {table} VALUES (3, 40.0)"))
    second = materialize(defs, "orders", instance=instance)
    assert first.success and second.success
    metadata = materialization_metadata(second, "orders")
    assert metadata["version"] == 2
    assert metadata["mode"] == "snapshot"
    assert "order by id" in str(metadata["query"])

    with engine.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {table}"))
    project = write_project(tmp_path / "project", {"catalog": raw})
    workspace = Workspace.load(project, home=tmp_path)
    # Snapshots stay readable after the table was emptied: versions are immutable.
    assert workspace.get("orders", 1).to_pandas()["id"].tolist() == [1, 2]
    assert workspace.get("orders").to_pandas()["amount"].tolist() == [9.5, 12.0, 40.0]
