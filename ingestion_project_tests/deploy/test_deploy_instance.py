"""deploy/dagster.yaml against a real PostgreSQL server, and a guard on the Helm values file."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from ingestion_project_tests.postgres import PG_HOST, PG_PORT, PG_USER

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture
def deploy_home(tmp_path: Path, fresh_database: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME holding the production dagster.yaml, its env vars aimed at fresh_database."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_DIR / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_HOST", PG_HOST)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(PG_PORT))
    monkeypatch.setenv("DAGSTER_PG_USER", PG_USER)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "")  # trust auth; an empty value must be accepted
    monkeypatch.setenv("DAGSTER_PG_DB", fresh_database)
    return home


@dg.asset
def deploy_smoke_answer() -> int:
    return 42


def test_production_instance_stores_runs_and_events_in_postgres(
    deploy_home: Path, fresh_database: str
) -> None:
    with dg.DagsterInstance.from_config(str(deploy_home)) as writer:
        assert isinstance(writer.run_storage, PostgresRunStorage)
        assert isinstance(writer.event_log_storage, PostgresEventLogStorage)
        result = dg.materialize([deploy_smoke_answer], instance=writer)
        assert result.success
        run_id = result.run_id

    # A second instance shares no memory with the first: it sees only what PostgreSQL kept.
    with dg.DagsterInstance.from_config(str(deploy_home)) as reader:
        run = reader.get_run_by_id(run_id)
        assert run is not None
        assert run.status == dg.DagsterRunStatus.SUCCESS
        event = reader.get_latest_materialization_event(dg.AssetKey("deploy_smoke_answer"))
        assert event is not None
        assert event.run_id == run_id
        assert isinstance(reader.run_coordinator, dg.QueuedRunCoordinator)

    connection = psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=fresh_database, connect_timeout=5
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
            assert cursor.fetchall() == [("SUCCESS",)]
    finally:
        connection.close()


def test_helm_values_deploy_the_code_location_on_port_4000() -> None:
    values = yaml.safe_load((DEPLOY_DIR / "helm" / "values.yaml").read_text())
    user_deployments = values["dagster-user-deployments"]
    assert user_deployments["enabled"] is True
    deployment = user_deployments["deployments"][0]
    assert deployment["name"] == "ingestion-project"
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "ingestion_project.definitions"]
    assert deployment["port"] == 4000
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["enabled"] is True
