"""Version records as types: what a dataset or model version stores, and its JSON form.

Every record is read and written here (the registry only stores the bytes). Records are strict
when code builds them (an unknown field is a mistake) and tolerant when read (unknown keys are
ignored, so a newer release may add keys within a schema version). ``schema_version`` names the
JSON shape: records written before it existed have the shape of version 1, and a record of a
newer version than this release knows is refused with a message saying to upgrade.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timezone
from json.encoder import encode_basestring_ascii
from typing import Annotated, Any, ClassVar, Literal, TypeVar, overload

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import core_schema, to_json

from ingestion_project.datastores.base import (
    FileColumns,
    FileInfo,
    utc_from_microseconds,
)

SCHEMA_VERSION = 2
"""The JSON shape this release writes. A release that changes the shape raises it and reads
older records as well: version 2 stores a dataset version's manifest as columns
(:class:`Manifest`), where version 1 stored a list of entries."""


def _plain_offset(value: datetime) -> datetime:
    """The offset as a datetime.timezone, so UTC reads back as datetime.UTC like fromisoformat."""
    if value.tzinfo is UTC:
        return value  # what the replace below gives; listings are in UTC, so it pays
    offset = value.utcoffset()
    if offset is None:
        return value
    if not offset and not value.fold:
        # The same datetime as the replace below, in less than half its time: records hold UTC.
        return value.astimezone(UTC)
    return value.replace(tzinfo=timezone(offset))


# Kept as datetime.isoformat() wrote them before records were typed ('+00:00', not 'Z').
IsoDatetime = Annotated[
    datetime,
    AfterValidator(_plain_offset),
    PlainSerializer(lambda value: value.isoformat()),
]


class RecordError(Exception):
    """A stored record cannot be read by this release: damaged, or written by a newer one."""


class RecordModel(BaseModel):
    """Strict when built in code; :func:`read_record` ignores unknown keys when reading."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True
    )
    # Stored keys left out of the JSON when None: those only some records of the shape carry.
    omitted_when_none: ClassVar[frozenset[str]] = frozenset()


class StoredRecord(RecordModel):
    """A record kept in its own JSON file; ``schema_version`` says which shape it has."""

    label: ClassVar[str] = "record"

    schema_version: int = Field(default=SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)


class VersionRecord(StoredRecord):
    """One immutable numbered version; the registry sets ``registered_at`` when it writes it."""

    version: int = Field(ge=1)
    registered_at: IsoDatetime | None = None


class ManifestEntry(RecordModel):
    """One file a dataset version pins, as its datastore listed it."""

    path: str
    size: int
    modified: IsoDatetime
    etag: str

    @classmethod
    def of(cls, info: FileInfo) -> ManifestEntry:
        return cls(path=info.path, size=info.size, modified=info.modified, etag=info.etag)

    def file_info(self) -> FileInfo:
        return FileInfo(path=self.path, size=self.size, modified=self.modified, etag=self.etag)


_MANIFEST_ROWS = TypeAdapter(list[ManifestEntry])
_COLUMN_TYPES = {"path": str, "size": int, "modified_us": int, "etag": str}


