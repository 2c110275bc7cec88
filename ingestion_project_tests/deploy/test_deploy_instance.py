"""deploy/dagster.yaml against the machine's PostgreSQL and Azurite, read back by plain clients."""

from __future__ import annotations

import shutil
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from azure.storage.blob import BlobClient, BlobServiceClient
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from ingestion_project.deployment.compute_logs import AzureBlobEndpointComputeLogManager
from ingestion_project_tests.azurite import Azurite
from ingestion_project_tests.postgres import PG_HOST, PG_PORT, PG_USER

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
LOG_PREFIX = "compute-logs"  # deploy/dagster.yaml's compute_logs.config.prefix
STDOUT_LINE = "deploy smoke: 42 rows to stdout"
STDERR_LINE = "deploy smoke: a warning to stderr"


@pytest.fixture
def log_container(azurite: Azurite) -> Iterator[str]:
    """An empty container in Azurite for this test's compute logs, deleted afterwards."""
    name = f"compute-logs-{uuid.uuid4().hex[:8]}"
    with BlobServiceClient(azurite.account_url, credential=azurite.account_key) as service:
        service.create_container(name)
        yield name
        service.delete_container(name)


@pytest.fixture
def deploy_home(
    tmp_path: Path,
    fresh_database: str,
    azurite: Azurite,
    log_container: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A DAGSTER_HOME holding the production dagster.yaml, its env vars aimed at this machine."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_DIR / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_HOST", PG_HOST)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(PG_PORT))
    monkeypatch.setenv("DAGSTER_PG_USER", PG_USER)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "")  # trust auth; an empty value must be accepted
    monkeypatch.setenv("DAGSTER_PG_DB", fresh_database)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_ACCOUNT_URL", azurite.account_url)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_ACCOUNT", azurite.account_name)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_CONTAINER", log_container)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_KEY", azurite.account_key)
    return home


@dg.asset
def deploy_smoke_answer() -> int:
    sys.stdout.write(STDOUT_LINE + "\n")
    sys.stderr.write(STDERR_LINE + "\n")
    return 42


def _captured_log_key(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The compute-log key of the run's one capture, as its LOGS_CAPTURED event names it."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.LOGS_CAPTURED
    ).records
    assert len(records) == 1
    event = records[0].event_log_entry.dagster_event
    assert event is not None
    return [run_id, "compute_logs", event.logs_captured_data.file_key]


def test_instance_config_is_current_and_complete(deploy_home: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        instance = dg.DagsterInstance.from_config(str(deploy_home))
    with instance:
        outdated = [w for w in caught if issubclass(w.category, DeprecationWarning | FutureWarning)]
        assert outdated == []
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert queue.max_concurrent_runs == 4
        assert {limit["key"]: limit["limit"] for limit in queue.tag_concurrency_limits} == {
            "ingestion/model": 2,
            "ingestion/dataset": 1,
        }
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert isinstance(instance.compute_log_manager, AzureBlobEndpointComputeLogManager)


def test_run_events_and_compute_logs_are_read_back_from_postgres_and_blob(
    deploy_home: Path, fresh_database: str, azurite: Azurite, log_container: str
) -> None:
    with dg.DagsterInstance.from_config(str(deploy_home)) as writer:
        result = dg.materialize([deploy_smoke_answer], instance=writer)
        assert result.success
        run_id = result.run_id

    # A second instance shares no memory with the first: it sees only what PostgreSQL and the
    # blob container kept (the writer deleted its local copy of the logs after uploading them).
    with dg.DagsterInstance.from_config(str(deploy_home)) as reader:
        run = reader.get_run_by_id(run_id)
        assert run is not None
        assert run.status == dg.DagsterRunStatus.SUCCESS
        event = reader.get_latest_materialization_event(dg.AssetKey("deploy_smoke_answer"))
        assert event is not None
        assert event.run_id == run_id
        log_key = _captured_log_key(reader, run_id)
        logs = reader.compute_log_manager.get_log_data(log_key)
        assert STDOUT_LINE in (logs.stdout or b"").decode()
        assert STDERR_LINE in (logs.stderr or b"").decode()
        # What the UI shows: the blob's address, and a link that works without a credential.
        metadata = reader.compute_log_manager.get_log_metadata(log_key)
    blob_path = "/".join([LOG_PREFIX, "storage", *log_key])
    assert metadata.stdout_location == f"{azurite.account_url}/{log_container}/{blob_path}.out"
    assert metadata.stdout_download_url is not None
    with BlobClient.from_blob_url(metadata.stdout_download_url) as link:
        assert STDOUT_LINE in link.download_blob().readall().decode()

    connection = psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=fresh_database, connect_timeout=5
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
            assert cursor.fetchall() == [("SUCCESS",)]
            cursor.execute(
                "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
                (run_id, "ASSET_MATERIALIZATION"),
            )
            assert cursor.fetchall() == [(1,)]
    finally:
        connection.close()

    with BlobServiceClient(azurite.account_url, credential=azurite.account_key) as service:
        container = service.get_container_client(log_container)
        stdout = container.download_blob(f"{blob_path}.out").readall().decode()
        stderr = container.download_blob(f"{blob_path}.err").readall().decode()
    assert STDOUT_LINE in stdout
    assert STDERR_LINE in stderr
