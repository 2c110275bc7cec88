"""Every catalog of a project as one namespace: shared datastores, one registry, checked together.

A team keeps any number of catalog folders (each a ``defs.yaml`` of our ``Catalog`` component)
in its own Dagster project. Datastores are declared once and usable from every catalog;
dataset, model and monitor names are asset keys, unique across the project. Mistakes of all
files are reported in one pass, each with its own file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ingestion_project.catalog.datastore_entries import (
    FILE_DATASTORE_KINDS,
    SQL_DATASTORE_KINDS,
    STORAGE_EVENT_KINDS,
    build_datastore,
    entry_model,
)
from ingestion_project.catalog.errors import CatalogError, CatalogProblem
from ingestion_project.catalog.parse import ENTRY_SECTIONS, ParsedCatalog, did_you_mean
from ingestion_project.catalog.spec import (
    WORKSPACE_DEFAULT,
    AlertSpec,
    AutomationSpec,
    DatasetSpec,
    ModelSpec,
    MonitorSpec,
    RegistrySpec,
    StorageEventsTrigger,
)
from ingestion_project.datastores.base import validate_glob
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.labeling.spec import LabelingSpec, project_asset_name

IMPLICIT = "(implicit: every project has it)"


@dataclass
class ProjectCatalog:
    """What all catalogs of a project declare, validated and cross-checked as one."""

    registry: RegistrySpec = field(default_factory=RegistrySpec)
    datastores: dict[str, BaseModel] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    monitors: dict[str, MonitorSpec] = field(default_factory=dict)
    alerts: dict[str, AlertSpec] = field(default_factory=dict)
    labeling: dict[str, LabelingSpec] = field(default_factory=dict)
    # catalog file -> its automation section (each catalog automates its own assets).
    automation: dict[str, AutomationSpec] = field(default_factory=dict)
    # (section, name) -> the catalog file that declares it.
    sources: dict[tuple[str, str], str] = field(default_factory=dict)

    def source_of(self, section: str, name: str) -> str:
        return self.sources.get((section, name), "catalog")

    def names_in(self, source: str, section: str) -> list[str]:
        """The entries of ``section`` that the catalog file ``source`` declares, in order."""
        return [
            name for name in getattr(self, section) if self.sources.get((section, name)) == source
        ]

    def datastore_kind(self, name: str) -> str:
        kind: str = self.datastores[name].kind  # type: ignore[attr-defined]
        return kind

    def is_file_datastore(self, name: str) -> bool:
        return self.datastore_kind(name) in FILE_DATASTORE_KINDS

    def monitor_target(self, name: str) -> str:
        """The dataset a monitor watches: its target's, else its model's scoring dataset."""
        monitor = self.monitors[name]
        target = monitor.target_spec
        if target is not None and target.dataset is not None:
            return target.dataset
        model = target.predictions if target is not None else monitor.model
        assert model is not None, "validated in MonitorSpec"
        scoring = self.models[model].scoring
        assert scoring is not None, "cross-checked in assemble_project"
        return scoring.dataset

    def monitor_model(self, name: str) -> str | None:
        """The model whose predictions a monitor watches beside its data, if any."""
        monitor = self.monitors[name]
        target = monitor.target_spec
        if target is None:
            return monitor.model
        if target.predictions is not None:
            return target.predictions
        if monitor.model is not None:
            scoring = self.models[monitor.model].scoring
            if scoring is not None and scoring.dataset == target.dataset:
                return monitor.model
        return None

    def monitor_features(self, name: str) -> list[str] | None:
        """The declared features; the model's when left out; None for every shared column."""
        monitor = self.monitors[name]
        if isinstance(monitor.features, list):
            return list(monitor.features)
        model = monitor.model or self.monitor_model(name)
        if monitor.features is None and model is not None:
            return list(self.models[model].features)
        return None