class Manifest(Sequence[ManifestEntry]):
    """The files a version pins, kept and stored as columns (``FileColumns``).

    A list of 10,000 ``ManifestEntry`` models took longer to build, write and read back than
    listing the files did; columns are written and parsed by the C JSON codec in one piece.
    It reads as a sequence of entries, each built when asked for; ``columns`` has the values.
    Stored as ``{"etag": [...], "modified_us": [...], "path": [...], "size": [...]}``; records
    of schema version 1 hold a list of entries, which reads as the same manifest.
    """

    __slots__ = ("_entries", "columns")

    def __init__(self, columns: FileColumns) -> None:
        self.columns = columns
        self._entries: list[ManifestEntry] | None = None

    @classmethod
    def of(cls, files: Iterable[FileInfo | ManifestEntry]) -> Manifest:
        """The manifest of ``files``, in their order."""
        return cls(FileColumns.of(files))

    @classmethod
    def validate(cls, value: object) -> Manifest:
        """A stored or given manifest: columns, a list of entries (schema 1), or one of ours."""
        if isinstance(value, Manifest):
            return value
        if isinstance(value, FileColumns):
            return cls(value)
        if isinstance(value, dict):
            return cls(_stored_columns(value))
        if isinstance(value, list | tuple):
            return cls.of(_MANIFEST_ROWS.validate_python(list(value), from_attributes=True))
        raise ValueError(f"a manifest is a list of files or columns of them, not {type(value)}")

    def stored(self) -> dict[str, list[Any]]:
        columns = self.columns
        return {
            "etag": list(columns.etags),
            "modified_us": list(columns.modified_us),
            "path": list(columns.paths),
            "size": list(columns.sizes),
        }

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_plain_validator_function(
            cls.validate,
            serialization=core_schema.plain_serializer_function_ser_schema(cls.stored),
            json_schema_input_schema=core_schema.dict_schema(),
        )

    def infos(self) -> list[FileInfo]:
        return self.columns.infos()

    def _all(self) -> list[ManifestEntry]:
        if self._entries is None:
            columns = self.columns
            self._entries = [
                ManifestEntry.model_construct(
                    path=path, size=size, modified=utc_from_microseconds(moment), etag=etag
                )
                for path, size, moment, etag in zip(
                    columns.paths, columns.sizes, columns.modified_us, columns.etags, strict=True
                )
            ]
        return self._entries

    def __len__(self) -> int:
        return len(self.columns.paths)

    @overload
    def __getitem__(self, index: int) -> ManifestEntry: ...

    @overload
    def __getitem__(self, index: slice) -> Manifest: ...

    def __getitem__(self, index: int | slice) -> ManifestEntry | Manifest:
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        return self._all()[index]

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self._all())

    def subset(self, indices: Iterable[int]) -> Manifest:
        """The files at ``indices``, in that order."""
        return Manifest(self.columns.take(indices))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Manifest):
            return self.columns == other.columns
        if isinstance(other, list | tuple):
            return len(other) == len(self) and all(map(_same_entry, self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        count = len(self)
        return f"Manifest({count} file{'' if count == 1 else 's'})"


def _same_entry(entry: ManifestEntry, other: object) -> bool:
    return entry == other or (isinstance(other, FileInfo) and entry.file_info() == other)


def _stored_columns(stored: dict[Any, Any]) -> FileColumns:
    """Stored columns, checked: four lists of one length, each of its own type."""
    missing = sorted(set(_COLUMN_TYPES) - set(stored))
    if missing:
        raise ValueError(f"manifest columns {missing} are missing")
    lengths = set()
    for key, kind in _COLUMN_TYPES.items():
        values = stored[key]
        if type(values) is not list or not set(map(type, values)) <= {kind}:
            raise ValueError(f"manifest column '{key}' must be a list of {kind.__name__}")
        lengths.add(len(values))
    if len(lengths) > 1:
        raise ValueError(f"manifest columns differ in length ({sorted(lengths)})")
    return FileColumns(stored["path"], stored["size"], stored["modified_us"], stored["etag"])


class SchemaColumn(RecordModel):
    """A column of a tabular version and the pandas dtype it loads as."""

    name: str
    type: str


class ProfileRow(RecordModel):
    """One column's profile; min and max are numbers for numeric columns, else text."""

    column: str
    type: str
    nulls: int
    distinct: int | None
    min: int | float | str | None = None
    max: int | float | str | None = None
    mean: int | float | None = None


class ReadOptions(RecordModel):
    """How a version's bytes become text."""

    separator: str = ","
    encoding: str = "utf-8"


class WindowBounds(RecordModel):
    """The time window a version holds: ``key`` names it, rows and files fall in [start, end).

    Naive timestamps in the data are read in ``timezone``.
    """

    key: str
    start: IsoDatetime
    end: IsoDatetime
    timezone: str = "UTC"


class LoadOptions(RecordModel):
    """How a version's text becomes typed columns, and which time window of it is kept."""

    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"window", "json_reader"})

    header: bool = True
    column_types: dict[str, str] = Field(default_factory=dict)
    partition_format: str | None = None
    path_column: str | None = None
    timestamp_column: str | None = None
    window: WindowBounds | None = None
    json_reader: Literal["pandas", "arrow"] | None = None
    """JSON lines only: which reader parsed the version (None: pandas, as before "arrow")."""


