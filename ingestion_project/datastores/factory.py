"""Build the Dagster resource for each declared datastore; secrets stay environment variables."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ingestion_project.catalog.spec import (
    LocalDatastoreSpec,
    MySqlDatastoreSpec,
    PostgresDatastoreSpec,
    SecretRef,
)
from ingestion_project.datastores.local import LocalDatastore


def local_root(name: str, spec: LocalDatastoreSpec, home: Path) -> str:
    """Relative roots live under the ingestion home; absolute ones are taken as they are."""
    root = Path(spec.root) if spec.root else Path("datastores") / name
    return str(root if root.is_absolute() else (home / root).resolve())


def secret(ref: SecretRef | None) -> dg.EnvVar | None:
    """An EnvVar is resolved at run time and masked by Dagster; the value never enters config."""
    return dg.EnvVar(ref.env) if ref else None


def build_datastore(
    name: str, spec: LocalDatastoreSpec | PostgresDatastoreSpec | MySqlDatastoreSpec, home: Path
) -> dg.ConfigurableResource:
    if isinstance(spec, LocalDatastoreSpec):
        return LocalDatastore(name=name, root=local_root(name, spec, home))
    from ingestion_project.datastores.sql import MySqlDatastore, PostgresDatastore

    sql_type = PostgresDatastore if isinstance(spec, PostgresDatastoreSpec) else MySqlDatastore
    return sql_type(
        name=name,
        host=spec.host,
        port=spec.port,
        database=spec.database,
        user=spec.user,
        password=secret(spec.password),  # type: ignore[arg-type]
    )
