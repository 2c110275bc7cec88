"""Turn one catalog of a validated project into Dagster definitions: assets, checks, jobs, triggers.

Every catalog's definitions carry the project's datastore resources: the same objects in each,
so Dagster merges them into one code location without a conflict.
"""

from __future__ import annotations

import dagster as dg

from ingestion_project.catalog.code_versions import (
    dataset_code_version,
    drift_code_version,
    labeling_code_version,
    model_code_version,
    predictions_code_version,
)
from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.catalog.spec import (
    CronTrigger,
    DataChangeTrigger,
    StorageEventsTrigger,
    parse_interval_seconds,
)
from ingestion_project.datasets.assets import build_dataset_assets, build_windowed_dataset_asset
from ingestion_project.datasets.windows import dataset_partitions
from ingestion_project.labeling.assets import build_labeling_assets, build_progress_sensor
from ingestion_project.labeling.spec import project_asset_name
from ingestion_project.monitoring.assets import build_drift_asset
from ingestion_project.monitoring.performance_assets import (
    build_performance_asset,
    performance_asset_name,
)
from ingestion_project.training.assets import (
    build_model_asset,
    build_predictions_asset,
    predictions_asset_name,
)
from ingestion_project.triggers.data_change import WatchedDataset, build_data_change_sensors
from ingestion_project.triggers.drift_retrain import (
    build_retrain_sensor,
    effective_policy,
    retrain_schedule_name,
)
from ingestion_project.triggers.schedules import build_dataset_schedule, build_window_schedule
from ingestion_project.triggers.storage_events import (
    EventWatchedDataset,
    build_storage_event_sensors,
)


def refresh_job_name(dataset: str) -> str:
    return f"refresh_{dataset}"


def retrain_job_name(model: str) -> str:
    return f"retrain_{model}"


def build_definitions(
    catalog: ProjectCatalog, source: str | None = None, op_prefix: str = "catalog"
) -> dg.Definitions:
    """Definitions for the entries of catalog file ``source`` (all entries when None).

    ``op_prefix`` names the ops that register and check this catalog's datasets.
    """

    def own(section: str) -> list[str]:
        names = getattr(catalog, section)
        return list(names) if source is None else catalog.names_in(source, section)

    assets: list[dg.AssetsDefinition] = []
    datasets = {
        name: catalog.datasets[name]
        for name in own("datasets")
        if catalog.datasets[name].windows is None
    }
    if datasets:
        versions = {name: dataset_code_version(catalog, name) for name in datasets}
        assets.append(
            build_dataset_assets(
                f"{op_prefix}__register_datasets", datasets, catalog.registry, versions
            )
        )

    windowed = [name for name in own("datasets") if catalog.datasets[name].windows is not None]
    for name in windowed:
        version = dataset_code_version(catalog, name)
        assets.append(
            build_windowed_dataset_asset(name, catalog.datasets[name], catalog.registry, version)
        )
    for name in own("models"):
        assets.append(build_model_asset(name, catalog, model_code_version(catalog, name)))
        if catalog.models[name].scoring is not None:
            version = predictions_code_version(catalog, name)
            assets.append(build_predictions_asset(name, catalog, version))
            if catalog.models[name].labels is not None:
                assets.append(build_performance_asset(name, catalog, version))
    assets.extend(
        build_drift_asset(name, catalog, drift_code_version(catalog, name))
        for name in own("monitors")
    )
    for name in own("labeling"):
        assets.extend(build_labeling_assets(name, catalog, labeling_code_version(catalog, name)))

    # Sensors target assets, not a job per dataset: Dagster resolves every job against the whole
    # asset graph, so a job per dataset made loading quadratic in the number of datasets. A
    # schedule needs a job; its dataset gets one, named for people.
    jobs, sensors, schedules = [], [], []
    watched, by_events = [], []
    for name in own("datasets"):
        dataset = catalog.datasets[name]
        selection = refresh_selection(catalog, name)
        if isinstance(dataset.trigger, DataChangeTrigger):
            watched.append(WatchedDataset(name, dataset, tuple(selection)))
        elif isinstance(dataset.trigger, StorageEventsTrigger):
            by_events.append(EventWatchedDataset(name, dataset, tuple(selection)))
        elif dataset.windows is not None:
            job = dg.define_asset_job(
                refresh_job_name(name),
                selection=dg.AssetSelection.assets(name),
                description=f"Register '{name}' for one time window, or backfill a range of "
                "them: each window gets its own versions.",
            )
            jobs.append(job)
            if isinstance(dataset.trigger, CronTrigger):
                partitions = dataset_partitions(dataset.windows)
                schedules.append(build_window_schedule(name, dataset.trigger, job, partitions))
        elif isinstance(dataset.trigger, CronTrigger):
            job = dg.define_asset_job(
                refresh_job_name(name),
                selection=dg.AssetSelection.assets(*selection),
                description=f"Register a new version of '{name}' and refresh what scores or "
                "monitors it.",
            )
            jobs.append(job)
            schedules.append(build_dataset_schedule(name, dataset.trigger, job.name))
    sensors.extend(build_progress_sensor(name, catalog) for name in own("labeling"))
    if watched:
        # The sensors use the very datastore objects these Definitions hold (see tick_stores).
        sensors.extend(
            build_data_change_sensors(op_prefix, watched, catalog.registry, catalog.resources)
        )
    if by_events:
        sensors.extend(build_storage_event_sensors(op_prefix, by_events, catalog.resources))
    for name in own("monitors"):
        monitor = catalog.monitors[name]
        if monitor.frequency is None:
            continue
        job = dg.define_asset_job(
            monitor_job_name(name),
            selection=dg.AssetSelection.assets(name),
            description=f"Measure drift of '{name}' for one window, or backfill a range of them.",
        )
        jobs.append(job)
        schedules.append(
            dg.build_schedule_from_partitioned_job(
                job,
                name=f"{name}_schedule",
                description=f"Measures drift of '{name}' for each {monitor.frequency} once it "
                "has closed; past ones are backfilled from the asset's page or the CLI.",
            )
        )
    for name in own("models"):
        model = catalog.models[name]
        monitors = [m for m, spec in catalog.monitors.items() if spec.model == name]
        selection = [model.train_on, name]
        if model.scoring is not None:
            selection.append(predictions_asset_name(name))
        per_run = [m for m in monitors if catalog.monitors[m].frequency is None]
        job = dg.define_asset_job(
            retrain_job_name(name),
            selection=dg.AssetSelection.assets(*selection, *per_run),
            description=f"Train the next version of '{name}' on the latest '{model.train_on}', "
            "promote it only if better, then re-score and re-check drift.",
        )
        jobs.append(job)
        drift_monitors = [m for m in monitors if catalog.monitors[m].retrain]
        policy = effective_policy(model, drift_monitors)
        if policy is None:
            continue
        sensor = build_retrain_sensor(
            name,
            model,
            policy,
            drift_monitors=drift_monitors,
            predictions=predictions_asset_name(name) if model.scoring is not None else None,
            performance=performance_asset_name(name) if model.labels is not None else None,
            job_name=job.name,
        )
        if sensor is not None:
            sensors.append(sensor)
        if policy.cron is not None:
            schedules.append(
                dg.ScheduleDefinition(
                    name=retrain_schedule_name(name),
                    cron_schedule=policy.cron,
                    execution_timezone=policy.timezone,
                    job_name=job.name,
                    description=f"Trains a challenger of '{name}' on '{policy.cron}' "
                    f"({policy.timezone}); it replaces the champion only if the gate says so.",
                )
            )
    automation = [catalog.automation.get(source)] if source else list(catalog.automation.values())
    if any(spec is not None and spec.code_change for spec in automation):
        every = min(
            parse_interval_seconds(spec.every) for spec in automation if spec and spec.code_change
        )
        assets, sensor = with_code_change_automation(
            assets, catalog, f"{op_prefix}__code_change", every
        )
        sensors.append(sensor)
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        sensors=sensors,
        schedules=schedules,
        resources=dict(catalog.resources),
    )


