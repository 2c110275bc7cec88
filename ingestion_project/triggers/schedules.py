"""Cron schedules declared on datasets."""

from __future__ import annotations

import dagster as dg

from ingestion_project.catalog.spec import CronTrigger


def schedule_name(dataset: str) -> str:
    return f"{dataset}_schedule"


def build_dataset_schedule(name: str, trigger: CronTrigger, job_name: str) -> dg.ScheduleDefinition:
    """Runs the dataset's refresh job: the dataset and what scores or monitors it."""
    return dg.ScheduleDefinition(
        name=schedule_name(name),
        cron_schedule=trigger.cron,
        execution_timezone=trigger.timezone,
        job_name=job_name,
        description=f"Refreshes '{name}' on '{trigger.cron}' ({trigger.timezone}).",
    )


def build_window_schedule(
    name: str,
    trigger: CronTrigger,
    job: dg.UnresolvedAssetJobDefinition,
    partitions: dg.TimeWindowPartitionsDefinition,
) -> dg.ScheduleDefinition:
    """At each ``cron`` tick, registers the window that last closed (once: the run key is it).

    Dagster's own partitioned schedule ticks once a window; a dataset's cron may tick at any
    time (after the nightly drop, say), so the window is chosen from the tick's time here.
    """

    @dg.schedule(
        name=schedule_name(name),
        cron_schedule=trigger.cron,
        execution_timezone=trigger.timezone,
        job=job,
        description=f"On '{trigger.cron}' ({trigger.timezone}), registers the latest closed "
        f"window of '{name}'; past windows are backfilled from the asset's page or the CLI.",
    )
    def window_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        keys = partitions.get_partition_keys(current_time=context.scheduled_execution_time)
        if not keys:
            return dg.SkipReason(f"no window of '{name}' has closed yet")
        return dg.RunRequest(run_key=f"{name}:{keys[-1]}", partition_key=keys[-1])

    return window_schedule