class DatasetLineage(RecordModel):
    """Which run and code registered a dataset version, and what it was derived from."""

    run_id: str | None = None
    code_version: str | None = None
    upstream: list[dict[str, Any]] = Field(default_factory=list)


class FailedExpectation(RecordModel):
    """One expectation of a declared check that the data did not meet, and how it failed.

    ``unexpected_count`` and ``examples`` are the values that broke it; ``error`` is set when
    the expectation could not be evaluated at all (a missing column, a text column in a range).
    """

    check: str
    expectation: str
    column: str | None = None
    unexpected_count: int | None = None
    examples: list[str] = Field(default_factory=list)
    error: str | None = None


class CheckVerdict(RecordModel):
    """One declared check (by its asset-check name) and whether all of its expectations held."""

    name: str
    passed: bool
    expectations: int = 0


class QualityReport(RecordModel):
    """What the dataset's declared checks said of a version's data before it was recorded.

    ``checks_fingerprint`` identifies the declaration the version was judged by, so a failed
    version is judged again when its checks change. ``failures`` is bounded in size; the count
    of those left out is ``failures_not_recorded``.
    """

    status: Literal["passed", "failed"]
    checks: list[CheckVerdict]
    checks_fingerprint: str
    failures: list[FailedExpectation] = Field(default_factory=list)
    failures_not_recorded: int = 0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failed_checks(self) -> list[str]:
        return [check.name for check in self.checks if not check.passed]


class DatasetVersionRecord(VersionRecord):
    """A dataset version: the files it pins, how to read them, and what they held.

    File datasets carry ``listing_fingerprint`` and ``read_options``; snapshots carry
    ``snapshot_prefix`` (and, for files, ``source_manifest``: the originals copied); tabular
    versions carry ``schema``, ``row_count`` and ``profile``; SQL versions their query facts.
    Versions of datasets with checks carry ``quality``; one without (no checks declared, or
    registered before versions were judged) counts as passed.
    """

    label: ClassVar[str] = "dataset version"
    omitted_when_none: ClassVar[frozenset[str]] = frozenset(
        {
            "listing_fingerprint",
            "format",
            "read_options",
            "load_options",
            "snapshot_prefix",
            "source_manifest",
            "schema",
            "row_count",
            "profile",
            "query",
            "params",
            "tables",
            "profile_method",
            "batch_size",
            "warnings",
            "quality",
            "attachments",
        }
    )

    dataset: str
    fingerprint: str
    listing_fingerprint: str | None = None
    kind: Literal["tabular", "file"] = "tabular"
    mode: Literal["reference", "snapshot"] = "reference"
    datastore: str
    manifest_store: str
    path: str | None = None
    format: str | None = None
    read_options: ReadOptions | None = None
    load_options: LoadOptions | None = None
    manifest: Manifest = Field(default_factory=lambda: Manifest.of([]))
    bytes: int = 0
    snapshot_prefix: str | None = None
    source_manifest: Manifest | None = None
    table_schema: list[SchemaColumn] | None = Field(
        default=None, validation_alias="schema", serialization_alias="schema"
    )
    row_count: int | None = None
    profile: list[ProfileRow] | None = None
    query: str | None = None
    params: dict[str, Any] | None = None
    tables: dict[str, str] | None = None
    profile_method: str | None = None
    batch_size: int | None = None
    warnings: list[str] | None = None
    quality: QualityReport | None = None
    attachments: dict[str, ManifestEntry] | None = None
    """Other files of the version by role, in ``manifest_store`` (a labeled dataset's 'coco')."""
    lineage: DatasetLineage = Field(default_factory=DatasetLineage)
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _files_default_to_the_dataset_store(cls, data: Any) -> Any:
        # Records from before snapshots kept their files in the dataset's own datastore.
        if isinstance(data, dict) and "manifest_store" not in data and "datastore" in data:
            return {**data, "manifest_store": data["datastore"]}
        return data

    @property
    def is_snapshot(self) -> bool:
        return self.mode == "snapshot"

    @property
    def passed(self) -> bool:
        """Whether consumers may take this version as latest: not failed by its checks."""
        return self.quality is None or self.quality.passed

    def files(self) -> list[FileInfo]:
        """The pinned files, in the datastore ``manifest_store``."""
        return self.manifest.infos()

    @property
    def window(self) -> str | None:
        """The time window this version holds (its partition key), or None for the whole."""
        options = self.load_options
        return options.window.key if options is not None and options.window else None