def assemble_project(catalogs: Sequence[ParsedCatalog], home: Path) -> ProjectCatalog:
    """Merge the project's catalogs; raise one CatalogError listing every mistake in every file."""
    ordered = sorted(catalogs, key=lambda catalog: catalog.source)
    problems = [problem for catalog in ordered for problem in catalog.problems]
    project = ProjectCatalog()
    declared_in: dict[tuple[str, str], str] = {}
    for catalog in ordered:
        for section in ENTRY_SECTIONS:
            for name in sorted(catalog.declared(section)):
                first = declared_in.setdefault((section, name), catalog.source)
                if first != catalog.source:
                    problems.append(
                        CatalogProblem(
                            f"{section}.{name}",
                            f"is declared twice: here and in {first}",
                            f"Declare it once per project (catalogs share {section}): remove "
                            "one, or rename it",
                            catalog.source,
                        )
                    )
            for name, spec in getattr(catalog, section).items():
                if declared_in[(section, name)] == catalog.source:
                    getattr(project, section)[name] = spec
                    project.sources[(section, name)] = catalog.source
        for name, resource in catalog.resources.items():
            if declared_in[("datastores", name)] == catalog.source:
                project.resources[name] = resource
        if catalog.automation is not None:
            project.automation[catalog.source] = catalog.automation
    if ("datastores", WORKSPACE_DEFAULT) not in declared_in:
        default = entry_model(LocalDatastore).model_validate({"kind": "local"})
        project.datastores[WORKSPACE_DEFAULT] = default
        project.resources[WORKSPACE_DEFAULT] = build_datastore(WORKSPACE_DEFAULT, default, home)
        project.sources[("datastores", WORKSPACE_DEFAULT)] = IMPLICIT
    problems.extend(_registry(ordered, project))
    broken = {
        section: {name for catalog in ordered for name in catalog.broken.get(section, set())}
        for section in ENTRY_SECTIONS
    }
    problems.extend(_cross_check(project, broken))
    if problems:
        raise CatalogError(problems)
    return project


def _registry(catalogs: Iterable[ParsedCatalog], project: ProjectCatalog) -> list[CatalogProblem]:
    """One registry per project: declared in at most one catalog, else the default."""
    declaring = [catalog for catalog in catalogs if catalog.registry is not None]
    if declaring:
        first = declaring[0]
        assert first.registry is not None
        project.registry = first.registry
        project.sources[("registry", "registry")] = first.source
    return [
        CatalogProblem(
            "registry",
            f"is declared twice: here and in {first.source}",
            "A project has one registry of versions; declare 'registry:' in one catalog only",
            catalog.source,
        )
        for catalog in declaring[1:]
    ]


