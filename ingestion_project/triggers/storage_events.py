"""Sensors fed by storage events: Event Grid's Blob Created/Deleted, read from a Storage queue.

A tick costs what arrived, not the size of the store: it reads at most ``max_messages`` messages
and never lists. Event Grid delivers at least once and in no particular order, so each event id
is acted on once, and an event older (by its blob's ``sequencer``) than one already seen for the
same blob is stale. A message is deleted only on the tick after the one that asked for its run:
Dagster records a tick's run requests and cursor before it evaluates the next tick. A message
that is no storage event, or that keeps coming back, is moved to ``<queue>-poison``.

The events only say which dataset changed: the run registers the dataset from a listing as any
run does, so however the events were ordered, the version is what the store holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import dagster as dg

from ingestion_project.catalog.spec import DatasetSpec, StorageEventsTrigger
from ingestion_project.datastores.base import DatastoreError, glob_matches, glob_prefix
from ingestion_project.triggers.tick_stores import TickStores

CREATED = "Microsoft.Storage.BlobCreated"
DELETED = "Microsoft.Storage.BlobDeleted"
RENAMED = "Microsoft.Storage.BlobRenamed"
DIRECTORY_EVENTS = (
    "Microsoft.Storage.DirectoryCreated",
    "Microsoft.Storage.DirectoryDeleted",
    "Microsoft.Storage.DirectoryRenamed",
)
SUBJECT_PREFIX = "/blobServices/default/containers/"
# Data Lake's CreateFile makes an empty file before its data is flushed: its event comes again
# with FlushWithClose once the file is complete.
INCOMPLETE_APIS = frozenset({"CreateFile"})
# Remembered between ticks to drop duplicates and stale events; older entries fall off.
REMEMBERED = 2000
DELETE_THREADS = 8


class NotAStorageEvent(ValueError):
    """A message that is not Event Grid (or CloudEvents) JSON of storage events."""


@dataclass(frozen=True)
class StorageEvent:
    """One event: which blob (or Data Lake directory) in which container, and its order."""

    id: str
    type: str
    container: str
    names: tuple[str, ...]
    sequencer: str
    api: str

    @property
    def directory(self) -> bool:
        return self.type in DIRECTORY_EVENTS

    @property
    def relevant(self) -> bool:
        if self.type in (CREATED, DELETED, RENAMED, *DIRECTORY_EVENTS):
            return self.api not in INCOMPLETE_APIS
        return False


def parse_message(content: str) -> list[StorageEvent]:
    """The events in a queue message: JSON or base64 JSON, one event or a list of them.

    Raises:
        NotAStorageEvent: The message is not JSON of events with an id, a type and a subject.
    """
    text = content.strip()
    if not text.startswith(("{", "[")):
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError):
            raise NotAStorageEvent("neither JSON nor base64-encoded JSON") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotAStorageEvent(f"not JSON ({error.msg} at {error.pos})") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise NotAStorageEvent("an empty list of events")
    return [_event(item) for item in items]


def _event(item: Any) -> StorageEvent:
    if not isinstance(item, dict):
        raise NotAStorageEvent("an event is not a JSON object")
    # Event Grid schema: eventType; CloudEvents 1.0: type.
    kind = item.get("eventType", item.get("type"))
    subject, identifier = item.get("subject"), item.get("id")
    if not (isinstance(kind, str) and isinstance(subject, str) and isinstance(identifier, str)):
        raise NotAStorageEvent("an event without a string 'id', 'subject' and event type")
    raw_data = item.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    container, name = _subject_parts(subject)
    names = [name] if name else []
    source = data.get("sourceUrl")
    if kind in (RENAMED, "Microsoft.Storage.DirectoryRenamed") and isinstance(source, str):
        source_name = _name_in_url(source, container)
        if source_name:
            names.append(source_name)
    return StorageEvent(
        id=identifier,
        type=kind,
        container=container,
        names=tuple(names),
        sequencer=str(data.get("sequencer") or ""),
        api=str(data.get("api") or ""),
    )


def _subject_parts(subject: str) -> tuple[str, str]:
    """'/blobServices/default/containers/c/blobs/a/b.csv' -> ('c', 'a/b.csv')."""
    if not subject.startswith(SUBJECT_PREFIX):
        return "", ""
    container, _, rest = subject[len(SUBJECT_PREFIX) :].partition("/")
    return container, rest.removeprefix("blobs/") if rest.startswith("blobs/") else ""


def _name_in_url(url: str, container: str) -> str:
    from urllib.parse import unquote, urlparse

    path = unquote(urlparse(url).path).lstrip("/")
    parts = path.split("/")
    # https://acct.blob.core.windows.net/c/a/b.csv, or Azurite's http://host:port/acct/c/a/b.csv
    if container in parts:
        return "/".join(parts[parts.index(container) + 1 :])
    return ""


@dataclass(frozen=True)
class EventWatchedDataset:
    """A dataset with a storage-events trigger, where its files are and what a change refreshes."""

    name: str
    spec: DatasetSpec
    selection: tuple[str, ...]

    @property
    def trigger(self) -> StorageEventsTrigger:
        assert isinstance(self.spec.trigger, StorageEventsTrigger)
        return self.spec.trigger


@dataclass(frozen=True)
class EventCursor:
    """What the sensor keeps between ticks (the daemon stores it with the tick's requests).

    ``pending``: messages whose runs the last tick asked for, to delete now. ``seen``: recent
    event ids. ``sequencers``: the newest sequencer seen per recent blob.
    """

    pending: tuple[tuple[str, str], ...] = ()
    seen: tuple[str, ...] = ()
    sequencers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> EventCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(
            pending=tuple((str(i), str(r)) for i, r in data.get("pending", [])),
            seen=tuple(data.get("seen", [])),
            sequencers=dict(data.get("sequencers", {})),
        )

    def serialize(self) -> str:
        return json.dumps(
            {
                "pending": [list(item) for item in self.pending],
                "seen": list(self.seen[-REMEMBERED:]),
                "sequencers": dict(list(self.sequencers.items())[-REMEMBERED:]),
            },
            sort_keys=True,
        )


def storage_events_sensor_name(catalog: str, datastore: str, queue: str) -> str:
    """E.g. 'catalog__raw_blob_events_blob_events': the catalog, the datastore and the queue."""
    return f"{catalog}__{datastore}_events_{queue.replace('-', '_')}"


def build_storage_event_sensors(
    catalog: str,
    watched: Sequence[EventWatchedDataset],
    datastores: Mapping[str, Any] | None = None,
) -> list[dg.SensorDefinition]:
    """One sensor per datastore and queue: a queue's messages are consumed by one reader."""
    groups: dict[tuple[str, str], list[EventWatchedDataset]] = {}
    for item in watched:
        groups.setdefault((item.spec.datastore, item.trigger.storage_events.queue), []).append(item)
    return [
        build_storage_event_sensor(
            storage_events_sensor_name(catalog, store, queue), items, datastores=datastores
        )
        for (store, queue), items in sorted(groups.items())
    ]


def build_storage_event_sensor(
    name: str,
    watched: Sequence[EventWatchedDataset],
    *,
    clock: Callable[[], float] = time.monotonic,
    datastores: Mapping[str, Any] | None = None,
) -> dg.SensorDefinition:
    """Each tick deletes the last tick's handled messages, then reads new ones.

    A store in ``datastores`` (the Definitions' own object) is used as it is, not declared as a
    resource (tick_stores). A tick that asks for no run and sets nothing aside says what it did
    in its skip reason only: ``context.log`` opens the Dagster instance and writes the tick's
    log through its compute log manager (Blob Storage in deploy/dagster.yaml), every tick.
    """
    first = watched[0]
    trigger, store_name = first.trigger, first.spec.datastore
    settings = trigger.storage_events
    names = ", ".join(item.name for item in watched)
    stores = TickStores({store_name}, datastores)

    @dg.sensor(
        name=name,
        asset_selection=dg.AssetSelection.assets(
            *sorted({key for item in watched for key in item.selection})
        ),
        minimum_interval_seconds=trigger.interval_seconds,
        required_resource_keys=stores.required_resource_keys,
        description=f"Refreshes a dataset (and what scores or monitors it) when Event Grid "
        f"reports a blob created or deleted in datastore '{store_name}', read from queue "
        f"'{settings.queue}' every {settings.every}: {names}.",
    )
    def storage_events_sensor(
        context: dg.SensorEvaluationContext,
    ) -> dg.SensorResult | dg.SkipReason:
        from ingestion_project.datastores.azure_queue import EventQueue

        store = stores.get(context, store_name)
        queue = EventQueue(store, settings.queue, settings.account_url)
        cursor = EventCursor.parse(context.cursor)
        started = clock()
        deleted = _delete_all(queue, cursor.pending)
        messages = queue.receive(settings.max_messages, trigger.visibility_seconds)
        tick = _Tick(cursor, store, watched)
        handled_now: list[tuple[str, str]] = []
        for message in messages:
            if message.dequeue_count > settings.max_deliveries:
                aside = queue.set_aside(message)
                context.log.warning(
                    f"Message {message.id} of queue '{settings.queue}' was delivered "
                    f"{message.dequeue_count} times without being handled; moved to '{aside}'."
                )
                tick.set_aside += 1
                continue
            try:
                events = parse_message(message.content)
            except NotAStorageEvent as error:
                aside = queue.set_aside(message)
                context.log.warning(
                    f"Message {message.id} of queue '{settings.queue}' is not a storage event "
                    f"({error}); moved to '{aside}'."
                )
                tick.set_aside += 1
                continue
            if tick.take(events):
                tick.pending.append((message.id, message.pop_receipt))
            else:
                handled_now.append((message.id, message.pop_receipt))
        _delete_all(queue, handled_now)
        requests = tick.requests()
        summary = (
            f"{len(messages)} message(s) read in {clock() - started:.1f} s, {deleted} handled "
            f"message(s) deleted; {tick.describe()}"
        )
        if requests or tick.set_aside:
            context.log.info(summary)
        if not requests:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(summary), cursor=tick.cursor().serialize()
            )
        return dg.SensorResult(run_requests=requests, cursor=tick.cursor().serialize())

    return storage_events_sensor