class ModelEstimator(RecordModel):
    """The scikit-learn estimator a model version was trained with."""

    kind: str
    params: dict[str, Any] = Field(default_factory=dict)


class ModelArtifact(RecordModel):
    """Where a model version's fitted pipeline is kept, and its checksum."""

    path: str
    sha256: str


class TrainedOn(RecordModel):
    """The dataset version a model version learned from."""

    dataset: str
    version: int
    fingerprint: str


class ModelLineage(RecordModel):
    """Which run and code trained a model version, and on what."""

    run_id: str | None = None
    code_version: str
    trained_on: TrainedOn


class ChampionComparison(RecordModel):
    """The champion a challenger was compared with, on the same newest labelled window.

    ``method``, ``difference`` (challenger minus champion on the model's metric), ``p_value``,
    ``min_effect`` and ``alpha`` say how the promotion gate decided; versions registered before
    the gate existed have none of them.
    """

    omitted_when_none: ClassVar[frozenset[str]] = frozenset(
        {"method", "difference", "p_value", "min_effect", "alpha"}
    )

    champion_version: int
    champion_metrics: dict[str, float]
    method: str | None = None
    difference: float | None = None
    p_value: float | None = None
    min_effect: float | None = None
    alpha: float | None = None


class DroppedRowsRecord(RecordModel):
    """Rows left out of training, by reason."""

    total: int
    missing_target: int = 0
    missing_features: int = 0


class ModelVersionRecord(VersionRecord):
    """A model version: its declaration, holdout metrics, artifact and lineage.

    ``metrics`` maps each metric name of the task (r2, mae, rmse; auc, log_loss, brier,
    accuracy, f1) to its value on the newest labelled window (``window``), which the version
    did not learn from. Versions registered before classifiers existed are regressions.
    """

    label: ClassVar[str] = "model version"
    omitted_when_none: ClassVar[frozenset[str]] = frozenset(
        {"task", "positive_above", "window", "dropped", "calibration"}
    )

    model: str
    task: str | None = None
    positive_above: float | None = None
    window: str | None = None
    dropped: DroppedRowsRecord | None = None
    # Classifiers: the isotonic map from the version's probabilities to calibrated ones, fitted
    # on its window; it estimates performance on new data before labels arrive.
    calibration: dict[str, list[float]] | None = None
    estimator: ModelEstimator
    features: list[str]
    categorical: list[str] = Field(default_factory=list)
    target: str
    metric: str
    metrics: dict[str, float]
    train_rows: int
    holdout_rows: int
    compared_with: ChampionComparison | None = None
    promoted: bool
    decision: str
    artifact: ModelArtifact
    lineage: ModelLineage


class AliasRecord(StoredRecord):
    """A mutable name (e.g. 'champion') for one version, and why it points there."""

    label: ClassVar[str] = "alias"

    version: int = Field(ge=1)
    reason: str = ""