def _cross_check(project: ProjectCatalog, broken: dict[str, set[str]]) -> list[CatalogProblem]:
    """References between entries: datastores exist and have the right kind, names are unique."""
    problems: list[CatalogProblem] = []

    def report(section: str, name: str, entry: str, problem: str, fix: str) -> None:
        problems.append(CatalogProblem(entry, problem, fix, project.source_of(section, name)))

    stores = project.datastores
    declared = ", ".join(sorted(stores))
    seen: dict[str, str] = {}
    for section in ("datasets", "models", "monitors", "labeling"):
        for name in getattr(project, section):
            if name in seen:
                report(
                    section,
                    name,
                    f"{section}.{name}",
                    f"name is already used by {seen[name]}.{name} "
                    f"({project.source_of(seen[name], name)})",
                    "Asset names must be unique across datasets, models, monitors and labeling; "
                    "rename one",
                )
            seen[name] = section
    for name, model in project.models.items():
        generated = f"{name}_predictions"
        if model.scoring is not None and generated in seen:
            report(
                seen[generated],
                generated,
                f"{seen[generated]}.{generated}",
                f"name is already used by the predictions of models.{name}",
                f"Model '{name}' writes its predictions to the asset '{generated}'; rename one",
            )

    def unknown_store(section: str, name: str, entry: str, store: str) -> None:
        report(
            section,
            name,
            entry,
            f"'{store}' is not a declared datastore",
            f"Declared datastores: {declared}{did_you_mean(store, list(stores))}",
        )

    registry_store = project.registry.datastore
    if registry_store in broken["datastores"]:
        pass  # already reported where it is declared
    elif registry_store not in stores:
        unknown_store("registry", "registry", "registry.datastore", registry_store)
    elif project.datastore_kind(registry_store) not in FILE_DATASTORE_KINDS:
        report(
            "registry",
            "registry",
            "registry.datastore",
            f"'{registry_store}' is a SQL datastore",
            "The registry needs a file datastore; use workspace_default",
        )
    for name, dataset in project.datasets.items():
        where = f"datasets.{name}"
        if dataset.datastore in broken["datastores"]:
            continue
        if dataset.datastore not in stores:
            unknown_store("datasets", name, f"{where}.datastore", dataset.datastore)
            continue
        kind = project.datastore_kind(dataset.datastore)
        if dataset.path is not None:
            if kind not in FILE_DATASTORE_KINDS:
                report(
                    "datasets",
                    name,
                    f"{where}.path",
                    f"datastore '{dataset.datastore}' is a SQL datastore ({kind})",
                    "Use 'query:' for SQL datastores, or point 'datastore:' at a file store",
                )
            else:
                try:
                    validate_glob(dataset.path, store=dataset.datastore)
                except ValueError as error:
                    report("datasets", name, f"{where}.path", str(error), "Fix the glob pattern")
                if (
                    isinstance(dataset.trigger, StorageEventsTrigger)
                    and kind not in STORAGE_EVENT_KINDS
                ):
                    report(
                        "datasets",
                        name,
                        f"{where}.trigger.storage_events",
                        f"datastore '{dataset.datastore}' ({kind}) sends no storage events: "
                        "Event Grid reports Blob Storage and Data Lake Gen2 accounts",
                        "Use 'trigger: {data_change: {every: 60s}}' to poll it instead",
                    )
        elif kind not in SQL_DATASTORE_KINDS:
            report(
                "datasets",
                name,
                f"{where}.query",
                f"datastore '{dataset.datastore}' holds files ({kind}), not tables",
                "Use 'path:' with a glob, or point 'datastore:' at a SQL datastore",
            )

    # A queue's messages are consumed by the sensor that reads them: one catalog per queue.
    queue_readers: dict[tuple[str, str], tuple[str, str]] = {}
    for name, dataset in project.datasets.items():
        if not isinstance(dataset.trigger, StorageEventsTrigger):
            continue
        queue = (dataset.datastore, dataset.trigger.storage_events.queue)
        source = project.source_of("datasets", name)
        first = queue_readers.setdefault(queue, (name, source))
        if first[1] != source:
            report(
                "datasets",
                name,
                f"datasets.{name}.trigger.storage_events.queue",
                f"queue '{queue[1]}' of datastore '{queue[0]}' is read by dataset '{first[0]}' "
                f"in {first[1]} already; a queue's messages are consumed by one catalog's sensor",
                "Declare the datasets of one queue in the same catalog, or give each catalog its "
                "own queue (an Event Grid subscription each, filtered by subject)",
            )

    def dataset_ref(section: str, name: str, entry: str, dataset: str) -> None:
        if dataset in project.datasets:
            _not_windowed(project, section, name, entry, dataset, report)
            return
        if dataset in broken["datasets"]:
            return
        report(
            section,
            name,
            entry,
            f"'{dataset}' is not a declared dataset",
            f"Declared datasets: {', '.join(sorted(project.datasets)) or 'none'}"
            f"{did_you_mean(dataset, list(project.datasets))}",
        )

    for name, model in project.models.items():
        where = f"models.{name}"
        dataset_ref("models", name, f"{where}.train_on", model.train_on)
        history = project.datasets.get(model.train_on)
        days = [
            (f"{where}.train_window.days", model.train_window and model.train_window.days),
            (f"{where}.promotion.window_days", model.promotion.window_days),
        ]
        for entry, value in days:
            if value and history is not None and not history.timestamp_column:
                report(
                    "models",
                    name,
                    entry,
                    f"a window in days needs a timestamp, and dataset '{model.train_on}' has no "
                    "'timestamp_column'",
                    f"Declare datasets.{model.train_on}.timestamp_column, or use "
                    "train_window.versions / leave window_days out",
                )
        if model.labels is not None:
            dataset_ref("models", name, f"{where}.labels.dataset", model.labels.dataset)
            if model.scoring is None:
                report(
                    "models",
                    name,
                    f"{where}.labels",
                    "labels are joined to the model's predictions, and it has no 'scoring:'",
                    f"Add models.{name}.scoring, or leave 'labels' out",
                )
        policy = model.retrain
        if policy is not None and "performance_drop" in policy.when:
            realized = model.labels is not None and policy.performance != "estimated"
            estimated = model.task_name == "classification" and policy.performance != "realized"
            if not (realized or estimated):
                report(
                    "models",
                    name,
                    f"{where}.retrain.when",
                    "'performance_drop' needs performance to judge: realized (declare 'labels') "
                    "or estimated (classifiers, performance: estimated or either)",
                    f"Add models.{name}.labels, or remove 'performance_drop'",
                )
        if model.scoring is None:
            continue
        dataset_ref("models", name, f"{where}.scoring.dataset", model.scoring.dataset)
        scoring_store = model.scoring.datastore
        if scoring_store in broken["datastores"]:
            pass
        elif scoring_store not in stores:
            unknown_store("models", name, f"{where}.scoring.datastore", scoring_store)
        elif project.datastore_kind(scoring_store) not in FILE_DATASTORE_KINDS:
            report(
                "models",
                name,
                f"{where}.scoring.datastore",
                "predictions are written as files",
                "Point it at a file datastore such as workspace_default",
            )
    for name, monitor in project.monitors.items():
        _check_monitor(project, broken, name, monitor, report)
    for name, labeling in project.labeling.items():
        _check_labeling(project, broken, seen, name, labeling, report)
    for name, alert in project.alerts.items():
        subjects = set(project.models) | set(project.monitors)
        for subject in alert.subjects or []:
            if subject not in subjects:
                report(
                    "alerts",
                    name,
                    f"alerts.{name}.subjects",
                    f"'{subject}' is not a declared model or monitor",
                    f"Declared: {', '.join(sorted(subjects)) or 'none'}"
                    f"{did_you_mean(subject, sorted(subjects))}",
                )
    return problems


