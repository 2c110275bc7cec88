"""One software-defined asset per dataset: materializing it registers a version."""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
import pandas as pd

from ingestion_project.catalog.spec import DatasetSpec, RegistrySpec
from ingestion_project.datasets.profile import EXACT_DISTINCT
from ingestion_project.datasets.sql_datasets import register_sql_dataset
from ingestion_project.datasets.versions import (
    DatasetRegistry,
    Registration,
    dataset_registry,
    load_version,
    register_file_dataset,
    stores_from_resources,
)
from ingestion_project.datasets.windows import dataset_partitions, version_series, window_bounds
from ingestion_project.metadata import TEXT_CHARS, cell, column_schema, table, timestamp
from ingestion_project.quality.checks import check_results, check_specs, failures_table
from ingestion_project.quality.gate import failures_text, quality_word
from ingestion_project.records import DatasetVersionRecord, ProfileRow, WindowBounds

VERSIONS_SHOWN = 10
FILES_SHOWN = 20


def build_dataset_assets(
    op_name: str,
    datasets: Mapping[str, DatasetSpec],
    registry_spec: RegistrySpec,
    code_versions: Mapping[str, str],
) -> dg.AssetsDefinition:
    """The datasets of one catalog as one subsettable multi-asset: one asset per dataset.

    Materializing some of them runs only those, each judged by its declared checks on the data
    just read before its version is recorded; the verdict is in the record and is reported as
    blocking check results, and a failed version is never the latest. One op per catalog rather
    than per dataset (and checks inside it rather than beside it) keeps a project of thousands
    of datasets quick to load, as dbt and Sling components do. A dataset that fails does not
    stop the others of the same run; the step fails afterwards, naming it. ``code_versions``
    covers each entry and the code that registers versions (catalog.code_versions).
    """
    specs = [
        dg.AssetSpec(
            key=name,
            group_name="datasets",
            description=spec.description
            or f"Dataset '{name}': {spec.path or 'a SQL query'} in {spec.datastore}.",
            code_version=code_versions[name],
            kinds=_kinds(spec),
            tags=dict(spec.tags),
            owners=list(spec.owners),
            metadata=_declared(spec),
            skippable=True,
        )
        for name, spec in datasets.items()
    ]
    # Snapshots are copied into the registry's datastore, so it is needed in both modes.
    stores = {spec.datastore for spec in datasets.values()} | {registry_spec.datastore}

    @dg.multi_asset(
        name=op_name,
        specs=specs,
        check_specs=[check for name, spec in datasets.items() for check in check_specs(name, spec)],
        can_subset=True,
        required_resource_keys=stores,
    )
    def register_datasets(context: dg.AssetExecutionContext) -> Iterator[Any]:
        selected = {key.to_user_string() for key in context.selected_asset_keys}
        checks: dict[str, set[str]] = {}
        for key in context.selected_asset_check_keys:
            checks.setdefault(key.asset_key.to_user_string(), set()).add(key.name)
        names = sorted(selected | set(checks))
        failed: list[tuple[str, Exception]] = []
        for name in names:
            try:
                yield from _dataset_step(
                    context,
                    name,
                    datasets[name],
                    registry_spec,
                    code_versions[name],
                    register=name in selected,
                    checks=checks.get(name, set()),
                )
            except Exception as error:  # the other datasets of the run still register
                if len(names) == 1:
                    raise
                context.log.error(f"dataset '{name}' failed: {error}")
                failed.append((name, error))
        if failed:
            listed = ", ".join(name for name, _ in failed)
            raise dg.Failure(
                f"{len(failed)} of {len(names)} datasets failed: {listed}. Their errors are in "
                "the run's log above; the others registered.",
            ) from failed[0][1]

    return register_datasets


