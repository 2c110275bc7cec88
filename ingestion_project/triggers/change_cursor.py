"""The cursor and run key of change sensors: one run per change, even when data changes back.

The cursor holds the last fingerprint and how many changes the sensor has seen. The run key is
``dataset:changes:fingerprint``: a repeat tick of the same state gives the same key (the daemon
runs it once), while A -> B -> A gives three keys, so returning to an earlier state still
registers a version. Nothing in it comes from the clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import dagster as dg


@dataclass(frozen=True)
class ChangeCursor:
    """What a change sensor remembers between ticks (the daemon stores it across restarts)."""

    fingerprint: str | None = None
    changes: int = 0

    @classmethod
    def parse(cls, raw: str | None) -> ChangeCursor:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return cls(fingerprint=raw, changes=1)  # a bare fingerprint from an older cursor
        return cls(fingerprint=data.get("fingerprint"), changes=int(data.get("changes", 0)))

    def serialize(self) -> str:
        return json.dumps({"fingerprint": self.fingerprint, "changes": self.changes})


def change_result(
    dataset: str, raw_cursor: str | None, fingerprint: str, unchanged: str
) -> dg.SensorResult | dg.SkipReason:
    """Skip when the fingerprint is the cursor's; otherwise request one run and advance."""
    cursor = ChangeCursor.parse(raw_cursor)
    if fingerprint == cursor.fingerprint:
        return dg.SkipReason(unchanged)
    advanced = ChangeCursor(fingerprint=fingerprint, changes=cursor.changes + 1)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"{dataset}:{advanced.changes}:{fingerprint}",
                tags={"ingestion/dataset": dataset, "ingestion/fingerprint": fingerprint[:16]},
            )
        ],
        cursor=advanced.serialize(),
    )
