"""Every datastore kind declared in YAML becomes its ConfigurableResource, secrets as EnvVars."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from ingestion_project.catalog.parse import parse_catalog
from ingestion_project.datastores.adls_gen2 import AdlsGen2Datastore
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_file_share import AzureFileShareDatastore
from ingestion_project.datastores.azure_sql import AzureSqlDatastore
from ingestion_project.datastores.dbfs import DbfsDatastore
from ingestion_project.datastores.factory import build_datastore
from ingestion_project.datastores.http import HttpDatastore
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.datastores.sql import MySqlDatastore, PostgresDatastore

AZURE = {"account_url": "https://acct.blob.core.windows.net"}
CASES = {
    "local": ({"kind": "local", "root": "raw"}, LocalDatastore, {}),
    "azure_blob": (
        {
            **AZURE,
            "kind": "azure_blob",
            "container": "raw",
            "credential": {"account_key": {"env": "F_KEY"}},
        },
        AzureBlobDatastore,
        {"account_key": "F_KEY"},
    ),
    "azure_file_share": (
        {
            **AZURE,
            "kind": "azure_file_share",
            "share": "s",
            "credential": {"sas_token": {"env": "F_SAS"}},
        },
        AzureFileShareDatastore,
        {"sas_token": "F_SAS"},
    ),
    "adls_gen2": (
        {
            "kind": "adls_gen2",
            "account_url": "https://acct.dfs.core.windows.net",
            "filesystem": "lake",
            "credential": {
                "service_principal": {
                    "tenant_id": "t",
                    "client_id": "c",
                    "client_secret": {"env": "F_SP"},
                }
            },
        },
        AdlsGen2Datastore,
        {"client_secret": "F_SP"},
    ),
    "azure_sql": (
        {
            "kind": "azure_sql",
            "host": "s.database.windows.net",
            "database": "d",
            "user": "u",
            "password": {"env": "F_PW"},
        },
        AzureSqlDatastore,
        {"password": "F_PW"},
    ),
    "postgresql": (
        {
            "kind": "postgresql",
            "host": "h",
            "database": "d",
            "user": "u",
            "password": {"env": "F_PW"},
        },
        PostgresDatastore,
        {"password": "F_PW"},
    ),
    "mysql": ({"kind": "mysql", "host": "h", "database": "d", "user": "u"}, MySqlDatastore, {}),
    "dbfs": (
        {
            "kind": "dbfs",
            "host": "https://adb-1.azuredatabricks.net",
            "token": {"env": "F_TOKEN"},
            "root": "/mnt/raw",
        },
        DbfsDatastore,
        {"token": "F_TOKEN"},
    ),
    "http": ({"kind": "http", "base_url": "https://example.org/open/"}, HttpDatastore, {}),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_kind_builds_its_resource_with_env_var_secrets(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, resource_type, secrets = CASES[kind]
    for variable in secrets.values():
        monkeypatch.setenv(variable, f"value-of-{variable}")
    catalog = parse_catalog({"datastores": {"store": entry}}, source="defs.yaml")

    resource = build_datastore("store", catalog.datastores["store"], tmp_path)

    assert isinstance(resource, resource_type)
    assert isinstance(resource, dg.ConfigurableResource)
    for field, variable in secrets.items():
        value = getattr(resource, field)
        assert isinstance(value, dg.EnvVar) and value.env_var_name == variable
        assert f"value-of-{variable}" not in repr(resource)
        assert f"value-of-{variable}" not in resource.describe()


def test_workspace_default_always_exists(tmp_path: Path) -> None:
    catalog = parse_catalog({}, source="defs.yaml")
    store = build_datastore("workspace_default", catalog.datastores["workspace_default"], tmp_path)
    assert isinstance(store, LocalDatastore)
    assert Path(store.root) == tmp_path / "datastores" / "workspace_default"
