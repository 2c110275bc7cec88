"""Where the embedded default keeps its files: one home folder, read when definitions load."""

from __future__ import annotations

import os
from pathlib import Path

INGESTION_HOME_ENV = "INGESTION_HOME"


def ingestion_home() -> Path:
    """INGESTION_HOME if set, else ./.ingestion in the working directory."""
    return Path(os.environ.get(INGESTION_HOME_ENV) or Path.cwd() / ".ingestion").resolve()
