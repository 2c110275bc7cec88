"""Sensors that fire when the files or tables behind datasets change, judged without reading data.

Files are judged from their listing (path, size, ETag), SQL datasets from cheap fingerprints of
the tables they read. There is one sensor per catalog and interval, not one per dataset: the
daemon then evaluates one tick instead of thousands, and a project with thousands of datasets
loads quickly. Each dataset keeps its own place in the cursor and its own run keys, so one
change gives one run (see change_cursor), and a tick that runs out of time resumes where it
stopped on the next one.

A store whose service lists a page at a time (Azure Blob, ADLS Gen2) is listed page by page
into an order-independent set digest; a listing that outlasts the tick's budget leaves its
token and partial digest in the cursor, and the next tick goes on from there. Only a finished
listing is compared with the last one. A file changed behind the scan (on a page already read)
is seen by the next scan, so it still asks for exactly one run, one scan later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import dagster as dg

from ingestion_project.catalog.spec import DataChangeTrigger, DatasetSpec, RegistrySpec
from ingestion_project.datastores.base import (
    LISTING_PAGE_SIZE,
    SET_FINGERPRINT_PREFIX,
    DatastoreError,
    FileDatastore,
    set_digest,
    set_fingerprint,
)
from ingestion_project.triggers.change_cursor import ChangeCursor, ListingScan, WatchCursor
from ingestion_project.triggers.tick_stores import TickStores

# Dagster gives a sensor tick 60 s. Past this, a tick reads no further page and looks at no
# further dataset; the next tick resumes. A page of 5,000 blobs takes about 2.3 s on Azurite.
TICK_BUDGET_SECONDS = 20.0


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
    catalog: str,
    watched: Sequence[WatchedDataset],
    registry: RegistrySpec | None = None,
    datastores: Mapping[str, Any] | None = None,
) -> list[dg.SensorDefinition]:
    """One sensor per interval that the catalog's data-change triggers use."""
    by_interval: dict[str, list[WatchedDataset]] = {}
    for item in watched:
        by_interval.setdefault(item.interval, []).append(item)
    return [
        build_data_change_sensor(
            data_change_sensor_name(catalog, every),
            items,
            registry=registry,
            datastores=datastores,
        )
        for every, items in by_interval.items()
    ]


def build_data_change_sensor(
    name: str,
    watched: Sequence[WatchedDataset],
    *,
    clock: Callable[[], float] = time.monotonic,
    budget_seconds: float = TICK_BUDGET_SECONDS,
    registry: RegistrySpec | None = None,
    page_size: int = LISTING_PAGE_SIZE,
    datastores: Mapping[str, Any] | None = None,
) -> dg.SensorDefinition:
    """Each tick looks at every watched dataset in turn and asks for one run per changed one.

    With the ``registry``, a dataset the cursor does not know yet (a new sensor, or a cursor
    reset) whose files are exactly those of its latest version asks for no run: that change
    was registered already. Stores in ``datastores`` (the Definitions' own objects) are used
    as they are, not declared as resources, so a tick costs no Dagster instance (tick_stores).
    """
    trigger = watched[0].spec.trigger
    assert isinstance(trigger, DataChangeTrigger)
    names = ", ".join(item.name for item in watched)
    by_name = {item.name: item for item in watched}
    stores = TickStores(
        {item.spec.datastore for item in watched}
        | ({registry.datastore} if registry is not None else set()),
        datastores,
    )

    @dg.sensor(
        name=name,
        asset_selection=dg.AssetSelection.assets(
            *sorted({key for item in watched for key in item.selection})
        ),
        minimum_interval_seconds=trigger.interval_seconds,
        required_resource_keys=stores.required_resource_keys,
        description=f"Refreshes a dataset (and what scores or monitors it) when its files or "
        f"tables change, every {trigger.data_change.every}: {names}.",
    )
    def data_change_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        cursor = WatchCursor.parse(context.cursor)
        started = clock()

        def out_of_time() -> bool:
            return clock() - started > budget_seconds

        requests: list[dg.RunRequest] = []
        notes: list[str] = []
        failures: list[str] = []
        names = list(by_name)
        order = cursor.rotation(names)
        after: str | None = None
        unfinished = False
        for position, dataset in enumerate(order):
            if position and out_of_time():
                notes.append(f"time budget reached; resumes at '{dataset}' on the next tick")
                break
            after = dataset
            item = by_name[dataset]
            state = cursor.datasets.get(dataset, ChangeCursor())
            try:
                store = stores.get(context, item.spec.datastore)
                seen = observe(item, store, state.scan, out_of_time, page_size)
            except DatastoreError as error:
                context.log.error(f"dataset '{dataset}': cannot tell whether it changed: {error}")
                failures.append(f"dataset '{dataset}': cannot tell whether it changed: {error}")
                continue
            if seen.scan is not None or state.scan is not None:
                cursor = cursor.with_dataset(dataset, replace(state, scan=seen.scan))
            if seen.scan is not None:
                notes.append(f"'{dataset}' {seen.summary}")
                # The next tick starts at this dataset: the rotation resumes after the one before.
                after, unfinished = names[names.index(dataset) - 1], True
                break
            fingerprint = seen.fingerprint
            if fingerprint is None or fingerprint == state.fingerprint:
                notes.append(f"'{dataset}' {seen.summary}")
                continue
            if (
                registry is not None
                and item.spec.path is not None
                and not _same_kind(state.fingerprint, fingerprint)
            ):
                registry_store = stores.get(context, registry.datastore)
                registered = _registered_version(registry_store, registry, dataset, fingerprint)
                if registered is not None:
                    # Continue the count from the version, so later run keys are new ones.
                    known = ChangeCursor(fingerprint, max(registered, state.changes))
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
        completed = not unfinished and after == order[-1]
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


