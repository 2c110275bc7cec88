"""Every datastore kind declared in YAML becomes its ConfigurableResource, secrets as EnvVars.

The YAML entry of each kind is derived from its resource class, so every setting of the class
(timeouts, retries...) is settable in a catalog, and nothing is copied by hand.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from pydantic import BaseModel

from ingestion_project.catalog.datastore_entries import DATASTORE_TYPES, entry_model
from ingestion_project.datastores.adls_gen2 import AdlsGen2Datastore
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_file_share import AzureFileShareDatastore
from ingestion_project.datastores.azure_sql import AzureSqlDatastore
from ingestion_project.datastores.base import is_secret_field
from ingestion_project.datastores.dbfs import DbfsDatastore
from ingestion_project.datastores.http import HttpDatastore
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.datastores.sql import MySqlDatastore, PostgresDatastore
from ingestion_project_tests.catalogs import project_catalog_of

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
        {"credential.account_key": "F_KEY"},
    ),
    "azure_file_share": (
        {
            **AZURE,
            "kind": "azure_file_share",
            "share": "s",
            "credential": {"sas_token": {"env": "F_SAS"}},
        },
        AzureFileShareDatastore,
        {"credential.sas_token": "F_SAS"},
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
        {"credential.service_principal.client_secret": "F_SP"},
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
    catalog = project_catalog_of({"datastores": {"store": entry}})

    resource = catalog.resources["store"]

    assert isinstance(resource, resource_type)
    assert isinstance(resource, dg.ConfigurableResource)
    for field, variable in secrets.items():
        value = resource
        for part in field.split("."):
            value = getattr(value, part)
        assert isinstance(value, dg.EnvVar) and value.env_var_name == variable
        assert f"value-of-{variable}" not in repr(resource)
        assert f"value-of-{variable}" not in resource.describe()


def test_workspace_default_always_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    store = project_catalog_of({}).resources["workspace_default"]
    assert isinstance(store, LocalDatastore)
    assert Path(store.root) == tmp_path / "datastores" / "workspace_default"


@pytest.mark.parametrize("store_type", DATASTORE_TYPES, ids=lambda t: t.kind)
def test_every_field_of_a_resource_class_is_a_catalog_key(store_type: type[BaseModel]) -> None:
    entry = entry_model(store_type)

    assert set(entry.model_fields) == {"kind"} | (set(store_type.model_fields) - {"name"})
    for name, field in store_type.model_fields.items():
        if is_secret_field(field):
            assert "SecretRef" in str(entry.model_fields[name].annotation), name


def test_settings_an_error_recommends_can_be_set_in_a_catalog() -> None:
    # A silent server's error says "raise connect_timeout_seconds": a catalog must accept it.
    catalog = project_catalog_of(
        {
            "datastores": {
                "warehouse": {
                    "kind": "postgresql",
                    "host": "h",
                    "database": "d",
                    "user": "u",
                    "connect_timeout_seconds": 3,
                    "statement_timeout_seconds": 60,
                },
                "lake": {
                    "kind": "azure_blob",
                    "account_url": "https://acct.blob.core.windows.net",
                    "container": "raw",
                    "timeout_seconds": 5,
                    "max_retries": 1,
                },
            }
        }
    )

    warehouse = catalog.resources["warehouse"]
    assert (warehouse.connect_timeout_seconds, warehouse.statement_timeout_seconds) == (3, 60)
    assert (catalog.resources["lake"].timeout_seconds, catalog.resources["lake"].max_retries) == (
        5,
        1,
    )