def build_windowed_dataset_asset(
    name: str, spec: DatasetSpec, registry_spec: RegistrySpec, code_version: str
) -> dg.AssetsDefinition:
    """A dataset partitioned by time window: each window registers its own versions.

    A range of windows (a backfill) runs in one run, window by window; a window that cannot
    register (no files dated in it, a malformed file) does not stop the others, whose
    materializations are recorded, and the run fails afterwards naming it. A window whose
    version failed its checks is recorded too (the version is kept, never used) and also fails
    the run. The checks judge each window's rows when it registers.
    """
    assert spec.windows is not None
    partitions = dataset_partitions(spec.windows)
    window_text = f"{spec.windows.frequency} windows from {spec.windows.start}"

    @dg.asset(
        name=name,
        group_name="datasets",
        description=spec.description
        or f"Dataset '{name}': {spec.path} in {spec.datastore}, one version series per window.",
        code_version=code_version,
        kinds=_kinds(spec),
        tags=dict(spec.tags),
        owners=list(spec.owners),
        metadata={**_declared(spec), "windows": window_text},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        output_required=False,
        required_resource_keys={spec.datastore, registry_spec.datastore},
    )
    def register_windows(context: dg.AssetExecutionContext) -> Iterator[dg.AssetMaterialization]:
        keys = list(context.partition_keys)
        unregistered: list[str] = []
        failed_checks: list[str] = []
        for key in keys:
            window = window_bounds(partitions, key)
            try:
                outcome, result = register_dataset(
                    context, name, spec, registry_spec, code_version, window=window
                )
            except Exception as error:  # the other windows of the run still register
                if len(keys) == 1:
                    raise
                context.log.error(f"dataset '{name}', window {key}: {error}")
                unregistered.append(key)
                continue
            if not outcome.record.passed:
                failed_checks.append(key)
            yield dg.AssetMaterialization(
                asset_key=name, partition=key, metadata=dict(result.metadata or {})
            )
        problems = []
        if unregistered:
            problems.append(
                f"{len(unregistered)} registered nothing ({_listed(unregistered)}; their errors "
                "are in the run's log)"
            )
        if failed_checks:
            problems.append(
                f"{len(failed_checks)} registered a version that failed its checks "
                f"({_listed(failed_checks)}; kept, never used)"
            )
        if problems:
            others = len(keys) - len(unregistered) - len(failed_checks)
            raise dg.Failure(
                f"Of {len(keys)} windows of '{name}', " + "; ".join(problems) + f". {others} "
                "registered or were unchanged; run the failed windows again once their data "
                "is fixed."
            )
        context.log.info(f"{name}: {len(keys)} window(s) registered or unchanged.")

    return register_windows


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")


def _declared(spec: DatasetSpec) -> dict[str, str]:
    """What the catalog declares of a dataset, shown on its asset before any run."""
    declared = {"datastore": spec.datastore, "path": spec.path, "query": spec.query}
    return {
        **{key: value for key, value in declared.items() if value},
        "kind": spec.kind,
        "mode": spec.effective_mode,
    }


def _kinds(spec: DatasetSpec) -> set[str]:
    if spec.query is not None:
        return {"sql", "parquet"}
    return {"pandas", spec.file_format} if spec.kind == "tabular" else {"files"}


def _dataset_step(
    context: dg.AssetExecutionContext,
    name: str,
    spec: DatasetSpec,
    registry_spec: RegistrySpec,
    code_version: str,
    *,
    register: bool,
    checks: set[str],
) -> Iterator[Any]:
    """Register a version (if selected), then report the selected checks' verdict on it.

    A checks-only run reports on the newest version, failed or not: it is the asset's last
    materialization, which a passing result on an older version must not paint green.
    """
    registry = dataset_registry(
        getattr(context.resources, registry_spec.datastore), registry_spec.prefix
    )
    record, frame = None, None
    if register:
        outcome, result = register_dataset(context, name, spec, registry_spec, code_version)
        record, frame = outcome.record, outcome.frame
        yield result
    if not checks:
        return
    record = record or registry.latest(name, include_failed=True)
    if record is None:
        raise dg.Failure(f"dataset '{name}' has no version yet: materialize it first.")
    checked = record

    def data() -> pd.DataFrame:
        if frame is not None:
            return frame
        stores = stores_from_resources(context.resources, [spec.datastore, registry_spec.datastore])
        return load_version(checked, stores, spec)

    yield from check_results(name, spec, record, checks, data)


