"""The cursor and run keys of data-change sensors: one run per change, even when data changes back.

For each dataset the cursor holds the last fingerprint and how many changes the sensor has seen.
The run key is ``dataset:changes:fingerprint``: a repeat tick of the same state gives the same
key (the daemon runs it once), while A -> B -> A gives three keys, so returning to an earlier
state still registers a version. Nothing in it comes from the clock. The cursor also says where
a tick that ran out of time stopped, so the next tick resumes there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class ChangeCursor:
    """What a sensor remembers of one dataset between ticks."""

    fingerprint: str | None = None
    changes: int = 0


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
                name: ChangeCursor(item.get("fingerprint"), int(item.get("changes", 0)))
                for name, item in (data.get("datasets") or {}).items()
            },
            after=data.get("after"),
        )

    def serialize(self) -> str:
        return json.dumps(
            {
                "datasets": {
                    name: {"fingerprint": item.fingerprint, "changes": item.changes}
                    for name, item in sorted(self.datasets.items())
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