@dataclass(frozen=True)
class Observation:
    """One look at a dataset: its fingerprint (None: no files yet, or the listing unfinished)."""

    fingerprint: str | None
    summary: str
    scan: ListingScan | None = None


def observe(
    item: WatchedDataset,
    store: object,
    scan: ListingScan | None = None,
    out_of_time: Callable[[], bool] = lambda: False,
    page_size: int = LISTING_PAGE_SIZE,
) -> Observation:
    """The dataset's current fingerprint, or how far its paged listing got within the budget.

    A store that pages its listings is read from ``scan`` on, one page at a time, until the
    listing ends or ``out_of_time()``; at least one page is read, so every tick makes progress.
    """
    spec = item.spec
    if spec.query is not None:
        tables = list(spec.tables)
        fingerprint = store.query_fingerprint(spec.query, dict(spec.params), tables=tables)  # type: ignore[attr-defined]
        return Observation(fingerprint, f"unchanged (tables: {', '.join(tables)})")
    assert spec.path is not None
    if getattr(store, "pages_listings", False):
        fingerprint, count, scan = _scan_pages(store, spec.path, scan, out_of_time, page_size)
        if scan is not None:
            return Observation(
                None,
                f"listing in progress: {count:,} files so far, resumes next tick",
                scan,
            )
    else:
        fingerprint, count = store.listing_fingerprint(spec.path)  # type: ignore[attr-defined]
    if fingerprint is None:
        return Observation(None, f"has no files matching '{spec.path}' in '{spec.datastore}' yet")
    return Observation(fingerprint, f"unchanged ({count:,} files)")


def _scan_pages(
    store: object,
    pattern: str,
    scan: ListingScan | None,
    out_of_time: Callable[[], bool],
    page_size: int,
) -> tuple[str | None, int, ListingScan | None]:
    """(fingerprint, files, None) once the listing ends; (None, files so far, scan) if not."""
    token, digest, files = (scan.token, scan.digest, scan.files) if scan else (None, 0, 0)
    while True:
        page = store.listing_page(pattern, token, page_size)  # type: ignore[attr-defined]
        digest = set_digest(page.entries, digest)
        files += len(page.entries)
        if page.next_token is None:
            return (set_fingerprint(digest) if files else None), files, None
        token = page.next_token
        if out_of_time():
            return None, files, ListingScan(token, digest, files)


def _same_kind(known: str | None, fingerprint: str) -> bool:
    """Whether ``known`` was computed like ``fingerprint``, so they can be compared at all.

    Not so for a new dataset, and once for a cursor kept from before its store paged listings.
    """
    if known is None:
        return False
    return known.startswith(SET_FINGERPRINT_PREFIX) == fingerprint.startswith(
        SET_FINGERPRINT_PREFIX
    )


def _registered_version(
    store: FileDatastore, registry: RegistrySpec, dataset: str, listing: str
) -> int | None:
    """The latest version's number if it pins exactly the files of ``listing``.

    A version records a ``listing_digest``; a paged listing's set digest is compared with the
    set digest of the files the version lists (the originals, for a snapshot).
    """
    from ingestion_project.datasets.versions import dataset_registry

    latest = dataset_registry(store, registry.prefix).latest(dataset, include_failed=True)
    if latest is None:
        return None
    if listing.startswith(SET_FINGERPRINT_PREFIX):
        files = (latest.source_manifest or latest.manifest).columns
        pinned = set_fingerprint(
            set_digest(zip(files.paths, files.sizes, files.etags, strict=True))
        )
        return latest.version if files and pinned == listing else None
    return latest.version if latest.listing_fingerprint == listing else None
