"""Check that declared datastores answer, and say precisely why one does not."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ingestion_project.catalog.parse import secret_refs
from ingestion_project.catalog.spec import CatalogSpec
from ingestion_project.datastores.base import DatastoreError
from ingestion_project.datastores.factory import build_datastore


@dataclass(frozen=True)
class DatastoreHealth:
    """The outcome of checking one datastore; ``message`` never holds a secret."""

    name: str
    kind: str
    target: str
    ok: bool
    reason: str
    message: str
    seconds: float


def check_datastores(
    catalog: CatalogSpec, home: Path, names: Iterable[str] | None = None
) -> list[DatastoreHealth]:
    """Connect to each datastore (all, or ``names``) in turn; never raises for a failing one."""
    secrets = _secret_values(catalog)
    reports = []
    for name in names or catalog.datastores:
        spec = catalog.datastores[name]
        started = time.monotonic()
        target = name
        try:
            store = build_datastore(name, spec, home)
            target = store.describe()  # type: ignore[attr-defined]
            store.check()  # type: ignore[attr-defined]
        except DatastoreError as error:
            reason, message = error.reason, str(error)
        except FileNotFoundError as error:
            reason, message = "not found", str(error)
        except Exception as error:  # a check reports every failure, whatever it is
            reason, message = "error", f"{type(error).__name__}: {error}"
        else:
            reason, message = "ok", ""
        reports.append(
            DatastoreHealth(
                name=name,
                kind=spec.kind,
                target=_scrub(target, secrets),
                ok=reason == "ok",
                reason=reason,
                message=_scrub(message, secrets),
                seconds=time.monotonic() - started,
            )
        )
    return reports


def _secret_values(catalog: CatalogSpec) -> list[str]:
    values = []
    for spec in catalog.datastores.values():
        for _, ref in secret_refs(spec):
            value = os.environ.get(ref.env)
            if value:
                values.append(value)
    return values


def _scrub(text: str, secrets: list[str]) -> str:
    """A last line of defence: whatever a client library put in a message, secrets go."""
    for value in secrets:
        text = text.replace(value, "***")
    return text
