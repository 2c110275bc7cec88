"""Which executor runs a job's steps, chosen per deployment by INGESTION_EXECUTOR."""

from __future__ import annotations

import importlib
import os

import dagster as dg

EXECUTOR_ENV = "INGESTION_EXECUTOR"
K8S = "k8s"


def with_deployment_executor(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with each step in its own Kubernetes pod when INGESTION_EXECUTOR is ``k8s``.

    Read when the definitions load, not at import; dagster-k8s is only in the image (the
    project's ``k8s`` extra), so it is imported only when asked for.
    """
    choice = os.environ.get(EXECUTOR_ENV, "").strip()
    if not choice:
        return defs
    if choice != K8S:
        raise ValueError(
            f"{EXECUTOR_ENV}={choice!r} is not an executor this project knows. To fix: set it to "
            f"'{K8S}' (one Kubernetes pod per step) or leave it unset (Dagster's default executor)."
        )
    try:
        executor = importlib.import_module("dagster_k8s").k8s_job_executor
    except ModuleNotFoundError as error:
        raise RuntimeError(
            f"{EXECUTOR_ENV}={K8S} needs dagster-k8s, which is not installed. To fix: install the "
            "project's k8s extra (`uv sync --extra k8s`, as deploy/Dockerfile does) or unset "
            f"{EXECUTOR_ENV}."
        ) from error
    return dg.Definitions.merge(defs, dg.Definitions(executor=executor))
