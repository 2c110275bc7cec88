"""INGESTION_EXECUTOR picks the executor when the code location loads (k8s under Helm)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import dagster as dg
import pytest

from ingestion_project.deployment.executor import EXECUTOR_ENV, K8S, with_deployment_executor

HAS_DAGSTER_K8S = importlib.util.find_spec("dagster_k8s") is not None


@dg.asset
def executor_probe() -> int:
    return 1


def load_code_location() -> dg.Definitions:
    from ingestion_project.definitions import defs

    return defs()


def test_without_the_variable_jobs_keep_dagsters_default_executor(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    job = load_code_location().resolve_job_def("refresh_bikeshare_history")
    assert job.executor_def is dg.multi_or_in_process_executor


def test_an_unknown_executor_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    with pytest.raises(ValueError, match=r"INGESTION_EXECUTOR='celery'.*'k8s'.*unset"):
        with_deployment_executor(dg.Definitions(assets=[executor_probe]))


@pytest.mark.skipif(
    not HAS_DAGSTER_K8S,
    reason="dagster-k8s (the project's k8s extra, which make install adds) absent",
)
def test_k8s_runs_every_step_of_every_job_in_its_own_pod(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_k8s import k8s_job_executor

    monkeypatch.setenv(EXECUTOR_ENV, K8S)
    loaded = load_code_location()
    for job in loaded.resolve_all_job_defs():
        assert job.executor_def is k8s_job_executor, job.name


def test_k8s_without_dagster_k8s_says_which_extra_to_install(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dagster_k8s", None)  # as if the extra were not installed
    monkeypatch.setenv(EXECUTOR_ENV, K8S)
    with pytest.raises(RuntimeError, match=r"needs dagster-k8s.*k8s extra"):
        load_code_location()
