"""`ingestion datasets ...`: list datasets, their versions, one version's facts; download one.

"Latest" is the latest version that passed its checks; failed versions are flagged wherever they
are shown, and read only when named by number. The dataset API (pandas, Dagster) is imported
inside each command so `ingestion --help` stays instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ingestion_project.cli_support import (
    explained_errors,
    loaded_project,
    project_option,
)

if TYPE_CHECKING:
    from ingestion_project.datasets.api import DatasetVersion, DatasetVersionInfo, Workspace
    from ingestion_project.records import (
        DatasetVersionRecord,
        ProfileRow,
        QualityReport,
        SchemaColumn,
    )


FILES_SHOWN = 20
QUERY_SHOWN = 60


@click.group()
def datasets() -> None:
    """Registered dataset versions: list them, inspect one, download its files."""


def _workspace(project: Path | None) -> Workspace:
    from ingestion_project.datasets.api import Workspace
    from ingestion_project.settings import ingestion_home

    loaded = loaded_project(project)
    return Workspace(loaded.catalog, ingestion_home(loaded.root), loaded.root)


def _materialize_hint(name: str) -> str:
    from ingestion_project.datasets.api import materialize_hint

    return materialize_hint(name)


@datasets.command("list")
@project_option
def list_datasets(project: Path | None) -> None:
    """Each declared dataset: what it points at, its latest version and any newer failed one."""
    with explained_errors():
        workspace = _workspace(project)
        summaries = workspace.datasets()
        if not summaries:
            click.echo(
                f"The project at {workspace.project_root} declares no datasets. Declare one "
                "under 'datasets:' in a catalog."
            )
            return
        click.echo(f"{_count(len(summaries), 'dataset')} in {workspace.project_root}:")
        for item in summaries:
            source = f"path {item.path}" if item.path is not None else f"query {_short(item.query)}"
            click.echo(
                f"  {item.name}: {item.kind}, datastore {item.datastore}, {source} "
                f"({item.mode} mode)"
            )
            latest, newest = item.latest, item.newest
            if newest is None:
                click.echo(f"      no version yet (materialize it: {_materialize_hint(item.name)})")
                continue
            if latest is None:
                click.echo("      no version passed its checks, so there is no latest")
            else:
                click.echo(
                    f"      latest: version {latest.version}, {_contents(latest)}, registered "
                    f"{_when(latest.registered_at)}"
                )
            if latest is None or newest.version != latest.version:
                click.echo(
                    f"      newest: version {newest.version} {newest.quality_text}, not used "
                    f"(see why: ingestion datasets show {item.name}:{newest.version})"
                )


@datasets.command("versions")
@click.argument("name")
@project_option
def list_versions(name: str, project: Path | None) -> None:
    """Every registered version of dataset NAME, newest first, failed ones flagged."""
    with explained_errors():
        workspace = _workspace(project)
        versions = workspace.versions(name)
        if not versions:
            click.echo(f"{name} has no version yet (materialize it: {_materialize_hint(name)}).")
            return
        rows = [_version_row(info) for info in reversed(versions)]
        for line in _table(rows):
            click.echo(line)
        click.echo(f"{_count(len(versions), 'version')} of {name}; {_latest_note(versions)}")


def _latest_note(versions: Sequence[DatasetVersionInfo]) -> str:
    """Which version is the latest, and why newer ones are not."""
    passed = [info.version for info in versions if info.passed]
    latest = passed[-1] if passed else 0
    newer = [str(info.version) for info in versions if info.version > latest]
    if len(newer) == 1:
        failed = f"version {newer[0]} FAILED its checks and is not used"
    else:
        failed = f"versions {', '.join(newer)} FAILED their checks and are not used"
    if not latest:
        return f"none passed its checks, so there is no latest ({failed})."
    if not newer:
        return f"the latest is version {latest}."
    return f"the latest is version {latest}; {failed}."


def _version_row(info: DatasetVersionInfo) -> dict[str, str]:
    return {
        "version": str(info.version),
        "registered": _when(info.registered_at) if info.registered_at else "unknown",
        "rows": "-" if info.rows is None else f"{info.rows:,}",
        "files": str(info.files),
        "mode": info.mode,
        "fingerprint": info.fingerprint[:12],
        "run id": (info.run_id or "")[:8],
        "used by": _uses(info.used_by) or "-",
        "quality": info.quality_text,
    }


@datasets.command("show")
@click.argument("reference", metavar="NAME[:VERSION]")
@project_option
def show_version(reference: str, project: Path | None) -> None:
    """The facts of one version (the latest that passed its checks by default)."""
    with explained_errors():
        workspace = _workspace(project)
        version = _get(workspace, reference)
        record = version.record
        info = _info(record)
        latest = workspace.registry.latest(version.name)
        note = _version_note(record, None if latest is None else latest.version)
        click.echo(
            f"Dataset {version.name} version {version.version} ({note}), registered "
            f"{_when(info.registered_at)}."
        )
        if record.query:
            params = record.params or {}
            where = f"query {_short(record.query)}" + (f" with {params}" if params else "")
        else:
            where = f"path {record.path}"
        click.echo(
            f"  {info.kind} dataset in {info.mode} mode; datastore {record.datastore}, "
            f"{where}; format {record.format or 'unknown'}; files kept in datastore "
            f"{record.manifest_store}."
        )
        click.echo(f"  {_contents(info)}; fingerprint {info.fingerprint}.")
        _echo_quality(record.quality)
        for warning in record.warnings or []:
            click.echo(f"  Warning: {warning}")
        _echo_schema(record.table_schema or [])
        _echo_profile(record.profile or [])
        _echo_files(version)
        _echo_lineage(version)


def _version_note(record: DatasetVersionRecord, latest: int | None) -> str:
    if not record.passed:
        where = f"the latest is {latest}" if latest else "no version passed them"
        return f"FAILED its checks, so it is never the latest; {where}"
    return "the latest" if latest == record.version else f"the latest is {latest}"


def _echo_quality(quality: QualityReport | None) -> None:
    from ingestion_project.quality.gate import failure_text

    if quality is None:
        click.echo("  Quality: unchecked (no checks were declared when it was registered).")
        return
    names = ", ".join(check.name for check in quality.checks)
    if quality.passed:
        click.echo(f"  Quality: passed its checks ({names}).")
        return
    click.echo(f"  Quality: FAILED checks: {', '.join(quality.failed_checks)} (declared: {names}).")
    click.echo(f"Failed expectations ({len(quality.failures) + quality.failures_not_recorded}):")
    for failure in quality.failures:
        click.echo(f"  - {failure_text(failure)} [{failure.expectation}]")
    if quality.failures_not_recorded:
        click.echo(f"  ... and {quality.failures_not_recorded} more, not recorded.")


def _info(record: DatasetVersionRecord) -> DatasetVersionInfo:
    from ingestion_project.datasets.api import DatasetVersionInfo

    return DatasetVersionInfo.from_record(record, [])


def _echo_schema(schema: Sequence[SchemaColumn]) -> None:
    if not schema:
        return
    click.echo(f"Schema ({_count(len(schema), 'column')}):")
    for line in _table([{"column": c.name, "type": c.type} for c in schema]):
        click.echo(f"  {line}")


def _echo_profile(profile: Sequence[ProfileRow]) -> None:
    if not profile:
        return
    click.echo("Profile:")
    rows = [
        {
            "column": item.column,
            "nulls": _cell(item.nulls),
            "distinct": _cell(item.distinct),
            "min": _cell(item.min),
            "max": _cell(item.max),
            "mean": _cell(item.mean),
        }
        for item in profile
    ]
    for line in _table(rows):
        click.echo(f"  {line}")


def _echo_files(version: DatasetVersion) -> None:
    files = version.files()
    click.echo(f"Manifest ({_count(len(files), 'file')}):")
    for info in files[:FILES_SHOWN]:
        click.echo(f"  {info.path}  {_size(info.size)}  etag {info.etag}")
    if len(files) > FILES_SHOWN:
        click.echo(f"  ... and {len(files) - FILES_SHOWN} more ({len(files)} in all).")


def _echo_lineage(version: DatasetVersion) -> None:
    lineage = version.record.lineage
    upstream = lineage.upstream
    click.echo(
        f"Lineage: registered by run {lineage.run_id or 'none (outside Dagster)'}, code "
        f"version {lineage.code_version or 'unknown'}; upstream: "
        f"{', '.join(map(str, upstream)) or 'none'}."
    )
    click.echo(f"Used by: {_uses(version.used_by()) or 'no model yet'}.")


@datasets.command("download")
@click.argument("reference", metavar="NAME[:VERSION]")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@project_option
def download_version(reference: str, directory: Path, project: Path | None) -> None:
    """Copy the files of one version (the latest that passed its checks by default)."""
    with explained_errors():
        workspace = _workspace(project)
        version = _get(workspace, reference)
        files = version.files()
        total = sum(info.size for info in files)
        size = f"{_count(len(files), 'file')} ({_size(total)})"
        what = f"{size} of {version.name} version {version.version}"
        click.echo(f"Downloading {what} to {directory}...")
        with click.progressbar(length=total, label=f"{version.name} v{version.version}") as bar:
            seen = 0

            def progress(done: int, _total: int) -> None:
                nonlocal seen
                bar.update(done - seen)
                seen = done

            version.download(directory, progress=progress)
        click.echo(f"Downloaded {what} to {directory}.")


def _get(workspace: Workspace, reference: str) -> DatasetVersion:
    name, _, number = reference.partition(":")
    if not number or number == "latest":
        return workspace.get(name)
    if not number.isdigit() or int(number) < 1:
        raise click.UsageError(
            f"'{reference}' is not NAME or NAME:VERSION: the version must be a number like "
            f"{name}:1 (or leave it out for the latest)."
        )
    return workspace.get(name, int(number))


def _table(rows: Sequence[dict[str, str]]) -> list[str]:
    """Rows as aligned plain-text columns, headed by the keys."""
    if not rows:
        return []
    names = list(rows[0])
    widths = {key: max(len(key), *(len(row[key]) for row in rows)) for key in names}
    lines = ["  ".join(key.ljust(widths[key]) for key in names).rstrip()]
    lines.extend("  ".join(row[key].ljust(widths[key]) for key in names).rstrip() for row in rows)
    return lines


def _uses(uses: Sequence[dict[str, Any]]) -> str:
    return ", ".join(
        f"{use['model']} v{use['version']}" + (" (champion)" if use.get("champion") else "")
        for use in uses
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "at an unknown time"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _contents(info: DatasetVersionInfo) -> str:
    """'5 rows in 2 files (1.2 kB)'; a file dataset has files, not rows."""
    files = f"{_count(info.files, 'file')} ({_size(info.bytes)})"
    if info.kind == "file":
        return files
    rows = "an unknown number of rows" if info.rows is None else _count(info.rows, "row")
    return f"{rows} in {files}"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return _count(size, "byte")


def _short(query: str | None) -> str:
    text = " ".join((query or "").split())
    return text if len(text) <= QUERY_SHOWN else f"{text[: QUERY_SHOWN - 3]}..."