def _not_windowed(
    project: ProjectCatalog,
    section: str,
    name: str,
    entry: str,
    dataset: str,
    report: Callable[[str, str, str, str, str], None],
) -> None:
    """Models and monitors read the latest version of a whole dataset, not one per window."""
    if project.datasets[dataset].windows is None:
        return
    report(
        section,
        name,
        entry,
        f"dataset '{dataset}' is split into time windows, each with its own versions, and "
        f"{section} read one latest version of the whole dataset",
        f"Declare a second dataset over the same files without 'windows' for {section} to "
        f"read, or leave datasets.{dataset}.windows out",
    )


def _check_monitor(
    project: ProjectCatalog,
    broken: dict[str, set[str]],
    name: str,
    monitor: MonitorSpec,
    report: Callable[[str, str, str, str, str], None],
) -> None:
    """A monitor's model, baseline and target exist, and windows have timestamps to cut by."""
    where = f"monitors.{name}"

    def dataset_exists(entry: str, dataset: str) -> bool:
        if dataset in broken["datasets"]:
            return False
        if dataset not in project.datasets:
            report(
                "monitors",
                name,
                entry,
                f"'{dataset}' is not a declared dataset",
                f"Declared datasets: {', '.join(sorted(project.datasets)) or 'none'}"
                f"{did_you_mean(dataset, list(project.datasets))}",
            )
            return False
        _not_windowed(project, "monitors", name, entry, dataset, report)
        return True

    def model_with_scoring(entry: str, model_name: str) -> bool:
        if model_name in broken["models"]:
            return False
        model = project.models.get(model_name)
        if model is None:
            report(
                "monitors",
                name,
                entry,
                f"'{model_name}' is not a declared model",
                f"Declared models: {', '.join(sorted(project.models)) or 'none'}"
                f"{did_you_mean(model_name, list(project.models))}",
            )
            return False
        if model.scoring is None:
            report(
                "monitors",
                name,
                entry,
                f"model '{model_name}' has no 'scoring:' section",
                f"A monitor of predictions needs them written: add models.{model_name}.scoring",
            )
            return False
        return True

    target = monitor.target_spec
    if monitor.model is not None:
        if target is None and not model_with_scoring(f"{where}.model", monitor.model):
            return
        if target is not None and monitor.model not in project.models:
            if monitor.model not in broken["models"]:
                model_with_scoring(f"{where}.model", monitor.model)
            return
    if target is not None and target.dataset is not None:
        if not dataset_exists(f"{where}.target", target.dataset):
            return
    if target is not None and target.predictions is not None:
        if not model_with_scoring(f"{where}.target.predictions", target.predictions):
            return
    baseline = monitor.baseline_spec
    if baseline.dataset is not None:
        if not dataset_exists(f"{where}.baseline.dataset", baseline.dataset):
            return
        if (baseline.start or baseline.end) and not project.datasets[
            baseline.dataset
        ].timestamp_column:
            report(
                "monitors",
                name,
                f"{where}.baseline",
                f"a window of '{baseline.dataset}' needs its timestamp column",
                f"Declare datasets.{baseline.dataset}.timestamp_column, or pin a 'version'",
            )
    target_dataset = project.monitor_target(name)
    if monitor.frequency is not None and not project.datasets[target_dataset].timestamp_column:
        report(
            "monitors",
            name,
            f"{where}.frequency",
            f"windows of '{target_dataset}' are cut by its timestamp column, and it has none",
            f"Declare datasets.{target_dataset}.timestamp_column, or leave 'frequency' out",
        )
    features = project.monitor_features(name)
    if features is not None:
        unknown = sorted(set(monitor.methods) - set(features))
        if unknown:
            report(
                "monitors",
                name,
                f"{where}.methods",
                f"{unknown} are not among the monitored features",
                f"Monitored features: {', '.join(features)}",
            )


