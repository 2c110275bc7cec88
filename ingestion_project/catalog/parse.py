"""Validate one catalog file entry by entry, and word every mistake for people.

Each entry is validated with its typed model (``catalog.spec``, and for datastores the model
derived from the datastore's resource class), so one bad entry never hides the others. The
project-wide checks (references between entries, names declared twice) live in
``catalog.project``, where every catalog of the project is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from ingestion_project.catalog.datastore_entries import (
    DATASTORE_KINDS,
    build_datastore,
    entry_model,
)
from ingestion_project.catalog.errors import CatalogProblem
from ingestion_project.catalog.spec import (
    CATALOG_NAME,
    CHECK_TYPES,
    AlertSpec,
    AutomationSpec,
    CronTrigger,
    DataChangeTrigger,
    DatasetSpec,
    ModelSpec,
    MonitorSpec,
    RegistrySpec,
    StorageEventsTrigger,
)
from ingestion_project.datastores.base import is_secret_field
from ingestion_project.labeling.spec import LabelingSpec

SpecT = TypeVar("SpecT", bound=BaseModel)
SECTIONS = (
    "registry",
    "datastores",
    "datasets",
    "models",
    "monitors",
    "alerts",
    "labeling",
    "automation",
)
ENTRY_SECTIONS = ("datastores", "datasets", "models", "monitors", "alerts", "labeling")


@dataclass
class ParsedCatalog:
    """What one catalog file declares: its valid entries, and the mistakes in the others.

    ``broken`` names entries that were declared but invalid, so that references to them are not
    reported a second time as undeclared.
    """

    source: str
    registry: RegistrySpec | None = None
    automation: AutomationSpec | None = None
    datastores: dict[str, BaseModel] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    monitors: dict[str, MonitorSpec] = field(default_factory=dict)
    alerts: dict[str, AlertSpec] = field(default_factory=dict)
    labeling: dict[str, LabelingSpec] = field(default_factory=dict)
    problems: list[CatalogProblem] = field(default_factory=list)
    broken: dict[str, set[str]] = field(default_factory=dict)

    def declared(self, section: str) -> set[str]:
        """Every name of ``section`` in the file, valid or not."""
        return set(getattr(self, section)) | self.broken.get(section, set())


def parse_catalog(raw: Any, *, source: str, home: Path) -> ParsedCatalog:
    """Validate every entry of one catalog's attributes; never raises for a catalog mistake."""
    parsed = ParsedCatalog(source=source)
    problems: list[CatalogProblem] = []
    if not isinstance(raw, Mapping):
        problems.append(
            CatalogProblem(
                "(top level)", "must be a mapping", f"Use the sections {', '.join(SECTIONS)}."
            )
        )
        parsed.problems = _sourced(problems, source)
        return parsed
    problems.extend(
        CatalogProblem(
            str(key),
            "unknown section",
            f"Use only {', '.join(SECTIONS)}{did_you_mean(str(key), SECTIONS)}",
        )
        for key in raw
        if key not in SECTIONS
    )
    if raw.get("registry") is not None:
        parsed.registry = _validate(RegistrySpec, raw["registry"], "registry", problems)
    if raw.get("automation") is not None:
        parsed.automation = _validate(AutomationSpec, raw["automation"], "automation", problems)
    _parse_datastores(_section(raw, "datastores", problems), parsed, problems, home)
    parsed.datasets = _parse_entries(
        DatasetSpec, _section(raw, "datasets", problems), "datasets", problems
    )
    parsed.models = _parse_entries(ModelSpec, _section(raw, "models", problems), "models", problems)
    parsed.monitors = _parse_entries(
        MonitorSpec, _section(raw, "monitors", problems), "monitors", problems
    )
    parsed.alerts = _parse_entries(AlertSpec, _section(raw, "alerts", problems), "alerts", problems)
    parsed.labeling = _parse_entries(
        LabelingSpec, _section(raw, "labeling", problems), "labeling", problems
    )
    parsed.broken = {
        section: {str(name) for name in _section(raw, section, [])} - set(getattr(parsed, section))
        for section in ENTRY_SECTIONS
    }
    parsed.problems = _sourced(problems, source)
    return parsed


def _sourced(problems: list[CatalogProblem], source: str) -> list[CatalogProblem]:
    return [CatalogProblem(p.entry, p.problem, p.fix, p.source or source) for p in problems]


