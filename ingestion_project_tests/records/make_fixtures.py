"""Write the version records of one release, to keep as compatibility fixtures.

Run it from the project's folder on the release whose records must keep loading:

    .venv/bin/python -m ingestion_project_tests.records.make_fixtures <target folder>

It materializes small datasets through Dagster (a CSV dataset in reference mode with two
versions, the same files in snapshot mode, a ``kind: file`` dataset, a SQL query on the local
PostgreSQL) and trains the demo model twice, then copies the records, the small data files and
the snapshot copies they pin into ``<target folder>/store``: the registry's own datastore. Model
artifacts and the demo's bike data are left out; their records are kept.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from ingestion_project_tests.catalogs import project_definitions, write_project

TABLE = "records_fixture_orders"
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
CATALOG = {
    "datastores": {
        "workspace_default": {"kind": "local"},
        "warehouse": {
            "kind": "postgresql",
            "host": "127.0.0.1",
            "database": "test",
            "user": "postgres",
        },
    },
    "datasets": {
        "trips": {
            "description": "Bike trips, one CSV a day.",
            "path": "trips/*.csv",
            "column_types": {"trip_id": "string", "station": "category"},
            "timestamp_column": "started_at",
            "path_column": "source_file",
            "tags": {"domain": "mobility"},
        },
        "trips_snapshot": {"path": "trips/*.csv", "mode": "snapshot"},
        "photos": {"kind": "file", "path": "photos/*.txt"},
        "orders": {
            "datastore": "warehouse",
            "query": f"SELECT id, name, amount FROM {TABLE} WHERE amount > :minimum ORDER BY id",
            "params": {"minimum": 1},
            "tables": [TABLE],
        },
    },
}
DAY_1 = "trip_id,started_at,station,duration_min\n007,2024-05-01 08:00:00,north,12\n"
DAY_1 += "008,2024-05-01 09:30:00,south,7.5\n"
DAY_2 = "trip_id,started_at,station,duration_min\n009,2024-05-02 07:45:00,north,20\n"
DAY_3 = "trip_id,started_at,station,duration_min\n010,2024-05-03 18:10:00,east,3\n"


def materialize(defs: dg.Definitions, instance: dg.DagsterInstance, *names: str) -> None:
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey(name) for name in names]
    )
    if not result.success:
        raise RuntimeError(f"materializing {names} failed")


def write(root: Path, relative: str, text: str) -> None:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def datasets(home: Path) -> None:
    store = home / "datastores" / "workspace_default"
    write(store, "trips/2024-05-01.csv", DAY_1)
    write(store, "trips/2024-05-02.csv", DAY_2)
    write(store, "photos/a.txt", "a photo\n")
    engine = sa.create_engine(POSTGRES)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        conn.execute(
            sa.text(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, name text, amount numeric(8, 2))")
        )
        conn.execute(sa.text(f"INSERT INTO {TABLE} VALUES (1, 'anna', 9.5), (2, NULL, 12.25)"))
    try:
        defs = project_definitions(write_project(home / "project", {"catalog": CATALOG}))
        instance = dg.DagsterInstance.ephemeral()
        materialize(defs, instance, "trips", "trips_snapshot", "photos", "orders")
        write(store, "trips/2024-05-03.csv", DAY_3)
        materialize(defs, instance, "trips")
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        engine.dispose()


def demo_model(home: Path) -> None:
    from ingestion_project.catalog.definitions import retrain_job_name
    from ingestion_project.demo.loop import DEMO_DATA, HISTORY, MODEL, demo_definitions

    history = home / "datastores" / "workspace_default" / HISTORY
    history.mkdir(parents=True)
    instance = dg.DagsterInstance.ephemeral()
    for months in ((1, 2, 3), (4,)):
        for month in months:
            shutil.copy2(DEMO_DATA / f"2011-{month:02d}.csv", history)
        job = demo_definitions().resolve_job_def(retrain_job_name(MODEL))
        if not job.execute_in_process(instance=instance).success:
            raise RuntimeError("training the demo model failed")


def keep(home: Path, target: Path) -> None:
    """Copy what the fixtures need, keeping each file's modification time (its local ETag)."""
    source = home / "datastores" / "workspace_default"
    registry = source / "_registry"
    wanted = [
        *(source / "trips").glob("*.csv"),
        *(source / "photos").glob("*.txt"),
        *registry.glob("datasets/*/v*.json"),
        *registry.glob("models/*/*.json"),
        *(path for path in registry.glob("snapshots/**/*") if path.is_file()),
    ]
    for path in wanted:
        destination = target / "store" / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def main(target: Path) -> None:
    with tempfile.TemporaryDirectory() as temp:
        home = Path(temp)
        os.environ["INGESTION_HOME"] = str(home)
        datasets(home)
        demo_model(home)
        keep(home, target)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
