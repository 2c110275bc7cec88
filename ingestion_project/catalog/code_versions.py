"""Code versions that change when what builds an asset changes: its declaration or our code.

Dagster marks an asset whose ``code_version`` differs from its last materialization's as
changed. A version made from the YAML entry alone misses an upgrade of this package; one made
from the package version alone marks everything after any upgrade. So each asset's version
hashes its own entry (and the entries it reads from, such as its datastore), the package
version, and the source of exactly the modules that build that kind of asset.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from ingestion_project.catalog.project import ProjectCatalog

# The modules (or whole packages) whose code decides what each kind of asset produces.
DATASET_CODE = ("ingestion_project.datasets", "ingestion_project.registry")
MODEL_CODE = (
    "ingestion_project.training",
    "ingestion_project.registry",
    "ingestion_project.datasets.versions",
    "ingestion_project.datasets.formats",
)
PREDICTIONS_CODE = (
    "ingestion_project.training.scoring",
    "ingestion_project.training.assets",
    "ingestion_project.training.registry",
    "ingestion_project.datasets.versions",
    "ingestion_project.datasets.formats",
)
DRIFT_CODE = (
    "ingestion_project.monitoring",
    "ingestion_project.drift",
    "ingestion_project.training.scoring",
    "ingestion_project.training.registry",
    "ingestion_project.datasets.versions",
    "ingestion_project.datasets.formats",
)
LABELING_CODE = (
    "ingestion_project.labeling",
    "ingestion_project.datasets.versions",
    "ingestion_project.registry",
)


@functools.cache
def package_version() -> str:
    try:
        return importlib.metadata.version("ingestion_project")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


@functools.cache
def source_hash(module_name: str) -> str:
    """A hash of a module's source, or of every module of a package; read once per process."""
    module = importlib.import_module(module_name)
    origin = Path(module.__file__ or "")
    files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(origin.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def code_version(declarations: Iterable[Any], modules: Iterable[str]) -> str:
    """16 hex digits over the declarations, the package version and the modules' source."""
    payload = {
        "package": package_version(),
        "code": [source_hash(name) for name in modules],
        "declarations": [_plain(item) for item in declarations],
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def code_identity() -> str:
    """One hash of the package version and all code that builds assets: equal means same code."""
    modules = {*DATASET_CODE, *MODEL_CODE, *PREDICTIONS_CODE, *DRIFT_CODE, *LABELING_CODE}
    return code_version([], sorted(modules))


# Words for people: changing them changes nothing an asset produces, so nothing re-runs.
DESCRIPTIVE_FIELDS = frozenset({"description", "tags", "owners"})


def _plain(item: Any) -> Any:
    if not isinstance(item, BaseModel):
        return item
    dumped = item.model_dump(mode="json")
    return {key: value for key, value in dumped.items() if key not in DESCRIPTIVE_FIELDS}


def _store_module(project: ProjectCatalog, datastore: str) -> str:
    return type(project.resources[datastore]).__module__


def dataset_code_version(project: ProjectCatalog, name: str) -> str:
    """The entry, its datastore's entry (no secret values, only variable names) and the code."""
    spec = project.datasets[name]
    store = project.datastores[spec.datastore]
    modules = (*DATASET_CODE, _store_module(project, spec.datastore))
    return code_version([spec, store, project.registry], modules)


def model_code_version(project: ProjectCatalog, name: str) -> str:
    return code_version([project.models[name]], MODEL_CODE)


def predictions_code_version(project: ProjectCatalog, name: str) -> str:
    model = project.models[name]
    assert model.scoring is not None
    modules = (*PREDICTIONS_CODE, _store_module(project, model.scoring.datastore))
    return code_version([model.scoring, model.features, model.categorical], modules)


def drift_code_version(project: ProjectCatalog, name: str) -> str:
    monitor = project.monitors[name]
    return code_version([monitor, project.monitor_features(name)], DRIFT_CODE)


def labeling_code_version(project: ProjectCatalog, name: str) -> str:
    """The entry, its image dataset's entry and the labeling code (not the token's value)."""
    spec = project.labeling[name]
    return code_version([spec, project.datasets.get(spec.images)], LABELING_CODE)