def _section(
    raw: Mapping[str, Any], name: str, problems: list[CatalogProblem]
) -> Mapping[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, Mapping):
        problems.append(
            CatalogProblem(name, "must be a mapping of name -> entry", "Indent entries under it.")
        )
        return {}
    return value


def _parse_datastores(
    raw: Mapping[str, Any], parsed: ParsedCatalog, problems: list[CatalogProblem], home: Path
) -> None:
    for name, entry in raw.items():
        where = f"datastores.{name}"
        if not _valid_name(name, where, problems):
            continue
        if not isinstance(entry, Mapping):
            problems.append(CatalogProblem(where, "must be a mapping", "Give at least 'kind:'."))
            continue
        kind = entry.get("kind")
        if kind is None:
            problems.append(
                CatalogProblem(
                    f"{where}.kind",
                    "is required but missing",
                    f"Use one of: {', '.join(DATASTORE_KINDS)}",
                )
            )
            continue
        if kind == "adls_gen1":
            problems.append(
                CatalogProblem(
                    f"{where}.kind",
                    "Azure Data Lake Storage Gen1 was retired by Microsoft on 2024-02-29 and can "
                    "no longer be reached",
                    "Migrate the data to Azure Data Lake Storage Gen2 (Microsoft's Gen1-to-Gen2 "
                    "migration guide), then declare it with 'kind: adls_gen2'",
                )
            )
            continue
        store_type = DATASTORE_KINDS.get(str(kind))
        if store_type is None:
            problems.append(
                CatalogProblem(
                    f"{where}.kind",
                    f"unknown datastore kind {kind!r}",
                    f"Use one of: {', '.join(DATASTORE_KINDS)}"
                    f"{did_you_mean(str(kind), list(DATASTORE_KINDS))}",
                )
            )
            continue
        spec = _validate(entry_model(store_type), entry, where, problems, show_input=False)
        if spec is None:
            continue
        try:
            resource = build_datastore(str(name), spec, home)
        except ValidationError as error:
            # The resource class's own validators (URLs, one way to authenticate, ...).
            _word_validation_error(
                error, entry_model(store_type), where, problems, show_input=False, skip=("name",)
            )
            continue
        parsed.datastores[name] = spec
        parsed.resources[name] = resource


def _parse_entries(
    spec_type: type[SpecT],
    raw: Mapping[str, Any],
    section: str,
    problems: list[CatalogProblem],
) -> dict[str, SpecT]:
    parsed: dict[str, SpecT] = {}
    for name, entry in raw.items():
        where = f"{section}.{name}"
        if not _valid_name(name, where, problems):
            continue
        if not isinstance(entry, Mapping):
            problems.append(CatalogProblem(where, "must be a mapping", "Give its keys below it."))
            continue
        entry = dict(entry)
        if section == "datasets":
            if not _parse_checks_and_trigger(entry, where, problems):
                continue
        spec = _validate(spec_type, entry, where, problems)
        if spec is not None:
            parsed[name] = spec
    return parsed


def _parse_checks_and_trigger(
    entry: dict[str, Any], where: str, problems: list[CatalogProblem]
) -> bool:
    """Checks and triggers are unions; parse them by their key so errors are precise."""
    before = len(problems)
    checks = []
    for index, check in enumerate(entry.get("checks") or []):
        check_where = f"{where}.checks[{index}]"
        if not isinstance(check, Mapping) or len(check) != 1:
            problems.append(
                CatalogProblem(
                    check_where,
                    "must be a mapping with exactly one check",
                    f"Write e.g. '- not_null: [col]'; checks: {', '.join(CHECK_TYPES)}",
                )
            )
            continue
        (kind,) = check.keys()
        check_type = CHECK_TYPES.get(kind)
        if check_type is None:
            problems.append(
                CatalogProblem(
                    check_where,
                    f"unknown check {kind!r}",
                    f"Use one of: {', '.join(CHECK_TYPES)}{did_you_mean(kind, CHECK_TYPES)}",
                )
            )
            continue
        parsed = _validate(check_type, check, check_where, problems)
        if parsed is not None:
            checks.append(parsed)
    entry["checks"] = checks
    trigger = entry.get("trigger")
    if trigger is not None:
        trigger_where = f"{where}.trigger"
        if isinstance(trigger, Mapping) and "cron" in trigger:
            entry["trigger"] = _validate(CronTrigger, trigger, trigger_where, problems)
        elif isinstance(trigger, Mapping) and "data_change" in trigger:
            entry["trigger"] = _validate(DataChangeTrigger, trigger, trigger_where, problems)
        elif isinstance(trigger, Mapping) and "storage_events" in trigger:
            entry["trigger"] = _validate(StorageEventsTrigger, trigger, trigger_where, problems)
        elif isinstance(trigger, Mapping) and ("on" in trigger or True in trigger):
            # YAML 1.1 reads a bare `on:` key as true, which no schema can describe.
            every = trigger.get("every", "60s")
            problems.append(
                CatalogProblem(
                    trigger_where,
                    "'on: data_change' is the old way to write a data-change trigger",
                    f"Write 'trigger: {{data_change: {{every: {every}}}}}'",
                )
            )
        else:
            problems.append(
                CatalogProblem(
                    trigger_where,
                    "is neither a schedule, a data-change trigger nor storage events",
                    "Write '{cron: \"0 2 * * *\", timezone: UTC}', '{data_change: {every: 60s}}' "
                    "or '{storage_events: {queue: NAME}}'",
                )
            )
    return len(problems) == before