class WindowPerformance(StoredRecord):
    """How one model version did on one scored window: estimated first, realized once labelled.

    A window is one version of the scoring dataset. ``estimated`` (classifiers) comes from the
    calibrated probabilities at scoring time; ``realized`` from the labels that arrived later.
    ``reference`` is the model version's own metric on the window it was promoted on.
    """

    label: ClassVar[str] = "window performance"
    omitted_when_none: ClassVar[frozenset[str]] = frozenset(
        {"estimated", "realized", "labels_version", "start", "end"}
    )

    model: str
    model_version: int
    dataset: str
    dataset_version: int
    metric: str
    rows: int
    reference: float | None = None
    estimated: dict[str, float] | None = None
    realized: dict[str, float] | None = None
    labelled_rows: int = 0
    labels_version: int | None = None
    start: str | None = None
    end: str | None = None

    @property
    def window(self) -> str:
        return f"{self.dataset} v{self.dataset_version}"


class DriftWindowRecord(StoredRecord):
    """A monitor's verdict on one window: what persistence and the drift-over-time table read.

    A window is a time window (partitioned monitors, e.g. ``2011-05-01``) or one version of the
    target dataset (``bikeshare_scoring v5``). ``report`` is the path of the full per-feature
    result beside it.
    """

    label: ClassVar[str] = "drift window"
    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"prediction_drift", "run_id"})

    monitor: str
    window: str
    order: str = Field(description="Sorts windows in time: the partition key, or the version.")
    baseline: str
    target: str
    rows: int
    drift_share: float
    magnitude: float
    detected: bool
    alarm: bool
    drifted: list[str] = Field(default_factory=list)
    prediction_drift: float | None = None
    report: str
    run_id: str | None = None


StoredT = TypeVar("StoredT", bound=StoredRecord)


def record_json(record: StoredRecord) -> bytes:
    """The stored form of a record; values of free-form fields (params) are kept as text.

    Manifests are written one column a line (:class:`Manifest`), everything else as
    ``json.dumps`` with an indent of 2 writes it.
    """
    fields = type(record).model_fields
    manifests = {
        name: value for name in fields if isinstance(value := getattr(record, name), Manifest)
    }
    data = _without_absent(record, record.model_dump(by_alias=True, exclude=set(manifests)))
    for name, manifest in manifests.items():
        data[fields[name].alias or name] = _StoredColumns(manifest.stored())
    return indented_json(data).encode()


class _StoredColumns(dict[str, list[Any]]):
    """A manifest's columns, which :func:`indented_json` writes one column a line."""


def indented_json(data: object) -> str:
    """``json.dumps(data, indent=2, sort_keys=True, default=str)``, the same text, sooner.

    ``indent`` makes json use its pure-Python encoder, about 3 µs a value; tables (lists of
    flat rows) are written a column at a time by the C encoder. A record's manifests are the
    exception (``record_json``): they are written one column a line.
    JSON text holds no raw newline, so a value written alone is indented by its line breaks.
    """
    if type(data) is not dict or not data or any(type(key) is not str for key in data):
        return _table_json(data) or json.dumps(data, indent=2, sort_keys=True, default=str)
    parts = []
    for key, value in sorted(data.items()):
        if type(value) is _StoredColumns:
            text = _columns_json(value)  # indented already: no copy of its long lines
        else:
            text = _table_json(value) or json.dumps(value, indent=2, sort_keys=True, default=str)
            text = text.replace("\n", "\n  ")
        parts.append(f"{encode_basestring_ascii(key)}: {text}")
    return "{\n  " + ",\n  ".join(parts) + "\n}"


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _table_json(rows: object) -> str | None:
    """``rows`` as ``json.dumps`` with indent 2 writes them, if they are a table; else None.

    A table is a list of dicts with the same text keys and only scalar values. Each column
    goes through the C encoder at once, one value a line: an encoded scalar has no newline.
    """
    if type(rows) is not list or not rows or type(rows[0]) is not dict or not rows[0]:
        return None
    keys = rows[0].keys()
    if any(type(key) is not str for key in keys):
        return None
    if any(type(row) is not dict or row.keys() != keys for row in rows):
        return None
    names = sorted(keys)
    columns = []
    for name in names:
        values = [row[name] for row in rows]
        if not set(map(type, values)) <= _SCALAR_TYPES:
            return None
        columns.append(json.dumps(values, separators=("\n", ": "))[1:-1].split("\n"))
    # Keys are %-escaped: each row is filled in by one % of its values.
    keys_text = [encode_basestring_ascii(name).replace("%", "%%") for name in names]
    row_text = "{\n    " + ",\n    ".join(f"{key}: %s" for key in keys_text) + "\n  }"
    rows_text = [row_text % values for values in zip(*columns, strict=True)]
    return "[\n  " + ",\n  ".join(rows_text) + "\n]"