def register_dataset(
    context: dg.AssetExecutionContext,
    name: str,
    spec: DatasetSpec,
    registry_spec: RegistrySpec,
    code_version: str,
    *,
    window: WindowBounds | None = None,
) -> tuple[Registration, dg.MaterializeResult]:
    """Register a version of one dataset (or window) if its data changed; say which it is now."""
    mode = spec.effective_mode
    store = getattr(context.resources, spec.datastore)
    registry_store = getattr(context.resources, registry_spec.datastore)
    registry = dataset_registry(registry_store, registry_spec.prefix)
    if spec.query is not None:
        outcome = register_sql_dataset(
            name,
            spec,
            store,
            registry,
            registry_store,
            registry_spec.datastore,
            registry_spec.prefix,
            run_id=context.run.run_id,
            code_version=code_version,
        )
        for warning in outcome.record.warnings or []:
            context.log.warning(f"dataset '{name}': {warning}")
    else:
        outcome = register_file_dataset(
            name,
            spec,
            store,
            registry,
            run_id=context.run.run_id,
            code_version=code_version,
            snapshot_store=registry_store if mode == "snapshot" else None,
            snapshot_store_name=registry_spec.datastore if mode == "snapshot" else None,
            upstream=[],
            window=window,
        )
    record = outcome.record
    label = name if window is None else f"{name} window {window.key}"
    if outcome.created:
        rows = f", {record.row_count} rows" if record.row_count is not None else ""
        copied = f" (snapshot in '{record.manifest_store}')" if mode == "snapshot" else ""
        context.log.info(
            f"Registered {label} version {record.version}: {len(record.manifest)} "
            f"files{rows}{copied}."
        )
    else:
        context.log.info(f"{label} is unchanged: still version {record.version}.")
    if record.quality is not None and not record.quality.passed:
        context.log.warning(
            f"{label} version {record.version} FAILED its checks: "
            f"{failures_text(record.quality)}. It is kept (load it by number) but never used as "
            f"the latest; {_used_instead(registry, series_of(record))}."
        )
    return outcome, dg.MaterializeResult(
        asset_key=name,
        metadata=dataset_metadata(outcome, registry),
        data_version=dg.DataVersion(record.fingerprint),
    )


