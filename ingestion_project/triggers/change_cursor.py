"""The cursor and run keys of data-change sensors: one run per change, even when data changes back.

For each dataset the cursor holds the last fingerprint and how many changes the sensor has seen.
The run key is ``dataset:changes:fingerprint``: a repeat tick of the same state gives the same
key (the daemon runs it once), while A -> B -> A gives three keys, so returning to an earlier
state still registers a version. Nothing in it comes from the clock. The cursor also says where
a tick that ran out of time stopped, so the next tick resumes there, and how far an unfinished
paged listing got (its continuation token and partial set digest), so the next tick goes on
from that page instead of listing a large store again from the start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class ListingScan:
    """A paged listing a tick began: where the next page starts, and the files seen so far."""

    token: str
    digest: int
    files: int

    def to_dict(self) -> dict[str, str | int]:
        return {"token": self.token, "digest": f"{self.digest:x}", "files": self.files}

    @classmethod
    def from_dict(cls, data: dict[str, str | int]) -> ListingScan:
        return cls(str(data["token"]), int(str(data["digest"]), 16), int(data["files"]))


@dataclass(frozen=True)
class ChangeCursor:
    """What a sensor remembers of one dataset between ticks."""

    fingerprint: str | None = None
    changes: int = 0
    scan: ListingScan | None = None


@dataclass(frozen=True)
class WatchCursor:
    """What a data-change sensor remembers between ticks (the daemon stores it across restarts)."""

    datasets: dict[str, ChangeCursor] = field(default_factory=dict)
    after: str | None = None

    @classmethod
    def parse(cls, raw: str | None) -> WatchCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(
            datasets={
                name: ChangeCursor(
                    item.get("fingerprint"),
                    int(item.get("changes", 0)),
                    ListingScan.from_dict(item["scan"]) if item.get("scan") else None,
                )
                for name, item in (data.get("datasets") or {}).items()
            },
            after=data.get("after"),
        )

    def serialize(self) -> str:
        return json.dumps(
            {
                "datasets": {
                    name: _dataset_json(item) for name, item in sorted(self.datasets.items())
                },
                "after": self.after,
            },
            sort_keys=True,
        )

    def with_dataset(self, name: str, state: ChangeCursor) -> WatchCursor:
        return replace(self, datasets={**self.datasets, name: state})

    def resuming_after(self, name: str | None) -> WatchCursor:
        return replace(self, after=name)

    def rotation(self, names: list[str]) -> list[str]:
        """The datasets in order, starting after the one the last (unfinished) tick stopped at."""
        if self.after not in names:
            return names
        start = names.index(self.after) + 1
        return names[start:] + names[:start]


def _dataset_json(item: ChangeCursor) -> dict[str, object]:
    """A dataset's entry; ``scan`` only while a listing is unfinished, to keep cursors small."""
    entry: dict[str, object] = {"fingerprint": item.fingerprint, "changes": item.changes}
    if item.scan is not None:
        entry["scan"] = item.scan.to_dict()
    return entry
