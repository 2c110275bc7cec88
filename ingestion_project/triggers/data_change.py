"""Sensors that fire when the files or tables behind datasets change, judged without reading data.

Files are judged from their listing (path, size, ETag), SQL datasets from cheap fingerprints of
the tables they read. There is one sensor per catalog and interval, not one per dataset: the
daemon then evaluates one tick instead of thousands, and a project with thousands of datasets
loads quickly. Each dataset keeps its own place in the cursor and its own run keys, so one
change gives one run (see change_cursor), and a tick that runs out of time resumes where it
stopped on the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dagster as dg

from ingestion_project.catalog.spec import DataChangeTrigger, DatasetSpec, RegistrySpec
from ingestion_project.datastores.base import DatastoreError
from ingestion_project.triggers.change_cursor import ChangeCursor, WatchCursor

# Dagster gives a sensor tick 60 s; stop looking at more datasets after this, resume next tick.
TICK_BUDGET_SECONDS = 40.0


@dataclass(frozen=True)
class WatchedDataset:
    """A dataset with a data-change trigger, and the assets a change of it refreshes."""

    name: str
    spec: DatasetSpec
    selection: tuple[str, ...]

    @property
    def interval(self) -> str:
        trigger = self.spec.trigger
        assert isinstance(trigger, DataChangeTrigger)
        return trigger.data_change.every


def data_change_sensor_name(catalog: str, every: str) -> str:
    """E.g. 'catalog__data_change_every_30s': the catalog's folder and the polling interval."""
    return f"{catalog}__data_change_every_{every}"


def build_data_change_sensors(
    catalog: str, watched: Sequence[WatchedDataset], registry: RegistrySpec | None = None
) -> list[dg.SensorDefinition]:
    """One sensor per interval that the catalog's data-change triggers use."""
    by_interval: dict[str, list[WatchedDataset]] = {}
    for item in watched:
        by_interval.setdefault(item.interval, []).append(item)
    return [
        build_data_change_sensor(data_change_sensor_name(catalog, every), items, registry=registry)
        for every, items in by_interval.items()
    ]


def build_data_change_sensor(
    name: str,
    watched: Sequence[WatchedDataset],
    *,
    clock: Callable[[], float] = time.monotonic,
    budget_seconds: float = TICK_BUDGET_SECONDS,
    registry: RegistrySpec | None = None,
) -> dg.SensorDefinition:
    """Each tick looks at every watched dataset in turn and asks for one run per changed one.

    With the ``registry``, a dataset the cursor does not know yet (a new sensor, or a cursor
    reset) whose files are exactly those of its latest version asks for no run: that change
    was registered already.
    """
    trigger = watched[0].spec.trigger
    assert isinstance(trigger, DataChangeTrigger)
    names = ", ".join(item.name for item in watched)
    by_name = {item.name: item for item in watched}

    @dg.sensor(
        name=name,
        asset_selection=dg.AssetSelection.assets(
            *sorted({key for item in watched for key in item.selection})
        ),
        minimum_interval_seconds=trigger.interval_seconds,
        required_resource_keys={item.spec.datastore for item in watched}
        | ({registry.datastore} if registry is not None else set()),
        description=f"Refreshes a dataset (and what scores or monitors it) when its files or "
        f"tables change, every {trigger.data_change.every}: {names}.",
    )
    def data_change_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        cursor = WatchCursor.parse(context.cursor)
        started = clock()
        requests: list[dg.RunRequest] = []
        notes: list[str] = []
        failures: list[str] = []
        order = cursor.rotation(list(by_name))
        after: str | None = None
        for position, dataset in enumerate(order):
            if position and clock() - started > budget_seconds:
                notes.append(f"time budget reached; resumes at '{dataset}' on the next tick")
                break
            after = dataset
            item = by_name[dataset]
            try:
                fingerprint, summary = observe(
                    item, getattr(context.resources, item.spec.datastore)
                )
            except DatastoreError as error:
                context.log.error(f"dataset '{dataset}': cannot tell whether it changed: {error}")
                failures.append(f"dataset '{dataset}': cannot tell whether it changed: {error}")
                continue
            state = cursor.datasets.get(dataset, ChangeCursor())
            if fingerprint is None or fingerprint == state.fingerprint:
                notes.append(f"'{dataset}' {summary}")
                continue
            if state.fingerprint is None and registry is not None and item.spec.path is not None:
                registered = _registered_version(context, registry, dataset, fingerprint)
                if registered is not None:
                    # Continue the count from the version, so later run keys are new ones.
                    known = ChangeCursor(fingerprint=fingerprint, changes=registered)
                    cursor = cursor.with_dataset(dataset, known)
                    notes.append(f"'{dataset}' v{registered} holds these files already")
                    continue
            advanced = ChangeCursor(fingerprint=fingerprint, changes=state.changes + 1)
            cursor = cursor.with_dataset(dataset, advanced)
            requests.append(
                dg.RunRequest(
                    run_key=f"{dataset}:{advanced.changes}:{fingerprint}",
                    asset_selection=[dg.AssetKey(key) for key in item.selection],
                    tags={
                        "ingestion/dataset": dataset,
                        "ingestion/fingerprint": fingerprint[:16],
                    },
                )
            )
        completed = after == order[-1]
        cursor = cursor.resuming_after(None if completed else after)
        if failures and len(failures) == len(order):
            raise DatastoreError("; ".join(failures), reason="error")
        if not requests:
            return dg.SensorResult(
                skip_reason=dg.SkipReason("; ".join(notes + failures) or "nothing to check"),
                cursor=cursor.serialize(),
            )
        return dg.SensorResult(run_requests=requests, cursor=cursor.serialize())

    return data_change_sensor


def observe(item: WatchedDataset, store: object) -> tuple[str | None, str]:
    """The dataset's current fingerprint (None when there is nothing yet) and a few words on it."""
    spec = item.spec
    if spec.query is not None:
        tables = list(spec.tables)
        fingerprint = store.query_fingerprint(spec.query, dict(spec.params), tables=tables)  # type: ignore[attr-defined]
        return fingerprint, f"unchanged (tables: {', '.join(tables)})"
    assert spec.path is not None
    fingerprint, count = store.listing_fingerprint(spec.path)  # type: ignore[attr-defined]
    if fingerprint is None:
        return None, f"has no files matching '{spec.path}' in '{spec.datastore}' yet"
    return fingerprint, f"unchanged ({count} files)"


def _registered_version(
    context: dg.SensorEvaluationContext, registry: RegistrySpec, dataset: str, listing: str
) -> int | None:
    """The latest version's number if it pins exactly the files of ``listing``."""
    from ingestion_project.datasets.versions import dataset_registry

    store = getattr(context.resources, registry.datastore)
    latest = dataset_registry(store, registry.prefix).latest(dataset, include_failed=True)
    if latest is not None and latest.listing_fingerprint == listing:
        return latest.version
    return None
