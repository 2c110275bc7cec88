"""The code location: every catalog under defs/ becomes Dagster definitions."""

from pathlib import Path

import dagster as dg

from ingestion_project.deployment.executor import with_deployment_executor


@dg.definitions
def defs() -> dg.Definitions:
    return with_deployment_executor(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    )