def dataset_metadata(outcome: Registration, registry: DatasetRegistry) -> dict[str, Any]:
    """What the UI shows: the version, its files, and for tables their schema and profile.

    Lists are narrow typed tables (a fingerprint by its first 12 characters, times to the
    minute) so the asset page fits a laptop screen; the row count is a plain number, plotted.
    """
    record = outcome.record
    series = series_of(record)
    shown = registry.version_numbers(series)[-VERSIONS_SHOWN:]
    history = [registry.get(series, number) for number in shown]
    metadata: dict[str, Any] = {
        "version": record.version,
        "new_version": outcome.created,
        "quality": "unchecked" if record.quality is None else record.quality.status,
        "kind": record.kind,
        "mode": record.mode,
        "fingerprint": record.fingerprint,
        "files": len(record.manifest),
        "bytes": record.bytes,
    }
    if record.registered_at is not None:
        metadata["registered_at"] = timestamp(record.registered_at)
    if record.lineage.run_id:
        metadata["registered_by_run"] = dg.MetadataValue.dagster_run(record.lineage.run_id)
    if record.lineage.upstream:
        metadata["upstream"] = dg.MetadataValue.json(record.lineage.upstream)
    metadata["versions"] = versions_table(history[::-1])
    metadata.update(files_table(record))
    if record.quality is not None and not record.quality.passed:
        metadata["failed_checks"] = ", ".join(record.quality.failed_checks)
        metadata["quality_failures"] = failures_table(record.quality.failures)
        metadata["used_instead"] = _used_instead(registry, series)
    if record.query is not None:
        metadata["query"] = dg.MetadataValue.md(f"```sql\n{record.query}\n```")
    if record.tables:
        rows = [{"table": name, "fingerprint": mark[:12]} for name, mark in record.tables.items()]
        metadata["tables"] = table(rows, TABLES_COLUMNS)
    if record.warnings:
        metadata["warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in record.warnings))
    if record.is_snapshot:
        metadata["snapshot_datastore"] = record.manifest_store
        if record.snapshot_prefix:
            metadata["snapshot_prefix"] = dg.MetadataValue.path(record.snapshot_prefix)
    if record.load_options is not None and record.load_options.window is not None:
        bounds = record.load_options.window
        metadata["window"] = bounds.key
        metadata["window_start"] = timestamp(bounds.start)
        metadata["window_end"] = timestamp(bounds.end)
    if record.row_count is not None:
        metadata["dagster/row_count"] = record.row_count
    if record.table_schema is not None:
        metadata["dagster/column_schema"] = column_schema(record.table_schema)
    if record.profile is not None:
        metadata.update(profile_tables(record.profile))
    return metadata


VERSIONS_COLUMNS = [
    dg.TableColumn("version", "int"),
    dg.TableColumn("quality", "string"),
    dg.TableColumn("registered", "string", description="UTC, to the minute"),
    dg.TableColumn("rows", "int"),
    dg.TableColumn("files", "int"),
    dg.TableColumn("fingerprint", "string", description="its first 12 characters"),
    dg.TableColumn("run", "string", description="the run that registered it: first 8"),
]
FILES_COLUMNS = [
    dg.TableColumn("path", "string"),
    dg.TableColumn("bytes", "int"),
    dg.TableColumn("modified", "string", description="UTC, to the minute"),
]
TABLES_COLUMNS = [
    dg.TableColumn("table", "string"),
    dg.TableColumn("fingerprint", "string", description="its first 12 characters"),
]
PROFILE_COLUMNS = [
    dg.TableColumn("column", "string"),
    dg.TableColumn("type", "string"),
    dg.TableColumn("nulls", "int"),
    dg.TableColumn(
        "distinct", "int", description=f"exact below {EXACT_DISTINCT:,}, else within about 2%"
    ),
]
STATS_COLUMNS = [
    dg.TableColumn("column", "string"),
    dg.TableColumn("min", "string"),
    dg.TableColumn("max", "string"),
    dg.TableColumn("mean", "float"),
]


def versions_table(records: Sequence[DatasetVersionRecord]) -> dg.TableMetadataValue:
    """The latest versions, newest first: one narrow row each."""
    rows = [
        {
            "version": item.version,
            "quality": quality_word(item),
            "registered": item.registered_at,
            "rows": item.row_count,
            "files": len(item.manifest),
            "fingerprint": item.fingerprint[:12],
            "run": (item.lineage.run_id or "")[:8],
        }
        for item in records
    ]
    return table(rows, VERSIONS_COLUMNS)


def profile_tables(profile: Sequence[ProfileRow]) -> dict[str, dg.TableMetadataValue]:
    """Counts per column, then min, max and mean of the columns that have them: two tables."""
    stats = [
        {
            "column": row.column,
            "min": _stat(row.min),
            "max": _stat(row.max),
            "mean": None if row.mean is None else float(row.mean),
        }
        for row in profile
        if (row.min, row.max, row.mean) != (None, None, None)
    ]
    return {
        "profile": table([row.model_dump() for row in profile], PROFILE_COLUMNS),
        "profile_stats": table(stats, STATS_COLUMNS),
    }


def _stat(value: float | str | None) -> str | None:
    """A min or max as text (numbers to four significant digits): one column holds both kinds."""
    return None if value is None else str(cell(value))


def series_of(record: DatasetVersionRecord) -> str:
    """The registry name a version is numbered under: its dataset's, or its window's."""
    return version_series(record.dataset, record.window)


def _used_instead(registry: DatasetRegistry, name: str) -> str:
    latest = registry.latest(name)
    if latest is None:
        return "no version of it has passed its checks, so its consumers have none to use"
    return f"its consumers use version {latest.version}, the latest that passed its checks"


def files_table(record: DatasetVersionRecord) -> dict[str, Any]:
    """The first files of a version (their original paths, for snapshots), and how many more."""
    listed = record.source_manifest or record.manifest
    rows = [
        {"path": _tail(entry.path), "bytes": entry.size, "modified": entry.modified}
        for entry in listed[:FILES_SHOWN]
    ]
    shown: dict[str, Any] = {"file_list": table(rows, FILES_COLUMNS)}
    if len(listed) > FILES_SHOWN:
        shown["file_list_note"] = f"the first {FILES_SHOWN} of {len(listed)} files"
    return shown


def _tail(path: str) -> str:
    """A long path by its end, where the file's name is."""
    return path if len(path) <= TEXT_CHARS else "…" + path[-(TEXT_CHARS - 1) :]
