"""Turn a raw catalog mapping into a validated `CatalogSpec`, or explain every mistake in it."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError

from ingestion_project.catalog.errors import CatalogError, CatalogProblem
from ingestion_project.catalog.spec import (
    CATALOG_NAME,
    FILE_DATASTORE_KINDS,
    SQL_DATASTORE_KINDS,
    WORKSPACE_DEFAULT,
    AdlsGen2DatastoreSpec,
    AzureBlobDatastoreSpec,
    AzureFileShareDatastoreSpec,
    AzureSqlDatastoreSpec,
    BetweenCheck,
    CatalogSpec,
    ColumnsCheck,
    CronTrigger,
    DataChangeTrigger,
    DatasetSpec,
    DbfsDatastoreSpec,
    HttpDatastoreSpec,
    LocalDatastoreSpec,
    ModelSpec,
    MonitorSpec,
    MySqlDatastoreSpec,
    NotNullCheck,
    PostgresDatastoreSpec,
    RegistrySpec,
    SecretRef,
    SpecModel,
    UniqueCheck,
)
from ingestion_project.datastores.base import validate_glob

SpecT = TypeVar("SpecT", bound=BaseModel)

DATASTORE_KINDS: dict[str, type[SpecModel]] = {
    "local": LocalDatastoreSpec,
    "azure_blob": AzureBlobDatastoreSpec,
    "azure_file_share": AzureFileShareDatastoreSpec,
    "adls_gen2": AdlsGen2DatastoreSpec,
    "postgresql": PostgresDatastoreSpec,
    "mysql": MySqlDatastoreSpec,
    "azure_sql": AzureSqlDatastoreSpec,
    "dbfs": DbfsDatastoreSpec,
    "http": HttpDatastoreSpec,
}
CHECK_KINDS: dict[str, type[SpecModel]] = {
    "not_null": NotNullCheck,
    "between": BetweenCheck,
    "unique": UniqueCheck,
    "columns": ColumnsCheck,
}
SECTIONS = ("registry", "datastores", "datasets", "models", "monitors")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (YAML keeps the last)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, Hashable):
            continue
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"'{key}' is declared twice in the same mapping", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def load_catalog_file(path: Path, *, check_env: bool = True) -> CatalogSpec:
    """Read a catalog YAML file (the `attributes:` of a defs.yaml, or a bare catalog)."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as error:
        raise CatalogError(
            path, [CatalogProblem("(file)", f"is not valid YAML ({error})", "Fix the syntax.")]
        ) from None
    if isinstance(raw, Mapping) and "attributes" in raw:
        raw = raw["attributes"] or {}
    return parse_catalog(raw, source=path, check_env=check_env)


def parse_catalog(
    raw: Mapping[str, Any], *, source: Path | str, check_env: bool = True
) -> CatalogSpec:
    """Validate every entry, cross-check references, and raise one error listing all mistakes."""
    problems: list[CatalogProblem] = []
    if not isinstance(raw, Mapping):
        raise CatalogError(
            source,
            [CatalogProblem("(top level)", "must be a mapping", f"Use the sections {SECTIONS}.")],
        )
    problems.extend(
        CatalogProblem(
            str(key),
            "unknown section",
            f"Use only {', '.join(SECTIONS)}{_did_you_mean(str(key), SECTIONS)}",
        )
        for key in raw
        if key not in SECTIONS
    )

    registry = _validate(RegistrySpec, raw.get("registry") or {}, "registry", problems)
    datastores = _parse_datastores(_section(raw, "datastores", problems), problems)
    datasets = _parse_entries(
        DatasetSpec, _section(raw, "datasets", problems), "datasets", problems
    )
    models = _parse_entries(ModelSpec, _section(raw, "models", problems), "models", problems)
    monitors = _parse_entries(
        MonitorSpec, _section(raw, "monitors", problems), "monitors", problems
    )

    spec = CatalogSpec(
        registry=registry or RegistrySpec(),
        datastores=datastores,
        datasets=datasets,
        models=models,
        monitors=monitors,
    )
    # Entries with their own mistakes are already reported; references to them are not.
    broken = {
        section: {str(name) for name in _section(raw, section, [])} - set(getattr(spec, section))
        for section in ("datastores", "datasets", "models")
    }
    problems.extend(_cross_check(spec, broken))
    if check_env:
        problems.extend(_missing_secrets(spec))
    if not problems:
        return spec
    raise CatalogError(source, problems)


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


