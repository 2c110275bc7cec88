"""Build the Dagster resource for each declared datastore; secrets stay environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from ingestion_project.catalog.spec import (
    AdlsGen2DatastoreSpec,
    AzureBlobDatastoreSpec,
    AzureFileShareDatastoreSpec,
    AzureSqlDatastoreSpec,
    AzureStorageSpec,
    DbfsDatastoreSpec,
    HttpDatastoreSpec,
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


def secret(ref: SecretRef | None) -> Any:
    """An EnvVar is resolved at run time and masked by Dagster; the value never enters config."""
    return dg.EnvVar(ref.env) if ref else None


def azure_credential_fields(spec: AzureStorageSpec) -> dict[str, Any]:
    credential = spec.credential
    principal = credential.service_principal
    return {
        "account_key": secret(credential.account_key),
        "sas_token": secret(credential.sas_token),
        "connection_string": secret(credential.connection_string),
        "tenant_id": principal.tenant_id if principal else None,
        "client_id": principal.client_id if principal else None,
        "client_secret": secret(principal.client_secret) if principal else None,
        "account_url": spec.account_url,
        "prefix": spec.prefix,
        "timeout_seconds": spec.timeout_seconds,
    }


def build_datastore(name: str, spec: Any, home: Path) -> dg.ConfigurableResource:
    """One resource per catalog entry; client libraries are imported only for kinds in use."""
    if isinstance(spec, LocalDatastoreSpec):
        return LocalDatastore(name=name, root=local_root(name, spec, home))
    if isinstance(spec, AzureBlobDatastoreSpec):
        from ingestion_project.datastores.azure_blob import AzureBlobDatastore

        return AzureBlobDatastore(
            name=name, container=spec.container, **azure_credential_fields(spec)
        )
    if isinstance(spec, AzureFileShareDatastoreSpec):
        from ingestion_project.datastores.azure_file_share import AzureFileShareDatastore

        return AzureFileShareDatastore(name=name, share=spec.share, **azure_credential_fields(spec))
    if isinstance(spec, AdlsGen2DatastoreSpec):
        from ingestion_project.datastores.adls_gen2 import AdlsGen2Datastore

        return AdlsGen2Datastore(
            name=name,
            filesystem=spec.filesystem,
            endpoint=spec.endpoint,
            **azure_credential_fields(spec),
        )
    if isinstance(spec, DbfsDatastoreSpec):
        from ingestion_project.datastores.dbfs import DbfsDatastore

        return DbfsDatastore(
            name=name,
            host=spec.host,
            token=secret(spec.token),
            root=spec.root,
            timeout_seconds=spec.timeout_seconds,
        )
    if isinstance(spec, HttpDatastoreSpec):
        from ingestion_project.datastores.http import HttpDatastore

        return HttpDatastore(
            name=name, base_url=spec.base_url, timeout_seconds=spec.timeout_seconds
        )
    if isinstance(spec, AzureSqlDatastoreSpec):
        from ingestion_project.datastores.azure_sql import AzureSqlDatastore

        sql_type: Any = AzureSqlDatastore
    elif isinstance(spec, PostgresDatastoreSpec):
        from ingestion_project.datastores.sql import PostgresDatastore

        sql_type = PostgresDatastore
    elif isinstance(spec, MySqlDatastoreSpec):
        from ingestion_project.datastores.sql import MySqlDatastore

        sql_type = MySqlDatastore
    else:
        raise TypeError(f"no datastore resource for {type(spec).__name__}")
    return sql_type(
        name=name,
        host=spec.host,
        port=spec.port,
        database=spec.database,
        user=spec.user,
        password=secret(spec.password),
    )
