"""Data-change triggers under the real daemon, with the production instance on PostgreSQL.

A project whose catalog watches one Azurite container two ways: `trips` through an Azurite
queue of storage events, `weather` by polling. The daemon runs with `deploy/dagster.yaml` on a
fresh PostgreSQL database. Files land with the plain azure-storage-blob client (and the `trips`
event is queued as Event Grid queues it): one run registers each version. After a daemon
restart, nothing runs again, not even for the same event delivered twice; new files ask for one
more run each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest

from ingestion_project.triggers.storage_events import storage_events_sensor_name
from ingestion_project_tests.azurite import Azurite
from ingestion_project_tests.catalogs import write_project
from ingestion_project_tests.deploy.test_deploy_instance import DEPLOY_DIR
from ingestion_project_tests.eventgrid import KEY_VARIABLE, Lake, blob_event
from ingestion_project_tests.postgres import PG_HOST, PG_PORT, PG_USER
from ingestion_project_tests.processes import (
    executable,
    start_daemon,
    stop_process_group,
    wait_for,
    write_workspace,
)

PACKAGE = "events_project"


def runs_of(instance: dg.DagsterInstance, dataset: str = "trips") -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={"ingestion/dataset": dataset})))


@pytest.mark.slow
def test_landed_files_are_registered_once_by_events_and_by_polling_under_the_daemon(
    tmp_path: Path,
    fresh_database: str,
    azurite: Azurite,
    azurite_queue: Azurite,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lake = Lake(azurite, azurite_queue)
    lake.events["every"] = "5s"
    catalog = lake.catalog()
    catalog["datasets"]["weather"] = {
        "datastore": "lake",
        "path": "weather/*.csv",
        "trigger": {"data_change": {"every": "5s"}},
    }
    root = write_project(tmp_path / "project", {"catalog": catalog}, package=PACKAGE)
    write_workspace(root, PACKAGE)
    dagster_home, ingestion_home = tmp_path / "dagster", tmp_path / "ingestion"
    dagster_home.mkdir()
    shutil.copy(DEPLOY_DIR / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "INGESTION_HOME": str(ingestion_home),
        "DAGSTER_PG_HOST": PG_HOST,
        "DAGSTER_PG_PORT": str(PG_PORT),
        "DAGSTER_PG_USER": PG_USER,
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": fresh_database,
        KEY_VARIABLE: azurite.account_key,
        "NO_PROXY": "127.0.0.1,localhost",
        # The production instance keeps compute logs in Blob Storage: here, Azurite's.
        "DAGSTER_COMPUTE_LOGS_ACCOUNT_URL": azurite.account_url,
        "DAGSTER_COMPUTE_LOGS_ACCOUNT": azurite.account_name,
        "DAGSTER_COMPUTE_LOGS_CONTAINER": lake.blobs.create_container(
            f"logs{uuid.uuid4().hex[:12]}"
        ).container_name,
        "DAGSTER_COMPUTE_LOGS_KEY": azurite.account_key,
    }
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    sensor = storage_events_sensor_name("catalog", "lake", lake.queue_name)
    started = subprocess.run(
        executable(["dagster", "sensor", "start", sensor, "-w", "workspace.yaml"]),
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert started.returncode == 0, (started.stdout + started.stderr)[-5000:]
    polling = subprocess.run(
        executable(
            ["dagster", "sensor", "start", "catalog__data_change_every_5s", "-w", "workspace.yaml"]
        ),
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert polling.returncode == 0, (polling.stdout + polling.stderr)[-5000:]
    registry = ingestion_home / "datastores" / "workspace_default" / "_registry" / "datasets"
    log = tmp_path / "daemon.log"

    for key in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_DB"):
        monkeypatch.setenv(key, env[key])
    for key in [name for name in env if name.startswith("DAGSTER_COMPUTE_LOGS_")]:
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        process = start_daemon(root, env, log)
        try:
            event = blob_event("Created", lake.container, "trips/a.csv", 1)
            lake.land("trips/a.csv")
            lake.land("weather/a.csv")
            lake.send(event)
            for dataset, how in (("trips", "the event"), ("weather", "polling")):
                wait_for(
                    lambda dataset=dataset: (
                        (registry / dataset / "v000001.json").is_file()
                        and [run.status for run in runs_of(instance, dataset)]
                        == [dg.DagsterRunStatus.SUCCESS]
                    ),
                    f"the daemon registered {dataset} v1 from {how}",
                    log,
                )

            stop_process_group(process)
            process = start_daemon(root, env, log)
            lake.send(event)  # Event Grid delivers at least once: the same event again
            time.sleep(20)  # several 5 s ticks of the restarted daemon
            assert len(runs_of(instance)) == 1
            assert len(runs_of(instance, "weather")) == 1
            assert lake.messages_left() == 0

            lake.land("trips/b.csv")
            lake.land("weather/b.csv")
            lake.send(blob_event("Created", lake.container, "trips/b.csv", 2))
            for dataset in ("trips", "weather"):
                wait_for(
                    lambda dataset=dataset: (
                        (registry / dataset / "v000002.json").is_file()
                        and len(runs_of(instance, dataset)) == 2
                    ),
                    f"the restarted daemon registered {dataset} v2",
                    log,
                )
        finally:
            stop_process_group(process)
    for dataset in ("trips", "weather"):
        assert not (registry / dataset / "v000003.json").exists()