def _parse_datastores(raw: Mapping[str, Any], problems: list[CatalogProblem]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
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
        spec_type = DATASTORE_KINDS.get(str(kind))
        if spec_type is None:
            problems.append(
                CatalogProblem(
                    f"{where}.kind",
                    f"unknown datastore kind {kind!r}",
                    f"Use one of: {', '.join(DATASTORE_KINDS)}"
                    f"{_did_you_mean(str(kind), list(DATASTORE_KINDS))}",
                )
            )
            continue
        spec = _validate(spec_type, entry, where, problems, show_input=False)
        if spec is not None:
            parsed[name] = spec
    if WORKSPACE_DEFAULT not in parsed and WORKSPACE_DEFAULT not in raw:
        parsed[WORKSPACE_DEFAULT] = LocalDatastoreSpec(kind="local")
    return parsed


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
                    f"Write e.g. '- not_null: [col]'; checks: {', '.join(CHECK_KINDS)}",
                )
            )
            continue
        (kind,) = check.keys()
        check_type = CHECK_KINDS.get(kind)
        if check_type is None:
            problems.append(
                CatalogProblem(
                    check_where,
                    f"unknown check {kind!r}",
                    f"Use one of: {', '.join(CHECK_KINDS)}{_did_you_mean(kind, CHECK_KINDS)}",
                )
            )
            continue
        parsed = _validate(check_type, check, check_where, problems)
        if parsed is not None:
            checks.append(parsed)
    entry["checks"] = checks
    trigger = entry.get("trigger")
    if isinstance(trigger, Mapping) and True in trigger:
        # YAML 1.1 reads a bare `on:` key as the boolean true.
        trigger = {("on" if key is True else key): value for key, value in trigger.items()}
    if trigger is not None:
        trigger_where = f"{where}.trigger"
        if isinstance(trigger, Mapping) and "cron" in trigger:
            entry["trigger"] = _validate(CronTrigger, trigger, trigger_where, problems)
        elif isinstance(trigger, Mapping) and "on" in trigger:
            entry["trigger"] = _validate(DataChangeTrigger, trigger, trigger_where, problems)
        else:
            problems.append(
                CatalogProblem(
                    trigger_where,
                    "is neither a schedule nor a data-change trigger",
                    "Write '{cron: \"0 2 * * *\", timezone: UTC}' or "
                    "'{on: data_change, every: 60s}'",
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
        for detail in error.errors():
            location = ".".join(str(part) for part in detail["loc"])
            entry_path = f"{where}.{location}" if location else where
            kind = detail["type"]
            if kind == "extra_forbidden":
                key = str(detail["loc"][-1])
                allowed = _allowed_keys(spec_type, detail["loc"])
                problems.append(
                    CatalogProblem(
                        entry_path,
                        f"unknown key '{key}'",
                        f"Allowed keys: {', '.join(allowed)}{_did_you_mean(key, allowed)}",
                    )
                )
            elif kind == "missing":
                problems.append(
                    CatalogProblem(entry_path, "is required but missing", "Add it to the entry.")
                )
            elif _is_secret_field(spec_type, detail["loc"]):
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
                shown = f" (got {detail.get('input')!r})" if show_input and detail["loc"] else ""
                problems.append(CatalogProblem(entry_path, f"{message}{shown}", "Fix the value."))
        return None


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
        if "SecretRef" in str(field.annotation):
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


def _cross_check(spec: CatalogSpec, broken: dict[str, set[str]]) -> list[CatalogProblem]:
    """References between entries: datastores exist and have the right kind, names are unique."""
    problems: list[CatalogProblem] = []
    stores = spec.datastores
    declared = ", ".join(sorted(stores))
    seen: dict[str, str] = {}
    for section in ("datasets", "models", "monitors"):
        for name in getattr(spec, section):
            if name in seen:
                problems.append(
                    CatalogProblem(
                        f"{section}.{name}",
                        f"name is already used by {seen[name]}.{name}",
                        "Asset names must be unique across datasets, models and monitors; "
                        "rename one",
                    )
                )
            seen[name] = section
    for name, model in spec.models.items():
        generated = f"{name}_predictions"
        if model.scoring is not None and generated in seen:
            problems.append(
                CatalogProblem(
                    f"{seen[generated]}.{generated}",
                    f"name is already used by the predictions of models.{name}",
                    f"Model '{name}' writes its predictions to the asset '{generated}'; rename one",
                )
            )
    if spec.registry.datastore in broken["datastores"]:
        pass  # already reported where it is declared
    elif spec.registry.datastore not in stores:
        problems.append(_unknown_store("registry.datastore", spec.registry.datastore, declared))
    elif stores[spec.registry.datastore].kind not in FILE_DATASTORE_KINDS:
        problems.append(
            CatalogProblem(
                "registry.datastore",
                f"'{spec.registry.datastore}' is a SQL datastore",
                "The registry needs a file datastore; use workspace_default",
            )
        )
    for name, dataset in spec.datasets.items():
        where = f"datasets.{name}"
        store = stores.get(dataset.datastore)
        if dataset.datastore in broken["datastores"]:
            continue
        if store is None:
            problems.append(_unknown_store(f"{where}.datastore", dataset.datastore, declared))
            continue
        if dataset.path is not None:
            if store.kind not in FILE_DATASTORE_KINDS:
                problems.append(
                    CatalogProblem(
                        f"{where}.path",
                        f"datastore '{dataset.datastore}' is a SQL datastore ({store.kind})",
                        "Use 'query:' for SQL datastores, or point 'datastore:' at a file store",
                    )
                )
            else:
                try:
                    validate_glob(dataset.path, store=dataset.datastore)
                except ValueError as error:
                    problems.append(
                        CatalogProblem(f"{where}.path", str(error), "Fix the glob pattern")
                    )
        elif store.kind not in SQL_DATASTORE_KINDS:
            problems.append(
                CatalogProblem(
                    f"{where}.query",
                    f"datastore '{dataset.datastore}' holds files ({store.kind}), not tables",
                    "Use 'path:' with a glob, or point 'datastore:' at a SQL datastore",
                )
            )

    for name, model in spec.models.items():
        where = f"models.{name}"
        problems.extend(_dataset_ref(spec, f"{where}.train_on", model.train_on, broken))
        if model.scoring is not None:
            problems.extend(
                _dataset_ref(spec, f"{where}.scoring.dataset", model.scoring.dataset, broken)
            )
            scoring_store = stores.get(model.scoring.datastore)
            if model.scoring.datastore in broken["datastores"]:
                pass
            elif scoring_store is None:
                problems.append(
                    _unknown_store(f"{where}.scoring.datastore", model.scoring.datastore, declared)
                )
            elif scoring_store.kind not in FILE_DATASTORE_KINDS:
                problems.append(
                    CatalogProblem(
                        f"{where}.scoring.datastore",
                        "predictions are written as files",
                        "Point it at a file datastore such as workspace_default",
                    )
                )
    for name, monitor in spec.monitors.items():
        where = f"monitors.{name}"
        model = spec.models.get(monitor.model)
        if monitor.model in broken["models"]:
            continue
        if model is None:
            problems.append(
                CatalogProblem(
                    f"{where}.model",
                    f"'{monitor.model}' is not a declared model",
                    f"Declared models: {', '.join(sorted(spec.models)) or 'none'}",
                )
            )
            continue
        if model.scoring is None:
            problems.append(
                CatalogProblem(
                    f"{where}.model",
                    f"model '{monitor.model}' has no 'scoring:' section",
                    "A monitor compares the model's predictions on new data: add models."
                    f"{monitor.model}.scoring",
                )
            )
            continue
        if monitor.target and monitor.target != model.scoring.dataset:
            problems.append(
                CatalogProblem(
                    f"{where}.target",
                    f"'{monitor.target}' is not the dataset model '{monitor.model}' scores "
                    f"('{model.scoring.dataset}')",
                    "Leave 'target' out, or make it the model's scoring dataset",
                )
            )
        unknown = sorted(set(monitor.features or []) - set(model.features))
        if unknown:
            problems.append(
                CatalogProblem(
                    f"{where}.features",
                    f"{unknown} are not features of model '{monitor.model}'",
                    f"Pick from: {', '.join(model.features)}",
                )
            )
    return problems


def _dataset_ref(
    spec: CatalogSpec, where: str, name: str, broken: dict[str, set[str]]
) -> list[CatalogProblem]:
    if name in spec.datasets or name in broken["datasets"]:
        return []
    return [
        CatalogProblem(
            where,
            f"'{name}' is not a declared dataset",
            f"Declared datasets: {', '.join(sorted(spec.datasets)) or 'none'}"
            f"{_did_you_mean(name, list(spec.datasets))}",
        )
    ]


def _unknown_store(where: str, name: str, declared: str) -> CatalogProblem:
    return CatalogProblem(
        where,
        f"'{name}' is not a declared datastore",
        f"Declared datastores: {declared}{_did_you_mean(name, declared.split(', '))}",
    )


def _missing_secrets(spec: CatalogSpec) -> list[CatalogProblem]:
    """Secrets are read at run time, but a missing variable should fail loading, not a run."""
    return [
        CatalogProblem(
            f"datastores.{name}.{where}",
            f"environment variable '{ref.env}' is not set",
            f"Set {ref.env} in the environment of the Dagster processes "
            "(webserver, daemon, run workers) or in a .env file",
        )
        for name, store in spec.datastores.items()
        for where, ref in secret_refs(store)
        if ref.env not in os.environ
    ]


def secret_refs(model: BaseModel, prefix: str = "") -> list[tuple[str, SecretRef]]:
    """Every secret a spec names, with its dotted path, however deeply it is nested."""
    found: list[tuple[str, SecretRef]] = []
    for field_name in type(model).model_fields:
        value = getattr(model, field_name)
        path = f"{prefix}{field_name}"
        if isinstance(value, SecretRef):
            found.append((path, value))
        elif isinstance(value, BaseModel):
            found.extend(secret_refs(value, f"{path}."))
    return found


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


def _did_you_mean(value: str, options: Any) -> str:
    import difflib

    close = difflib.get_close_matches(value, [str(option) for option in options], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
