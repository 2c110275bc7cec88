"""Where a sensor finds its datastores on a tick, without Dagster building an instance for it.

Dagster builds the resources a sensor declares anew on every tick, and opens a DagsterInstance to
do so (dagster 1.13, ``SensorEvaluationContext.resources``): 30-50 ms a tick, whatever the sensor
then does. A sensor that declares no resources never touches the instance. Our datastores need
nothing from that build: a secret field keeps its ``dg.EnvVar`` and the store resolves it when it
builds its client (``resolve_secret``), and each store caches its client per object behind a
lock. So a sensor given the Definitions' own datastore objects declares none of them and uses
the objects, whose clients then live as long as the code server's process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg


class TickStores:
    """The datastores a sensor uses: given objects, or Dagster resources for the rest."""

    def __init__(self, needed: Iterable[str], given: Mapping[str, Any] | None = None) -> None:
        names = set(needed)
        self._given = {name: store for name, store in (given or {}).items() if name in names}
        self.required_resource_keys = names - set(self._given)

    def get(self, context: dg.SensorEvaluationContext, name: str) -> Any:
        """Resources handed to this evaluation win (a test's), then the given object."""
        if name in self._given and name not in (context.resource_defs or {}):
            return self._given[name]
        return getattr(context.resources, name)
