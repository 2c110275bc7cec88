"""Catalog entries for datastores, derived from the resource classes: each field is written once.

A datastore's settings live on its ``ConfigurableResource`` class (type, default, bounds,
description). The YAML entry of a kind is derived from that class: the same fields, plus
``kind``, minus ``name`` (the entry's key), with every secret field taking ``{env: NAME}`` only.
A new kind is one resource class and one line in ``DATASTORE_TYPES``.
"""

from __future__ import annotations

import functools
import types
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from ingestion_project.catalog.spec import SecretRef
from ingestion_project.datastores.adls_gen2 import AdlsGen2Datastore
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_file_share import AzureFileShareDatastore
from ingestion_project.datastores.azure_sql import AzureSqlDatastore
from ingestion_project.datastores.base import CatalogDatastore, FileDatastore, is_secret_field
from ingestion_project.datastores.dbfs import DbfsDatastore
from ingestion_project.datastores.http import HttpDatastore
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.datastores.sql import MySqlDatastore, PostgresDatastore

DATASTORE_TYPES: tuple[type[CatalogDatastore], ...] = (
    LocalDatastore,
    AzureBlobDatastore,
    AzureFileShareDatastore,
    AdlsGen2Datastore,
    PostgresDatastore,
    MySqlDatastore,
    AzureSqlDatastore,
    DbfsDatastore,
    HttpDatastore,
)
DATASTORE_KINDS: dict[str, type[CatalogDatastore]] = {
    store_type.kind: store_type for store_type in DATASTORE_TYPES
}
FILE_DATASTORE_KINDS = frozenset(
    kind for kind, store_type in DATASTORE_KINDS.items() if issubclass(store_type, FileDatastore)
)
SQL_DATASTORE_KINDS = frozenset(DATASTORE_KINDS) - FILE_DATASTORE_KINDS
# Event Grid reports Blob Created/Deleted for Blob Storage and Data Lake Gen2 accounts only.
STORAGE_EVENT_KINDS = frozenset({"azure_blob", "adls_gen2"})


class EntryModel(BaseModel):
    """Strict base of derived entries: unknown keys are mistakes, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The resource or nested config class the entry was derived from.
    source_type: ClassVar[type[BaseModel]]


@functools.cache
def entry_model(config_type: type[BaseModel]) -> type[EntryModel]:
    """The YAML model of a resource class (or of a config class nested in one)."""
    fields: dict[str, Any] = {}
    kind = getattr(config_type, "kind", None)
    is_store = isinstance(kind, str) and issubclass(config_type, CatalogDatastore)
    if is_store:
        fields["kind"] = (Literal[kind], Field(description="The kind of datastore."))
    defaults: dict[str, Any] = getattr(config_type, "catalog_defaults", {}) if is_store else {}
    for name, info in config_type.model_fields.items():
        if is_store and name == "name":
            continue  # the entry's key
        fields[name] = _entry_field(info, defaults)
        if name in defaults:
            annotation, field = fields[name]
            fields[name] = (annotation | None, _with_default(field, defaults[name]))
    model = create_model(
        f"{config_type.__name__}Entry",
        __base__=EntryModel,
        __doc__=config_type.__doc__,
        **fields,
    )
    model.source_type = config_type
    return model


def _entry_field(info: FieldInfo, defaults: dict[str, Any]) -> tuple[Any, FieldInfo]:
    annotation: Any = info.annotation
    copied = FieldInfo.merge_field_infos(info)
    if is_secret_field(info):
        return (SecretRef if info.is_required() else SecretRef | None), copied
    nested = _nested_config(annotation)
    if nested is not None:
        model = entry_model(nested)
        optional = annotation is not nested
        if info.default_factory is not None:
            copied = FieldInfo.merge_field_infos(info, default_factory=model)
        return (model | None if optional else model), copied
    return annotation, copied


def _nested_config(annotation: Any) -> type[BaseModel] | None:
    """The config class of a field typed ``SomeConfig`` or ``SomeConfig | None``, if any."""
    candidates = [annotation]
    if get_origin(annotation) in (Union, types.UnionType):
        candidates = [arg for arg in get_args(annotation) if arg is not type(None)]
    if len(candidates) == 1 and isinstance(candidates[0], type):
        if issubclass(candidates[0], dg.Config):
            return candidates[0]
    return None


def _with_default(field: FieldInfo, default: Any) -> FieldInfo:
    return FieldInfo.merge_field_infos(field, default=default)


DatastoreEntry = Annotated[
    Union[tuple(entry_model(store_type) for store_type in DATASTORE_TYPES)],  # noqa: UP007
    Field(discriminator="kind"),
]


def resource_values(entry: BaseModel) -> dict[str, Any]:
    """Keyword arguments for the entry's class; secrets become ``dg.EnvVar`` (read at run time)."""
    values: dict[str, Any] = {}
    for name in type(entry).model_fields:
        if name == "kind":
            continue
        values[name] = _resource_value(getattr(entry, name))
    return values


def _resource_value(value: Any) -> Any:
    if isinstance(value, SecretRef):
        return dg.EnvVar(value.env)
    if isinstance(value, EntryModel):
        # A mapping, so the resource class validates it in place: errors keep their location.
        return resource_values(value)
    return value


def build_datastore(name: str, entry: BaseModel, home: Path) -> Any:
    """The resource for a validated entry; pydantic validators of the resource class run here."""
    assert isinstance(entry, EntryModel)
    store_type = type(entry).source_type
    assert issubclass(store_type, CatalogDatastore)
    return store_type.from_catalog(name, resource_values(entry), home)


def secret_refs(entry: BaseModel, prefix: str = "") -> list[tuple[str, SecretRef]]:
    """Every secret an entry names, with its dotted path, however deeply it is nested."""
    found: list[tuple[str, SecretRef]] = []
    for field_name in type(entry).model_fields:
        value = getattr(entry, field_name)
        path = f"{prefix}{field_name}"
        if isinstance(value, SecretRef):
            found.append((path, value))
        elif isinstance(value, BaseModel):
            found.extend(secret_refs(value, f"{path}."))
    return found
