"""`ingestion datastores check` on the real servers: ok, or a precise reason, never a secret."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingestion_project.cli import cli
from ingestion_project_tests.catalogs import write_project
from ingestion_project_tests.datastores.test_sql_datastores import mysql_user  # noqa: F401
from ingestion_project_tests.servers import require_tcp_server


def write_catalog(tmp_path: Path, datastores: dict[str, object]) -> Path:
    """A project whose one catalog declares ``datastores``; returns the project's folder."""
    return write_project(tmp_path / "project", {"catalog": {"datastores": datastores}})


def run_check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["datastores", "check", *args])
    return result.exit_code, result.output


def test_the_project_catalog_checks_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    code, out = run_check()
    assert code == 0, out
    assert "ok      workspace_default (local" in out
    assert "All 1 datastore(s) answered." in out


def test_each_failure_has_its_reason_and_no_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mysql_user: tuple[str, str],  # noqa: F811
) -> None:
    require_tcp_server("127.0.0.1", 5432, "PostgreSQL")
    user, _ = mysql_user
    wrong = f"wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    monkeypatch.setenv("CHECK_WRONG_PASSWORD", wrong)
    monkeypatch.delenv("CHECK_UNSET_PASSWORD", raising=False)
    catalog = write_catalog(
        tmp_path,
        {
            "warehouse": {
                "kind": "postgresql",
                "host": "127.0.0.1",
                "database": "test",
                "user": "postgres",
            },
            "bad_login": {
                "kind": "mysql",
                "host": "127.0.0.1",
                "database": "test",
                "user": user,
                "password": {"env": "CHECK_WRONG_PASSWORD"},
            },
            "no_such_db": {
                "kind": "postgresql",
                "host": "127.0.0.1",
                "database": f"missing_{uuid.uuid4().hex[:8]}",
                "user": "postgres",
            },
            "closed_port": {
                "kind": "mysql",
                "host": "127.0.0.1",
                "port": 1,
                "database": "test",
                "user": "root",
            },
            "no_secret": {
                "kind": "postgresql",
                "host": "127.0.0.1",
                "database": "test",
                "user": "postgres",
                "password": {"env": "CHECK_UNSET_PASSWORD"},
            },
        },
    )
    code, out = run_check("--project", str(catalog))

    assert code == 1
    assert "ok      warehouse (postgresql" in out
    assert "ok      workspace_default" in out
    lines = out.splitlines()

    def reason_of(name: str) -> str:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"FAILED  {name} "))
        return lines[index + 1].strip()

    assert reason_of("bad_login").startswith("authentication failed:")
    assert reason_of("no_such_db").startswith("database not found:")
    assert reason_of("closed_port").startswith("unreachable:")
    assert reason_of("no_secret").startswith("missing secret: environment variable ")
    assert "CHECK_UNSET_PASSWORD (datastores.no_secret.password) is not set" in out
    assert "4 of 6 datastore(s) failed." in out
    assert wrong not in out


def test_one_named_datastore_and_an_unknown_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    catalog = write_catalog(tmp_path, {"scratch": {"kind": "local", "root": "scratch"}})
    code, out = run_check("scratch", "--project", str(catalog))
    assert code == 0, out
    assert "Checking 1 datastore(s)" in out

    code, out = run_check("scrach", "--project", str(catalog))
    assert code == 2
    assert "'scrach' is not a declared datastore (declared: scratch, workspace_default)" in out


@pytest.mark.parametrize(
    ("entry", "hint"),
    [
        (
            {"kind": "postgresql", "host": "h", "database": "d", "user": "u", "password": "pw1"},
            "datastores.warehouse.password: must name an environment variable",
        ),
        ({"kind": "postgres", "host": "h"}, "did you mean 'postgresql'?"),
    ],
    ids=["literal_password", "unknown_kind"],
)
def test_a_catalog_mistake_is_worded_and_exits_2_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: dict[str, object], hint: str
) -> None:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    project = write_catalog(tmp_path, {"warehouse": entry})

    code, out = run_check("--project", str(project))

    assert code == 2
    assert hint in out
    assert "defs/catalog/defs.yaml: datastores.warehouse" in out
    assert "Traceback" not in out
    assert "pw1" not in out


def test_a_dataset_pointing_at_an_undeclared_datastore_is_worded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    project = write_project(
        tmp_path / "project",
        {"catalog": {"datasets": {"trips": {"datastore": "lake", "path": "a/*.csv"}}}},
    )

    code, out = run_check("--project", str(project))

    assert code == 2
    assert "datasets.trips.datastore: 'lake' is not a declared datastore" in out
    assert "Traceback" not in out


def test_the_check_reads_the_projects_dot_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tcp_server("127.0.0.1", 5432, "PostgreSQL")
    variable = f"CHECK_DOTENV_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    monkeypatch.setenv(variable, "")  # so that the .env's value is undone after the test
    monkeypatch.delenv(variable)
    entry = {
        "kind": "postgresql",
        "host": "127.0.0.1",
        "database": "test",
        "user": "postgres",
        "password": {"env": variable},
    }
    project = write_catalog(tmp_path, {"warehouse": entry})

    code, out = run_check("warehouse", "--project", str(project))
    assert code == 1
    assert f"{variable} (datastores.warehouse.password) is not set" in out

    (project / ".env").write_text(f"{variable}=trust-auth-ignores-it\n", encoding="utf-8")
    code, out = run_check("warehouse", "--project", str(project))
    assert code == 0, out
    assert "ok      warehouse (postgresql" in out