def _validate(
    spec_type: type[SpecT],
    entry: Any,
    where: str,
    problems: list[CatalogProblem],
    *,
    show_input: bool = True,
) -> SpecT | None:
    """Validate one entry; ``show_input=False`` for entries that may hold pasted secrets."""
    try:
        return spec_type.model_validate(entry)
    except ValidationError as error:
        _word_validation_error(error, spec_type, where, problems, show_input=show_input)
        return None


def _word_validation_error(
    error: ValidationError,
    spec_type: type[BaseModel],
    where: str,
    problems: list[CatalogProblem],
    *,
    show_input: bool,
    skip: tuple[str, ...] = (),
) -> None:
    """Pydantic's errors, one problem each, in the catalog's words."""
    for detail in error.errors():
        loc = tuple(part for part in detail["loc"] if part not in skip)
        location = ".".join(str(part) for part in loc)
        entry_path = f"{where}.{location}" if location else where
        kind = detail["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _allowed_keys(spec_type, loc)
            problems.append(
                CatalogProblem(
                    entry_path,
                    f"unknown key '{key}'",
                    f"Allowed keys: {', '.join(allowed)}{did_you_mean(key, allowed)}",
                )
            )
        elif kind == "missing":
            problems.append(
                CatalogProblem(entry_path, "is required but missing", "Add it to the entry.")
            )
        elif _is_secret_field(spec_type, loc):
            problems.append(
                CatalogProblem(
                    entry_path,
                    "must name an environment variable, not hold a value (value not shown)",
                    "Write it as '{env: VARIABLE_NAME}' and set that variable",
                )
            )
        else:
            message = str(detail["msg"]).removeprefix("Value error, ")
            # The whole entry as "input" is noise; a single field's value helps.
            shown = f" (got {detail.get('input')!r})" if show_input and loc else ""
            problems.append(CatalogProblem(entry_path, f"{message}{shown}", "Fix the value."))


def _allowed_keys(spec_type: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Keys of the (possibly nested) model that holds the last key of ``loc``."""
    model = spec_type
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        nested = [
            candidate
            for candidate in (annotation, *get_args(annotation))
            if isinstance(candidate, type) and issubclass(candidate, BaseModel)
        ]
        if not nested:
            break
        model = nested[0]
    return sorted(model.model_fields)


def _is_secret_field(spec_type: type[BaseModel], loc: tuple[Any, ...]) -> bool:
    """Whether an error's location is (inside) a field that must hold a SecretRef."""
    model: type[BaseModel] = spec_type
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return False
        if "SecretRef" in str(field.annotation) or is_secret_field(field):
            return True
        nested = [
            candidate
            for candidate in (field.annotation, *get_args(field.annotation))
            if isinstance(candidate, type) and issubclass(candidate, BaseModel)
        ]
        if not nested:
            return False
        model = nested[0]
    return False


def _valid_name(name: Any, where: str, problems: list[CatalogProblem]) -> bool:
    if isinstance(name, str) and CATALOG_NAME.match(name):
        return True
    problems.append(
        CatalogProblem(
            where,
            f"name {name!r} is not a valid name",
            "Use lower-case letters, digits and '_', starting with a letter (max 63 chars)",
        )
    )
    return False


def did_you_mean(value: str, options: Any) -> str:
    import difflib

    close = difflib.get_close_matches(value, [str(option) for option in options], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
