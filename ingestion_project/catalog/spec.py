"""Typed specs for what a catalog YAML declares: datastores, datasets, models and monitors.

The specs know nothing of Dagster; `catalog.parse` validates each entry of a catalog with them
and reports every mistake with the file, the entry and what to change. Datastore entries are
derived from the datastore resource classes (`catalog.datastore_entries`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

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


class DataChangePolling(SpecModel):
    """How often the listing (or the tables' fingerprints) is compared with the last one."""

    every: str = Field(default="60s", description="Interval between checks: '30s', '5m', '1h'.")

    @field_validator("every")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_interval_seconds(value)
        return value


class DataChangeTrigger(SpecModel):
    """Materialize when the files or rows behind a dataset change: ``data_change: {every: 30s}``."""

    data_change: DataChangePolling = Field(default_factory=DataChangePolling)

    @field_validator("data_change", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return {} if value is None else value  # `data_change:` with nothing after it

    @property
    def interval_seconds(self) -> int:
        return parse_interval_seconds(self.data_change.every)


QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


class StorageEventsPolling(SpecModel):
    """An Azure Storage queue that Event Grid fills with the store's Blob Created/Deleted events.

    A tick reads at most ``max_messages`` messages (in pages of 32), never lists the store. A
    message is hidden for ``visibility_timeout`` while its run is requested and deleted on the
    next tick, once the request is recorded; one read ``max_deliveries`` times without being
    deleted, or that is not a storage event, is moved to ``<queue>-poison``.
    """

    queue: str = Field(description="The queue's name, in the datastore's storage account.")
    account_url: str | None = Field(
        default=None,
        description="The queue service, e.g. https://myaccount.queue.core.windows.net; default: "
        "the datastore's account with 'queue' for 'blob' or 'dfs'.",
    )
    every: str = Field(default="30s", description="Interval between ticks: '30s', '5m'.")
    max_messages: int = Field(default=1000, ge=1, le=10_000)
    visibility_timeout: str = Field(default="5m")
    max_deliveries: int = Field(default=5, ge=1, le=100)

    @field_validator("queue")
    @classmethod
    def _queue_name(cls, value: str) -> str:
        if not QUEUE_NAME.match(value):
            raise ValueError(
                f"{value!r} is not an Azure queue name: 3-63 lowercase letters, digits and "
                "single hyphens, starting and ending with a letter or digit"
            )
        return value

    @field_validator("every", "visibility_timeout")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_interval_seconds(value)
        return value

    @field_validator("account_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL of the queue service")
        return value


class StorageEventsTrigger(SpecModel):
    """Materialize when Event Grid reports a blob created or deleted under the dataset's path."""

    storage_events: StorageEventsPolling

    @property
    def interval_seconds(self) -> int:
        return parse_interval_seconds(self.storage_events.every)

    @property
    def visibility_seconds(self) -> int:
        return parse_interval_seconds(self.storage_events.visibility_timeout)


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
        return checked_timezone(value)


def checked_timezone(value: str) -> str:
    """``value`` if it names an IANA time zone; schedules and windows are cut in it."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {value!r}: not an IANA time zone name (e.g. 'UTC', 'Europe/Berlin')"
        ) from None
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


CHECK_TYPES: dict[str, type[SpecModel]] = {
    "not_null": NotNullCheck,
    "between": BetweenCheck,
    "unique": UniqueCheck,
    "columns": ColumnsCheck,
}


def _check_kind(value: Any) -> str | None:
    """A check is a one-key mapping; its key says which check it is."""
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value)))
    if isinstance(value, SpecModel):
        return next(iter(type(value).model_fields))
    return None


CheckSpec = Annotated[
    Annotated[NotNullCheck, Tag("not_null")]
    | Annotated[BetweenCheck, Tag("between")]
    | Annotated[UniqueCheck, Tag("unique")]
    | Annotated[ColumnsCheck, Tag("columns")],
    Discriminator(_check_kind),
]


def _trigger_kind(value: Any) -> str | None:
    """A schedule names a cron expression; the others say ``data_change`` or ``storage_events``."""
    if isinstance(value, CronTrigger):
        return "cron"
    if isinstance(value, DataChangeTrigger):
        return "data_change"
    if isinstance(value, StorageEventsTrigger):
        return "storage_events"
    if isinstance(value, dict):
        for key in ("cron", "data_change", "storage_events"):
            if key in value:
                return key
    return None


TriggerSpec = Annotated[
    Annotated[CronTrigger, Tag("cron")]
    | Annotated[DataChangeTrigger, Tag("data_change")]
    | Annotated[StorageEventsTrigger, Tag("storage_events")],
    Discriminator(_trigger_kind),
]


# How long each window or file-date granularity is, to compare them (a month counts as 31 days).
WINDOW_DAYS = {"second": 0, "minute": 0, "hour": 0, "day": 1, "week": 7, "month": 31, "year": 366}


class DatasetWindowsSpec(SpecModel):
    """Time windows of a dataset: each day, week or month is its own series of versions.

    A window holds the files whose ``partition_format`` date falls in it, and, with a
    ``timestamp_column``, only the rows stamped in it; past windows can be backfilled.
    """

    frequency: Literal["day", "week", "month"]
    start: date
    end: date | None = None
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _bounds(self) -> DatasetWindowsSpec:
        if self.end is not None and self.end <= self.start:
            raise ValueError("'end' must come after 'start'")
        checked_timezone(self.timezone)
        return self


COLUMN_TYPES = ("string", "int64", "float64", "bool", "datetime64[ns]", "category")


def checked_owners(owners: list[str]) -> list[str]:
    """Owners as the Dagster UI shows them: email addresses or 'team:<name>'."""
    for owner in owners:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+|team:[A-Za-z0-9_.-]+", owner):
            raise ValueError(
                f"owner '{owner}' must be an email address or 'team:<name>' (as the "
                "Dagster UI shows owners)"
            )
    return owners


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
    windows: DatasetWindowsSpec | None = None
    mode: Literal["reference", "snapshot"] | None = None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    owners: list[str] = Field(default_factory=list)
    checks: list[CheckSpec] = Field(default_factory=list)
    trigger: TriggerSpec | None = None

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
            if isinstance(self.trigger, StorageEventsTrigger):
                raise ValueError(
                    "storage events report files; a SQL dataset is watched with "
                    "'trigger: {data_change: {every: 60s}}' and 'tables'"
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
        if self.windows is not None:
            self._check_windows(self.windows)
        return self

    def _check_windows(self, windows: DatasetWindowsSpec) -> None:
        """A window must be cut from file dates or row timestamps, and refreshed by window."""
        if self.query is not None:
            raise ValueError(
                "'windows' cut files by their partition date or rows by 'timestamp_column'; a "
                "SQL dataset cannot be windowed yet: filter its rows in the query instead"
            )
        if isinstance(self.trigger, DataChangeTrigger | StorageEventsTrigger):
            raise ValueError(
                "a windowed dataset is refreshed window by window: use 'trigger: {cron: ...}' "
                "(each tick registers the window that just closed) or backfill windows; "
                "leave 'windows' out to refresh it on data change"
            )
        from ingestion_project.datasets.partitions import PartitionFormat, date_granularity

        dated = None
        if self.partition_format:
            dated = date_granularity(PartitionFormat(self.partition_format))
        if dated is None and not self.timestamp_column:
            raise ValueError(
                "'windows' need a 'timestamp_column' (rows are kept by their time) or a date "
                "placeholder in 'partition_format' such as '{date:yyyy/MM/dd}' (files are kept "
                "by their date)"
            )
        if self.kind == "file" and dated is None:
            raise ValueError(
                "a windowed 'kind: file' dataset picks files by date: add a date placeholder "
                "to 'partition_format', e.g. 'data/{date:yyyy/MM/dd}/*.jpg'"
            )
        coarser = dated is not None and WINDOW_DAYS[dated] > WINDOW_DAYS[windows.frequency]
        if coarser and not self.timestamp_column:
            raise ValueError(
                f"files dated by {dated} cannot be cut into {windows.frequency} windows "
                "without 'timestamp_column': declare it, or choose "
                f"'frequency: {dated}' or longer"
            )

    @field_validator("owners")
    @classmethod
    def _owners(cls, value: list[str]) -> list[str]:
        return checked_owners(value)

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


REGRESSION_METRICS = ("r2", "mae", "rmse")
CLASSIFICATION_METRICS = ("auc", "log_loss", "brier", "accuracy", "f1")
HIGHER_IS_BETTER = {
    "r2": True,
    "mae": False,
    "rmse": False,
    "auc": True,
    "log_loss": False,
    "brier": False,
    "accuracy": True,
    "f1": True,
}
# Which estimators each task offers; the same name picks the regressor or the classifier.
ESTIMATORS = {
    "regression": (
        "random_forest",
        "gradient_boosting",
        "hist_gradient_boosting",
        "ridge",
        "linear",
    ),
    "classification": (
        "logistic_regression",
        "random_forest",
        "gradient_boosting",
        "hist_gradient_boosting",
    ),
}
# Estimators that accept missing values as they are (scikit-learn's histogram gradient boosting).
ACCEPT_MISSING = frozenset({"hist_gradient_boosting"})


class EstimatorSpec(SpecModel):
    """Which scikit-learn estimator to train and with which parameters."""

    kind: Literal[
        "random_forest",
        "gradient_boosting",
        "hist_gradient_boosting",
        "ridge",
        "linear",
        "logistic_regression",
    ] = "random_forest"
    params: dict[str, Any] = Field(default_factory=dict)


class ScoringSpec(SpecModel):
    """Where the model scores new data and writes its predictions (model-output data)."""

    dataset: str
    datastore: str = WORKSPACE_DEFAULT
    path: str = "predictions"


class MissingValuesSpec(SpecModel):
    """What training and scoring do with missing feature values, and how many rows may go.

    ``impute`` fills numbers with the median and categories with the most frequent value (learnt
    on the training rows); ``native`` hands them to an estimator that accepts them
    (hist_gradient_boosting); ``drop`` drops rows with any missing feature. Rows without a target
    are always left out of training. If more than ``max_dropped_share`` of the rows would be
    dropped for any reason, training fails saying how many and why.
    """

    strategy: Literal["impute", "native", "drop"] = "impute"
    max_dropped_share: float = Field(default=0.05, ge=0, le=1)


class TrainWindowSpec(SpecModel):
    """Which recent data a model learns from: the last ``days`` or the last ``versions``."""

    days: int | None = Field(default=None, ge=1)
    versions: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> TrainWindowSpec:
        if (self.days is None) == (self.versions is None):
            raise ValueError("give exactly one of 'days' (by the timestamp column) or 'versions'")
        return self


class PromotionSpec(SpecModel):
    """When a challenger replaces the champion.

    Both are scored on the newest labelled window (the last ``window_days`` by the dataset's
    timestamp column, else the newest ``holdout`` share of rows), which the challenger did not
    learn from. The challenger wins only by at least ``min_effect`` (in the metric's units) and a
    paired test at level ``alpha`` (DeLong for AUC, a paired bootstrap otherwise).
    """

    window_days: int | None = Field(default=None, ge=1)
    min_effect: float = Field(default=0.0, ge=0)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    refit: bool = Field(
        default=True,
        description="After a win, learn again from every row including the window.",
    )


class LabelsSpec(SpecModel):
    """Where the ground truth of scored rows arrives, later: a dataset joined on ``key``."""

    dataset: str
    key: Annotated[
        list[str],
        WithJsonSchema(
            {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
        ),
    ] = Field(min_length=1, description="The column (or columns) both sides share.")
    column: str | None = Field(default=None, description="The label column; default: the target.")

    @field_validator("key", mode="before")
    @classmethod
    def _one_key(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class RetrainPolicySpec(SpecModel):
    """When to train a challenger: on drift, on a performance drop, on a schedule, or several.

    ``performance_drop`` compares each window's realized metric (once labels arrived) or its
    estimated metric (classifiers, from calibrated probabilities) with the champion's own figure
    on its promotion window; a drop beyond ``tolerance`` (metric units) triggers retraining.
    Each triggering result requests exactly one run.
    """

    when: list[Literal["drift", "performance_drop", "schedule"]] = Field(
        default_factory=lambda: ["drift"], min_length=1
    )
    tolerance: float = Field(default=0.02, ge=0)
    performance: Literal["realized", "estimated", "either"] = "either"
    cron: str | None = None
    timezone: str = "UTC"

    @model_validator(mode="before")
    @classmethod
    def _when_not_on(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean true.
        if isinstance(data, Mapping) and ("on" in data or True in data):
            raise ValueError("the retraining conditions are listed under 'when:', not 'on:'")
        return data

    @model_validator(mode="after")
    def _schedule(self) -> RetrainPolicySpec:
        if ("schedule" in self.when) != (self.cron is not None):
            raise ValueError("'schedule' in 'when' and a 'cron' expression go together")
        if self.cron is not None:
            CronTrigger(cron=self.cron, timezone=self.timezone)
        return self


class ModelSpec(SpecModel):
    """A model trained on a dataset, registered as numbered versions, promoted only if better."""

    train_on: str
    target: str
    task: Literal["regression", "classification"] | None = Field(
        default=None, description="Inferred from the metric or estimator when left out."
    )
    positive_above: float | None = Field(
        default=None,
        description="For a classifier on a numeric column: the positive class is target > this.",
    )
    features: list[str] = Field(min_length=1)
    categorical: list[str] = Field(default_factory=list)
    estimator: EstimatorSpec = Field(default_factory=EstimatorSpec)
    holdout: float = Field(default=0.2, gt=0, lt=1)
    metric: Literal["r2", "mae", "rmse", "auc", "log_loss", "brier", "accuracy", "f1"] | None = None
    missing: MissingValuesSpec = Field(default_factory=MissingValuesSpec)
    train_window: TrainWindowSpec | None = None
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    labels: LabelsSpec | None = None
    retrain: RetrainPolicySpec | None = None
    scoring: ScoringSpec | None = None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    owners: list[str] = Field(default_factory=list)

    @field_validator("owners")
    @classmethod
    def _owners(cls, value: list[str]) -> list[str]:
        return checked_owners(value)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        extra = sorted(set(self.categorical) - set(self.features))
        if extra:
            raise ValueError(f"categorical columns {extra} are not listed in 'features'")
        if self.target in self.features:
            raise ValueError(f"the target '{self.target}' must not also be a feature")
        task = self.task or _infer_task(self.metric, self.estimator.kind, self.positive_above)
        object.__setattr__(self, "task", task)
        if self.estimator.kind not in ESTIMATORS[task]:
            raise ValueError(
                f"estimator '{self.estimator.kind}' is not a {task} estimator; use one of "
                f"{', '.join(ESTIMATORS[task])}"
            )
        metrics = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
        metric = self.metric or metrics[0]
        object.__setattr__(self, "metric", metric)
        if metric not in metrics:
            raise ValueError(f"metric '{metric}' is not a {task} metric; use one of {metrics}")
        if self.positive_above is not None and task != "classification":
            raise ValueError("'positive_above' makes a classifier: set task: classification")
        if self.missing.strategy == "native" and self.estimator.kind not in ACCEPT_MISSING:
            raise ValueError(
                f"missing.strategy 'native' needs an estimator that accepts missing values "
                f"({', '.join(sorted(ACCEPT_MISSING))}); use 'impute' or 'drop' with "
                f"'{self.estimator.kind}'"
            )
        return self

    @property
    def task_name(self) -> str:
        assert self.task is not None, "set by the validator"
        return self.task

    @property
    def metric_name(self) -> str:
        assert self.metric is not None, "set by the validator"
        return self.metric


def _infer_task(metric: str | None, estimator: str, positive_above: float | None) -> str:
    if metric in CLASSIFICATION_METRICS or estimator == "logistic_regression":
        return "classification"
    if positive_above is not None:
        return "classification"
    return "regression"


DRIFT_METHODS = ("ks", "wasserstein", "psi", "jensen_shannon", "chi_squared")
DriftMethod = Literal["ks", "wasserstein", "psi", "jensen_shannon", "chi_squared"]
CHAMPION = "champion"


def _also_allow(alternative: dict[str, Any]) -> Any:
    """A JSON-schema hook: the field also accepts ``alternative`` (a shorthand in YAML)."""

    def extend(schema: dict[str, Any]) -> None:
        options = schema.get("anyOf")
        if isinstance(options, list):
            options.append(alternative)

    return extend


class BaselineSpec(SpecModel):
    """What a monitor compares with: the champion's training data, a dataset version or window.

    ``champion`` (the default with a model) follows the champion: its training data, scored by it.
    A ``dataset`` with ``version`` pins one version; with ``start``/``end`` (``end`` excluded) it
    takes that time window of the dataset's latest passing version, by its timestamp column; with
    neither, the latest passing version.
    """

    dataset: str | None = None
    version: int | None = Field(default=None, ge=1)
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> BaselineSpec:
        if self.dataset is None and (self.version or self.start or self.end):
            raise ValueError("'version', 'start' and 'end' need a 'dataset'")
        if self.version is not None and (self.start or self.end):
            raise ValueError("give either a 'version' or a window ('start'/'end'), not both")
        if self.start and self.end and self.end <= self.start:
            raise ValueError("'end' must come after 'start' (the end is excluded)")
        return self

    @property
    def is_champion(self) -> bool:
        return self.dataset is None

    def describe(self) -> str:
        if self.dataset is None:
            return "the champion's training data"
        if self.version is not None:
            return f"{self.dataset} v{self.version}"
        if self.start or self.end:
            return f"{self.dataset} from {self.start or 'its start'} to {self.end or 'its end'}"
        return f"the latest version of {self.dataset}"


class TargetSpec(SpecModel):
    """What a monitor watches: a dataset, or a model's scored data with its predictions."""

    dataset: str | None = None
    predictions: str | None = Field(
        default=None, description="A model: its scoring dataset and the predictions it made."
    )

    @model_validator(mode="after")
    def _one(self) -> TargetSpec:
        if (self.dataset is None) == (self.predictions is None):
            raise ValueError("give exactly one of 'dataset' or 'predictions' (a model)")
        return self


class DriftThresholdsSpec(SpecModel):
    """When a feature counts as drifted.

    p-value tests (ks, chi_squared) and every feature's null-rate test are judged at ``alpha``,
    controlling the false discovery rate across features (Benjamini-Hochberg) unless ``fdr`` is
    false; ``min_effect`` also asks their distance (KS D, total variation) to reach it. Distance
    methods drift at their own threshold.
    """

    alpha: float = Field(default=0.05, gt=0, lt=1)
    fdr: bool = True
    min_effect: float = Field(default=0.0, ge=0, le=1)
    wasserstein: float = Field(default=0.1, gt=0)
    psi: float = Field(default=0.2, gt=0)
    jensen_shannon: float = Field(default=0.1, gt=0, le=1)


class MonitorSpec(SpecModel):
    """A drift monitor: a target against a baseline, per run or per time window.

    With a ``model`` and no ``target``, it watches the model's scoring data and predictions against
    the champion's training data. ``frequency`` partitions it by time window of the target's
    timestamp column, from ``start`` (to ``end``, if given), so past windows can be backfilled.
    The monitor alarms when the share of drifted features reaches ``threshold`` in ``persist``
    windows in a row.
    """

    model: str | None = None
    baseline: BaselineSpec | None = Field(
        default=None,
        description="'champion', or {dataset: NAME, version: N}, or {dataset, start, end}.",
        json_schema_extra=_also_allow({"const": CHAMPION, "type": "string"}),
    )
    target: TargetSpec | None = Field(
        default=None,
        description="A dataset's name, or {dataset: NAME} or {predictions: MODEL}.",
        json_schema_extra=_also_allow({"type": "string"}),
    )
    frequency: Literal["day", "week", "month"] | None = None
    start: date | None = None
    end: date | None = None
    timezone: str = "UTC"
    features: list[str] | Literal["all"] | None = None
    methods: dict[str, DriftMethod] = Field(default_factory=dict)
    thresholds: DriftThresholdsSpec = Field(default_factory=DriftThresholdsSpec)
    threshold: float = Field(
        default=0.3, gt=0, le=1, description="Share of drifted features at which it alarms."
    )
    persist: int = Field(default=1, ge=1, description="Windows in a row before it alarms.")
    retrain: bool = True
    report: bool = Field(
        default=False, description="Also render evidently's HTML report, on a bounded sample."
    )
    report_rows: int = Field(default=5_000, ge=100, le=200_000)
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    owners: list[str] = Field(default_factory=list)

    @field_validator("owners")
    @classmethod
    def _owners(cls, value: list[str]) -> list[str]:
        return checked_owners(value)

    @field_validator("baseline", mode="before")
    @classmethod
    def _champion(cls, value: Any) -> Any:
        if value == CHAMPION:
            return None
        if isinstance(value, str):
            raise ValueError(
                f"write 'champion' or {{dataset: NAME, version: N}} (or start/end), not {value!r}"
            )
        return value

    @field_validator("target", mode="before")
    @classmethod
    def _dataset_name(cls, value: Any) -> Any:
        return {"dataset": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> MonitorSpec:
        if self.model is None and self.target is None:
            raise ValueError("a monitor needs a 'target' (a dataset), or a 'model' to watch")
        if self.model is None and self.baseline_spec.is_champion:
            raise ValueError(
                "without a 'model' there is no champion: give 'baseline: {dataset: NAME, "
                "version: N}' or a window"
            )
        if self.frequency is not None and self.start is None:
            raise ValueError(
                f"'frequency: {self.frequency}' needs 'start:', the first day of the first window"
            )
        if self.frequency is None and (self.start or self.end):
            raise ValueError("'start' and 'end' bound time windows: add 'frequency'")
        if self.start and self.end and self.end <= self.start:
            raise ValueError("'end' must come after 'start'")
        checked_timezone(self.timezone)
        return self

    @property
    def baseline_spec(self) -> BaselineSpec:
        return self.baseline or BaselineSpec()

    @property
    def target_spec(self) -> TargetSpec | None:
        """The declared target; None means the model's scored data and predictions."""
        return self.target


class AlertSpec(SpecModel):
    """A webhook (Slack-compatible JSON) for drift, performance drops and promotions.

    The URL is a secret: ``webhook`` names the environment variable that holds it, read when an
    alert is sent. ``subjects`` limits it to some models and monitors.
    """

    webhook: SecretRef
    events: list[Literal["drift", "performance_drop", "promotion"]] = Field(
        default_factory=lambda: ["drift", "performance_drop", "promotion"], min_length=1
    )
    subjects: list[str] | None = None
    description: str = ""


class AutomationSpec(SpecModel):
    """What re-runs by itself.

    ``code_change``: an asset whose code version changed (its YAML entry, what it reads from, or
    the code that builds its kind) re-materializes once, through a declarative-automation sensor
    that is on from the start (time-window datasets and monitors excepted: a backfill of their
    windows is a decision, not a reflex).
    """

    code_change: bool = False
    every: str = Field(default="30s", description="How often the sensor evaluates: '30s', '5m'.")

    @field_validator("every")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_interval_seconds(value)
        return value


class RegistrySpec(SpecModel):
    """Where dataset and model versions are recorded."""

    datastore: str = WORKSPACE_DEFAULT
    prefix: str = "_registry"
