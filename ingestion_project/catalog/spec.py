"""Typed specs for what a catalog YAML declares: datastores, datasets, models and monitors.

The specs know nothing of Dagster; `catalog.parse` turns raw YAML into them and reports every
mistake with the file, the entry and what to change.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WORKSPACE_DEFAULT = "workspace_default"
ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CATALOG_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class SpecModel(BaseModel):
    """Strict base: unknown keys are mistakes, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def fingerprint(self) -> str:
        """Stable hash of the declaration: the code version of what it generates."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


class SecretRef(SpecModel):
    """A secret named by its environment variable; the value never appears in YAML."""

    env: str

    @field_validator("env")
    @classmethod
    def _looks_like_env_name(cls, value: str) -> str:
        if not ENV_VAR_NAME.match(value):
            # Never echo the value: it may be a pasted secret.
            raise ValueError(
                "is not a valid environment variable name (letters, digits and '_'; value not "
                "shown in case it is a secret)"
            )
        return value


class LocalDatastoreSpec(SpecModel):
    """Files in a local directory; relative roots live under INGESTION_HOME."""

    kind: Literal["local"]
    root: str | None = None
    description: str = ""


class PostgresDatastoreSpec(SpecModel):
    """A PostgreSQL database (also Azure Database for PostgreSQL)."""

    kind: Literal["postgresql"]
    host: str
    port: int = 5432
    database: str
    user: str
    password: SecretRef | None = None
    description: str = ""


class MySqlDatastoreSpec(SpecModel):
    """A MySQL or MariaDB database (also Azure Database for MySQL)."""

    kind: Literal["mysql"]
    host: str
    port: int = 3306
    database: str
    user: str
    password: SecretRef | None = None
    description: str = ""


class AzureSqlDatastoreSpec(SpecModel):
    """An Azure SQL Database (or any SQL Server) with SQL authentication."""

    kind: Literal["azure_sql"]
    host: str
    port: int = 1433
    database: str
    user: str
    password: SecretRef | None = None
    description: str = ""


class ServicePrincipalSpec(SpecModel):
    """A Microsoft Entra application: tenant and client ids are not secret, the secret is."""

    tenant_id: str
    client_id: str
    client_secret: SecretRef


class AzureCredentialSpec(SpecModel):
    """At most one way to authenticate; none means the ambient identity (DefaultAzureCredential)."""

    account_key: SecretRef | None = None
    sas_token: SecretRef | None = None
    connection_string: SecretRef | None = None
    service_principal: ServicePrincipalSpec | None = None

    @model_validator(mode="after")
    def _one_way(self) -> AzureCredentialSpec:
        given = [name for name, value in self if value is not None]
        if len(given) > 1:
            raise ValueError(
                f"give one way to authenticate, not {len(given)} ({', '.join(given)}); "
                "leave 'credential' out to use the identity (DefaultAzureCredential)"
            )
        return self


def _http_url(value: str | None) -> str | None:
    if value is not None and not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(
            f"'{value}' is not an http(s) URL (e.g. https://myaccount.blob.core.windows.net)"
        )
    return value


class AzureStorageSpec(SpecModel):
    """Fields every Azure Storage kind shares."""

    account_url: str | None = None
    prefix: str = ""
    credential: AzureCredentialSpec = Field(default_factory=AzureCredentialSpec)
    timeout_seconds: int = Field(default=30, ge=1, le=600)
    description: str = ""

    @field_validator("account_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @model_validator(mode="after")
    def _url_or_connection_string(self) -> AzureStorageSpec:
        if self.account_url is None and self.credential.connection_string is None:
            raise ValueError("give 'account_url' (or a credential.connection_string)")
        return self


class AzureBlobDatastoreSpec(AzureStorageSpec):
    """An Azure Blob Storage container."""

    kind: Literal["azure_blob"]
    container: str


class AzureFileShareDatastoreSpec(AzureStorageSpec):
    """An Azure Files share."""

    kind: Literal["azure_file_share"]
    share: str


class AdlsGen2DatastoreSpec(AzureStorageSpec):
    """An Azure Data Lake Storage Gen2 file system; ``endpoint: blob`` lists and reads over Blob."""

    kind: Literal["adls_gen2"]
    filesystem: str
    endpoint: Literal["dfs", "blob"] = "dfs"


class DbfsDatastoreSpec(SpecModel):
    """The Databricks File System of a workspace, through its REST API (databricks-sdk)."""

    kind: Literal["dbfs"]
    host: str
    token: SecretRef | None = None
    root: str = "/"
    timeout_seconds: int = Field(default=30, ge=1, le=600)
    description: str = ""

    @field_validator("host")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value) or value


class HttpDatastoreSpec(SpecModel):
    """Public files over HTTP(S), read-only: open datasets and datasets from public URLs."""

    kind: Literal["http"]
    base_url: str
    timeout_seconds: int = Field(default=30, ge=1, le=600)
    description: str = ""

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value) or value


DatastoreSpec = Annotated[
    LocalDatastoreSpec
    | PostgresDatastoreSpec
    | MySqlDatastoreSpec
    | AzureSqlDatastoreSpec
    | AzureBlobDatastoreSpec
    | AzureFileShareDatastoreSpec
    | AdlsGen2DatastoreSpec
    | DbfsDatastoreSpec
    | HttpDatastoreSpec,
    Field(discriminator="kind"),
]
FILE_DATASTORE_KINDS = frozenset(
    {"local", "azure_blob", "azure_file_share", "adls_gen2", "dbfs", "http"}
)
SQL_DATASTORE_KINDS = frozenset({"postgresql", "mysql", "azure_sql"})


class DataChangeTrigger(SpecModel):
    """Materialize when the files or rows behind a dataset change (a polling sensor)."""

    on: Literal["data_change"]
    every: str = "60s"

    @field_validator("every")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_interval_seconds(value)
        return value

    @property
    def interval_seconds(self) -> int:
        return parse_interval_seconds(self.every)


class CronTrigger(SpecModel):
    """Materialize on a cron schedule."""

    cron: str
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        fields = croniter.expand(value)[0] if croniter.is_valid(value) else []
        never = fields[3:4] == [[2]] and fields[2] in ([30], [31])
        if len(fields) != 5 or never:
            raise ValueError(
                f"'{value}' is not a valid cron expression (five fields: minute hour "
                "day-of-month month day-of-week, e.g. '0 2 * * *')"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone (e.g. 'UTC')") from None
        return value


def partition_glob(partition_format: str) -> str:
    """The glob a partition format matches: each {name} or {name:fmt} becomes wildcards.

    A date format spanning folders ('{date:yyyy/MM/dd}') becomes one '*' per segment.
    """

    def wildcard(match: re.Match[str]) -> str:
        pattern = match.group(2) or ""
        return "/".join("*" for _ in pattern.split("/")) if pattern else "*"

    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}", wildcard, partition_format)


def parse_interval_seconds(value: str) -> int:
    """'30s', '5m', '2h' -> seconds; at least 1 second."""
    match = re.fullmatch(r"\s*(\d+)\s*([smh])\s*", value)
    if not match:
        raise ValueError(f"'{value}' is not an interval like '30s', '5m' or '1h'")
    seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
    if seconds < 1:
        raise ValueError(f"'{value}' must be at least 1s")
    return seconds


class NotNullCheck(SpecModel):
    """Columns that must have no missing values."""

    not_null: list[str]


class BetweenCheck(SpecModel):
    """Columns whose values must lie in [low, high]."""

    between: dict[str, tuple[float, float]]


class UniqueCheck(SpecModel):
    """Columns whose values must be unique."""

    unique: list[str]


class ColumnsCheck(SpecModel):
    """Columns that must be present: catches schema changes at the source."""

    columns: list[str]


CheckSpec = NotNullCheck | BetweenCheck | UniqueCheck | ColumnsCheck


COLUMN_TYPES = ("string", "int64", "float64", "bool", "datetime64[ns]", "category")


class DatasetSpec(SpecModel):
    """A registered, versioned reference into a datastore (Azure ML's data asset).

    ``tabular`` datasets load into pandas (CSV, Parquet, JSON lines, or a SQL query); ``file``
    datasets are sets of files to list, download and open. ``reference`` mode pins files by ETag;
    ``snapshot`` mode copies the data into an immutable versioned location (always for SQL).
    """

    kind: Literal["tabular", "file"] = "tabular"
    datastore: str = WORKSPACE_DEFAULT
    path: str | None = None
    query: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    tables: list[str] = Field(default_factory=list)
    format: Literal["csv", "parquet", "jsonl"] | None = None
    separator: str = ","
    header: bool = True
    encoding: str = "utf-8"
    column_types: dict[str, Literal[COLUMN_TYPES]] = Field(default_factory=dict)  # type: ignore[valid-type]
    partition_format: str | None = None
    path_column: str | None = None
    timestamp_column: str | None = None
    mode: Literal["reference", "snapshot"] | None = None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    owners: list[str] = Field(default_factory=list)
    checks: list[CheckSpec] = Field(default_factory=list)
    trigger: DataChangeTrigger | CronTrigger | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        if self.path is None and self.partition_format and self.query is None:
            # Azure ML style: the partition format alone names the files.
            object.__setattr__(self, "path", partition_glob(self.partition_format))
        if (self.path is None) == (self.query is None):
            raise ValueError("give exactly one of 'path' (files) or 'query' (SQL)")
        if self.query is not None:
            if self.mode == "reference":
                raise ValueError(
                    "a SQL dataset cannot be a reference (rows change in place): use "
                    "'mode: snapshot' or leave 'mode' out"
                )
            if self.kind == "file" or self.partition_format or self.path_column:
                raise ValueError(
                    "'kind: file', 'partition_format' and 'path_column' need 'path', not 'query'"
                )
            if isinstance(self.trigger, DataChangeTrigger) and not self.tables:
                raise ValueError(
                    "a data_change trigger on a SQL dataset needs 'tables': the tables the "
                    "query reads, whose cheap fingerprints tell when to refresh"
                )
        elif self.params or self.tables:
            raise ValueError("'params' and 'tables' belong to SQL datasets (with 'query')")
        if self.kind == "file" and self.checks:
            raise ValueError("checks need a tabular dataset; a file dataset has no columns")
        if self.partition_format:
            from ingestion_project.datasets.partitions import PartitionFormat, PartitionFormatError

            try:
                placeholders = PartitionFormat(self.partition_format).columns
            except PartitionFormatError as error:
                raise ValueError(str(error)) from None
            if self.path_column in placeholders:
                raise ValueError(
                    f"path_column '{self.path_column}' is also a placeholder in "
                    "'partition_format'; rename one"
                )
        return self

    @field_validator("owners")
    @classmethod
    def _owners(cls, value: list[str]) -> list[str]:
        for owner in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+|team:[A-Za-z0-9_.-]+", owner):
                raise ValueError(
                    f"owner '{owner}' must be an email address or 'team:<name>' (as the "
                    "Dagster UI shows owners)"
                )
        return value

    @property
    def effective_mode(self) -> str:
        """SQL results are always snapshots; files are references unless declared otherwise."""
        return self.mode or ("snapshot" if self.query is not None else "reference")

    @property
    def file_format(self) -> str:
        """The declared format, else the one the path's extension names."""
        if self.format:
            return self.format
        path = (self.path or "").lower()
        for suffix, name in ((".parquet", "parquet"), (".jsonl", "jsonl"), (".json", "jsonl")):
            if path.endswith(suffix):
                return name
        return "csv"


class EstimatorSpec(SpecModel):
    """Which scikit-learn regressor to train and with which parameters."""

    kind: Literal["random_forest", "gradient_boosting", "ridge", "linear"] = "random_forest"
    params: dict[str, Any] = Field(default_factory=dict)


class ScoringSpec(SpecModel):
    """Where the model scores new data and writes its predictions (model-output data)."""

    dataset: str
    datastore: str = WORKSPACE_DEFAULT
    path: str = "predictions"


class ModelSpec(SpecModel):
    """A model trained on a dataset, registered as numbered versions, promoted only if better."""

    train_on: str
    target: str
    features: list[str] = Field(min_length=1)
    categorical: list[str] = Field(default_factory=list)
    estimator: EstimatorSpec = Field(default_factory=EstimatorSpec)
    holdout: float = Field(default=0.2, gt=0, lt=1)
    metric: Literal["r2", "mae", "rmse"] = "r2"
    scoring: ScoringSpec | None = None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _categorical_are_features(self) -> ModelSpec:
        extra = sorted(set(self.categorical) - set(self.features))
        if extra:
            raise ValueError(f"categorical columns {extra} are not listed in 'features'")
        if self.target in self.features:
            raise ValueError(f"the target '{self.target}' must not also be a feature")
        return self


class MonitorSpec(SpecModel):
    """A dataset monitor: scoring data and predictions against the champion's training data."""

    model: str
    target: str | None = None
    features: list[str] | None = None
    threshold: float = Field(default=0.3, gt=0, le=1)
    retrain: bool = True
    description: str = ""


class RegistrySpec(SpecModel):
    """Where dataset and model versions are recorded."""

    datastore: str = WORKSPACE_DEFAULT
    prefix: str = "_registry"


class CatalogSpec(SpecModel):
    """Everything one catalog file declares, validated and cross-checked."""

    registry: RegistrySpec = Field(default_factory=RegistrySpec)
    datastores: dict[str, DatastoreSpec] = Field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = Field(default_factory=dict)
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    monitors: dict[str, MonitorSpec] = Field(default_factory=dict)

    def monitor_target(self, name: str) -> str:
        """The dataset a monitor watches: declared, else the model's scoring dataset."""
        monitor = self.monitors[name]
        if monitor.target:
            return monitor.target
        scoring = self.models[monitor.model].scoring
        assert scoring is not None, "validated in parse"
        return scoring.dataset

    def monitor_features(self, name: str) -> list[str]:
        monitor = self.monitors[name]
        return list(monitor.features or self.models[monitor.model].features)