def _delete_all(queue: Any, messages: Sequence[tuple[str, str]]) -> int:
    """Delete messages in parallel (one request each); count those that were still there."""
    if not messages:
        return 0
    with ThreadPoolExecutor(max_workers=min(DELETE_THREADS, len(messages))) as pool:
        return sum(pool.map(lambda item: queue.delete(*item), messages))


class _Tick:
    """The events of one tick, sorted into the datasets they change."""

    def __init__(
        self, cursor: EventCursor, store: Any, watched: Sequence[EventWatchedDataset]
    ) -> None:
        self.previous = cursor
        self.seen = dict.fromkeys(cursor.seen)
        self.sequencers = dict(cursor.sequencers)
        self.watched = watched
        self.container = _container_of(store)
        self.root = str(getattr(store, "prefix", "")).strip("/")
        self.changed: dict[str, list[str]] = {}
        self.pending: list[tuple[str, str]] = []
        self.duplicates = self.stale = self.ignored = self.set_aside = 0

    def take(self, events: list[StorageEvent]) -> bool:
        """Sort a message's events; True when one of them changes a watched dataset."""
        changes = False
        for event in events:
            if event.id in self.seen:
                self.duplicates += 1
                continue
            self.seen[event.id] = None
            if not event.relevant or event.container != self.container:
                self.ignored += 1
                continue
            affected = self._datasets(event)
            if not affected:
                self.ignored += 1
                continue
            if self._is_stale(event):
                self.stale += 1
                continue
            for dataset in affected:
                self.changed.setdefault(dataset, []).append(event.id)
            changes = True
        return changes

    def _is_stale(self, event: StorageEvent) -> bool:
        """Older than an event already seen for the same blob (sequencers compare as strings)."""
        if not event.sequencer or event.directory:
            return False
        stale = True
        for name in event.names:
            newest = self.sequencers.get(name)
            if newest is None or event.sequencer > newest:
                stale = False
                self.sequencers.pop(name, None)
                self.sequencers[name] = event.sequencer
        return stale

    def _datasets(self, event: StorageEvent) -> list[str]:
        found = []
        for item in self.watched:
            pattern = item.spec.path or ""
            for name in event.names:
                relative = self._relative(name)
                if relative is None:
                    continue
                if event.directory:
                    fixed = glob_prefix(pattern)
                    hit = not fixed or fixed.startswith(relative) or relative.startswith(fixed)
                else:
                    hit = glob_matches(pattern, relative)
                if hit:
                    found.append(item.name)
                    break
        return found

    def _relative(self, name: str) -> str | None:
        if not self.root:
            return name
        if name == self.root:
            return ""
        return name[len(self.root) + 1 :] if name.startswith(f"{self.root}/") else None

    def requests(self) -> list[dg.RunRequest]:
        by_name = {item.name: item for item in self.watched}
        requests = []
        for dataset, ids in sorted(self.changed.items()):
            digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]
            requests.append(
                dg.RunRequest(
                    run_key=f"{dataset}:events:{digest}",
                    asset_selection=[dg.AssetKey(key) for key in by_name[dataset].selection],
                    tags={"ingestion/dataset": dataset, "ingestion/events": str(len(ids))},
                )
            )
        return requests

    def cursor(self) -> EventCursor:
        return replace(
            self.previous,
            pending=tuple(self.pending),
            seen=tuple(self.seen),  # serialize() keeps the newest REMEMBERED
            sequencers=self.sequencers,
        )

    def describe(self) -> str:
        changed = ", ".join(f"'{name}' ({len(ids)})" for name, ids in sorted(self.changed.items()))
        parts = [f"changed: {changed}" if changed else "no watched dataset changed"]
        for count, words in (
            (self.duplicates, "duplicate event(s) dropped"),
            (self.stale, "stale event(s) dropped (older than one seen for the same blob)"),
            (self.ignored, "event(s) outside the watched datasets"),
            (self.set_aside, "message(s) set aside as poison"),
        ):
            if count:
                parts.append(f"{count} {words}")
        return "; ".join(parts)


def _container_of(store: Any) -> str:
    for field_name in ("container", "filesystem"):
        value = getattr(store, field_name, None)
        if isinstance(value, str):
            return value
    raise DatastoreError(
        f"datastore '{getattr(store, 'name', store)}' has no container: storage events need an "
        "azure_blob or adls_gen2 datastore.",
        reason="invalid request",
    )