# Stores whose images a browser can load without a web server of the user's (image_urls.base_url).
SERVABLE_IMAGE_KINDS = ("local", "azure_blob", "http")


def _check_labeling(
    project: ProjectCatalog,
    broken: dict[str, set[str]],
    seen: dict[str, str],
    name: str,
    spec: LabelingSpec,
    report: Callable[[str, str, str, str, str], None],
) -> None:
    """The images are a file dataset a browser can reach; pre-labels come from what exists."""
    where = f"labeling.{name}"
    generated = project_asset_name(name)
    if generated in seen:
        report(
            "labeling",
            name,
            where,
            f"its project asset '{generated}' has the name of {seen[generated]}.{generated}",
            "Rename the labeling entry or that entry",
        )
    images = project.datasets.get(spec.images)
    if images is None:
        if spec.images not in broken["datasets"]:
            report(
                "labeling",
                name,
                f"{where}.images",
                f"'{spec.images}' is not a declared dataset",
                f"Declare a 'kind: file' dataset of images; declared: "
                f"{', '.join(sorted(project.datasets)) or 'none'}"
                f"{did_you_mean(spec.images, list(project.datasets))}",
            )
    elif images.kind != "file" or images.windows is not None:
        report(
            "labeling",
            name,
            f"{where}.images",
            f"dataset '{spec.images}' is {'windowed' if images.windows else 'tabular'}; labeling "
            "needs a 'kind: file' dataset of images without windows",
            f"Declare datasets.{spec.images} with 'kind: file' and a path like 'images/**/*.jpg'",
        )
    elif (
        images.datastore in project.datastores
        and spec.image_urls.base_url is None
        and project.datastore_kind(images.datastore) not in SERVABLE_IMAGE_KINDS
    ):
        kind = project.datastore_kind(images.datastore)
        report(
            "labeling",
            name,
            f"{where}.images",
            f"images in datastore '{images.datastore}' ({kind}) cannot reach a labeler's "
            "browser by themselves",
            "Serve them from a web server and set image_urls.base_url, or keep them in a local, "
            "azure_blob or http datastore",
        )
    urls = spec.image_urls
    if (
        images is not None
        and images.datastore in project.datastores
        and project.datastore_kind(images.datastore) == "local"
        and urls.base_url is None
        and urls.local_files_document_root is None
    ):
        report(
            "labeling",
            name,
            f"{where}.image_urls.local_files_document_root",
            f"images in local datastore '{images.datastore}' are served by Label Studio from "
            "under its LOCAL_FILES_DOCUMENT_ROOT, which is not given",
            "Set it to the LOCAL_FILES_DOCUMENT_ROOT that Label Studio runs with (and "
            "LOCAL_FILES_SERVING_ENABLED=true), or serve the images yourself with "
            "image_urls.base_url",
        )
    prelabel = spec.prelabel
    if prelabel is None:
        return
    if prelabel.model is not None:
        model = project.models.get(prelabel.model)
        if model is None and prelabel.model not in broken["models"]:
            report(
                "labeling",
                name,
                f"{where}.prelabel.model",
                f"'{prelabel.model}' is not a declared model",
                f"Declared models: {', '.join(sorted(project.models)) or 'none'}"
                f"{did_you_mean(prelabel.model, list(project.models))}",
            )
        elif model is not None and model.scoring is None:
            report(
                "labeling",
                name,
                f"{where}.prelabel.model",
                f"model '{prelabel.model}' has no 'scoring:', so it writes no predictions",
                f"Add models.{prelabel.model}.scoring over a dataset with an image path column",
            )
    elif prelabel.dataset is not None:
        # Another labeling entry's labels are a dataset too: a head start for a new project.
        sources = sorted({*project.datasets, *project.labeling} - {name})
        if prelabel.dataset not in sources and prelabel.dataset not in broken["datasets"]:
            report(
                "labeling",
                name,
                f"{where}.prelabel.dataset",
                f"'{prelabel.dataset}' is not a declared dataset or another labeling entry",
                f"Declared: {', '.join(sources) or 'none'}"
                f"{did_you_mean(prelabel.dataset, sources)}",
            )