def _columns_json(columns: _StoredColumns) -> str:
    """A manifest's columns, one a line, each through a C encoder at once.

    ``json.dumps`` with an indent writes each of a 10,000-file manifest's 40,000 values on its
    own line, in pure Python. The text is indented for its place in a record.
    """
    lines = [
        f"{encode_basestring_ascii(key)}: {_column_json(values)}"
        for key, values in sorted(columns.items())
    ]
    return "{\n    " + ",\n    ".join(lines) + "\n  }"


def _column_json(values: list[Any]) -> str:
    """``json.dumps(values)``, the same text, in about half the time for a manifest's columns.

    A column of whole numbers (ints, not bools) goes through pydantic-core's encoder, whose
    text for them differs from json's only in the separator; text that needs no escaping
    (printable ASCII, no quote or backslash) is joined as it is.
    """
    kinds = set(map(type, values))
    if kinds == {str}:
        joined = "".join(values)
        if joined.isascii() and joined.isprintable() and '"' not in joined and "\\" not in joined:
            return '["' + '", "'.join(values) + '"]'
    elif kinds == {int}:
        return to_json(values).decode().replace(",", ", ")
    return json.dumps(values)


def _without_absent(model: RecordModel, data: dict[str, Any]) -> dict[str, Any]:
    """Leave out the optional keys a model (or a model nested in it) does not carry."""
    for key in model.omitted_when_none:
        if key in data and data[key] is None:
            del data[key]
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = type(model).model_fields[name].alias or name
        if isinstance(value, RecordModel) and isinstance(data.get(key), dict):
            data[key] = _without_absent(value, data[key])
    return data


def read_record(model: type[StoredT], payload: bytes, where: str) -> StoredT:
    """A stored record as ``model``; ``where`` names it in errors (what, and which file)."""
    try:
        data = json.loads(payload)
    except ValueError as error:
        raise RecordError(
            f"{where} is not valid JSON ({error}): it was damaged or edited. Restore it from "
            "a backup or delete it."
        ) from None
    if not isinstance(data, dict):
        raise RecordError(f"{where} holds {type(data).__name__}, not a {model.label} record.")
    found = data.get("schema_version", 1)
    if isinstance(found, int) and not isinstance(found, bool) and found > SCHEMA_VERSION:
        raise RecordError(
            f"{where} has record schema version {found}, but this release of "
            f"ingestion_project reads versions up to {SCHEMA_VERSION}: a newer release wrote "
            "it. Upgrade ingestion_project to read it."
        )
    if isinstance(found, int) and not isinstance(found, bool) and found >= 1:
        # Read into this release's types, an older shape becomes this release's: written back,
        # the record is written as this version (a manifest as columns), so it says so.
        data["schema_version"] = SCHEMA_VERSION
    try:
        return model.model_validate(data, extra="ignore")
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, item['loc'])) or 'record'}: {item['msg']}"
            for item in error.errors()[:3]
        )
        raise RecordError(
            f"{where} is not a valid {model.label} record ({problems}): it was damaged or "
            "edited. Restore it from a backup."
        ) from None
