"""A job that uses a datastore with a secret the way users do, for the leak test to search.

Module level so that `dg.reconstructable` can rebuild it in run worker processes, where compute
logs are captured to files.
"""

import os

import dagster as dg

from ingestion_project.datastores.sql import MySqlDatastore, SqlDatastore

MARKER = "leak-test-stdout-marker"


@dg.asset
def reads_with_secret(context: dg.AssetExecutionContext, warehouse: SqlDatastore):
    """Logs, prints and records metadata about the store: none of it may carry the password."""
    who = warehouse.read_sql("select current_user() as who").iloc[0, 0]
    context.log.info(f"connected to {warehouse.describe()} as {who}: {warehouse!r}")
    print(MARKER, repr(warehouse), str(warehouse))  # noqa: T201 - user code prints too
    return dg.MaterializeResult(metadata={"store": warehouse.describe(), "who": str(who)})


@dg.asset(deps=[reads_with_secret])
def fails_with_wrong_secret(warehouse_bad: SqlDatastore) -> None:
    """Fails to log in: the error travels through the event log and compute logs."""
    warehouse_bad.check()


def _store(name: str, password_env: str) -> MySqlDatastore:
    return MySqlDatastore(
        name=name,
        host="127.0.0.1",
        database="test",
        user=os.environ["LEAK_TEST_USER"],
        password=dg.EnvVar(password_env),
    )


def make_job() -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[reads_with_secret, fails_with_wrong_secret],
        jobs=[dg.define_asset_job("leak_job")],
        resources={
            "warehouse": _store("warehouse", "LEAK_TEST_RIGHT_PASSWORD"),
            "warehouse_bad": _store("warehouse_bad", "LEAK_TEST_WRONG_PASSWORD"),
        },
    )
    return defs.resolve_job_def("leak_job")