def with_code_change_automation(
    assets: list[dg.AssetsDefinition], catalog: ProjectCatalog, name: str, every: int
) -> tuple[list[dg.AssetsDefinition], dg.SensorDefinition]:
    """Every asset but time-windowed ones re-runs once when its code version changes.

    A windowed dataset or monitor is left out: the condition would ask for every past window,
    a backfill that is the user's decision (launch it from the asset's page or the CLI).

    The sensor is on from the start: declaring ``code_change: true`` is the decision to run.
    Its first evaluation only records the code versions; a later one that sees a changed
    version requests that asset once (Dagster's ``code_version_changed`` keeps the version it
    last saw in the sensor's cursor).
    """
    condition = dg.AutomationCondition.code_version_changed().with_label("code version changed")
    windowed = {name for name, monitor in catalog.monitors.items() if monitor.frequency is not None}
    windowed |= {name for name, dataset in catalog.datasets.items() if dataset.windows is not None}
    automated: list[dg.AssetsDefinition] = []
    keys: list[dg.AssetKey] = []
    for item in assets:
        if {key.to_user_string() for key in item.keys} & windowed:
            automated.append(item)
            continue
        automated.append(
            item.map_asset_specs(
                lambda spec: spec.replace_attributes(automation_condition=condition)
            )
        )
        keys.extend(item.keys)
    sensor = dg.AutomationConditionSensorDefinition(
        name,
        target=dg.AssetSelection.assets(*keys),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=every,
        description="Re-materializes, once, each asset of this catalog whose code version "
        "changed: its YAML entry, what it reads from, or the code that builds its kind.",
    )
    return automated, sensor


def refresh_selection(catalog: ProjectCatalog, dataset: str) -> list[str]:
    """The dataset and what reads it: scoring, monitors, model performance, labeling projects.

    A labeling project over the dataset's images syncs with it, so new images become tasks at once.
    """
    selected = [dataset]
    for name, model in catalog.models.items():
        if model.scoring is not None and model.scoring.dataset == dataset:
            selected.append(predictions_asset_name(name))
        if model.scoring is not None and model.labels is not None:
            if model.labels.dataset == dataset:
                selected.append(performance_asset_name(name))
    selected.extend(
        name
        for name, monitor in catalog.monitors.items()
        if catalog.monitor_target(name) == dataset and monitor.frequency is None
    )
    selected.extend(
        project_asset_name(name)
        for name, labeling in catalog.labeling.items()
        if labeling.images == dataset
    )
    return selected


def monitor_job_name(monitor: str) -> str:
    return f"monitor_{monitor}"
