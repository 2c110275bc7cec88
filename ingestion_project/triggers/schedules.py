"""Cron schedules declared on datasets."""

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
