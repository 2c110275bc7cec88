"""Check that declared datastores answer, and say precisely why one does not."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ingestion_project.catalog.datastore_entries import build_datastore, secret_refs
from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.datastores.base import MISSING_SECRET, DatastoreError


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
    catalog: ProjectCatalog, home: Path, names: Iterable[str] | None = None
) -> list[DatastoreHealth]:
    """Connect to each datastore (all, or ``names``) in turn; never raises for a failing one."""
    secrets = _secret_values(catalog)
    reports = []
    for name in names or catalog.datastores:
        spec = catalog.datastores[name]
        started = time.monotonic()
        target = name
        unset = [(where, ref.env) for where, ref in secret_refs(spec) if ref.env not in os.environ]
        try:
            store = build_datastore(name, spec, home)
            target = store.describe()
            if unset:
                raise DatastoreError(_unset_message(name, unset), reason=MISSING_SECRET)
            store.check()
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
                kind=catalog.datastore_kind(name),
                target=_scrub(target, secrets),
                ok=reason == "ok",
                reason=reason,
                message=_scrub(message, secrets),
                seconds=time.monotonic() - started,
            )
        )
    return reports


def _secret_values(catalog: ProjectCatalog) -> list[str]:
    values = []
    for spec in catalog.datastores.values():
        for _, ref in secret_refs(spec):
            value = os.environ.get(ref.env)
            if value:
                values.append(value)
    return values


def _unset_message(name: str, unset: list[tuple[str, str]]) -> str:
    variables = ", ".join(f"{variable} (datastores.{name}.{where})" for where, variable in unset)
    one = len(unset) == 1
    return (
        f"environment variable{'' if one else 's'} {variables} {'is' if one else 'are'} not set. "
        "Set it in the environment, or in the .env file of the project's folder, then check again."
    )


def _scrub(text: str, secrets: list[str]) -> str:
    """A last line of defence: whatever a client library put in a message, secrets go."""
    for value in secrets:
        text = text.replace(value, "***")
    return text
