"""A planted secret never appears in anything a run produced: event log, compute logs, metadata,
run config, stored files, or the error of a failed login (real MariaDB with password auth)."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from ingestion_project_tests.datastores import secret_leak_job
from ingestion_project_tests.datastores.test_sql_datastores import _admin_engine
from ingestion_project_tests.servers import require_tcp_server


@pytest.fixture
def mariadb_login() -> tuple[str, str]:
    """A user whose password is a unique planted value (PostgreSQL here trusts local logins)."""
    require_tcp_server("127.0.0.1", 3306, "MariaDB")
    admin = _admin_engine("mysql")
    user, password = f"leak_{uuid.uuid4().hex[:10]}", f"planted-right-{uuid.uuid4().hex}"
    with admin.connect() as conn:
        conn.execute(
            sa.text("CREATE USER :user@'127.0.0.1' IDENTIFIED BY :password"),
            {"user": user, "password": password},
        )
        conn.execute(sa.text("GRANT SELECT ON test.* TO :user@'127.0.0.1'"), {"user": user})
    yield user, password
    with admin.connect() as conn:
        conn.execute(sa.text("DROP USER IF EXISTS :user@'127.0.0.1'"), {"user": user})
    admin.dispose()


def test_a_run_never_records_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mariadb_login: tuple[str, str]
) -> None:
    user, right = mariadb_login
    wrong = f"planted-wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv("LEAK_TEST_USER", user)
    monkeypatch.setenv("LEAK_TEST_RIGHT_PASSWORD", right)
    monkeypatch.setenv("LEAK_TEST_WRONG_PASSWORD", wrong)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    instance = dg.DagsterInstance.from_config(str(home))

    result = dg.execute_job(
        dg.reconstructable(secret_leak_job.make_job), instance=instance, raise_on_error=False
    )

    # The run did what the test needs: one step logged in, the other failed to.
    assert not result.success
    assert result.get_step_success_events()[0].step_key == "reads_with_secret"
    failure = result.get_step_failure_events()[0]
    assert "authentication failed" in str(failure.event_specific_data)
    captured = b"".join(path.read_bytes() for path in home.rglob("*") if path.is_file())
    assert secret_leak_job.MARKER.encode() in captured, "compute logs were not captured"

    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    records = [str(entry) for entry in instance.all_logs(result.run_id)]
    materialization = instance.get_latest_materialization_event(dg.AssetKey("reads_with_secret"))
    places = {
        "event log": "\n".join(records),
        "run config": str(run.run_config),
        "run tags": str(run.tags),
        "metadata": str(materialization),
        "stored files (SQLite, compute logs)": captured.decode("utf-8", errors="replace"),
    }
    for secret in (right, wrong):
        for place, text in places.items():
            assert secret not in text, f"the planted secret appears in the {place}"
