"""Where the embedded default keeps its files: one home folder, read when definitions load."""

from __future__ import annotations

import os
from pathlib import Path

INGESTION_HOME_ENV = "INGESTION_HOME"


def ingestion_home(project_root: Path | None = None) -> Path:
    """INGESTION_HOME if set, else .ingestion in the project's root (or the working folder).

    Every process of a project (`dg dev`, the daemon, run workers, the `ingestion` command run
    from any subfolder) thus finds the same local datastore and registry.
    """
    default = (project_root or Path.cwd()) / ".ingestion"
    return Path(os.environ.get(INGESTION_HOME_ENV) or default).resolve()
