"""The Catalog component: many catalogs in one project, one namespace, typed schema, code versions.

Catalogs load through the component (``catalogs.catalog_definitions``) or from a project folder
on disk, exactly as `dg dev` and the daemon load them (``catalogs.project_definitions``).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from ingestion_project.catalog import code_versions
from ingestion_project.catalog.errors import CatalogError
from ingestion_project.components.catalog import Catalog
from ingestion_project_tests.catalogs import (
    catalog_definitions,
    materialize,
    project_catalog_of,
    project_definitions,
    write_project,
)

WAREHOUSE = {
    "kind": "postgresql",
    "host": "127.0.0.1",
    "database": "test",
    "user": "postgres",
}
SHARED_STORES = {"datastores": {"landing": {"kind": "local", "root": "landing"}}}
TEAM_A = {
    "datasets": {"rides": {"datastore": "landing", "path": "rides/*.csv"}},
}
TEAM_B = {
    "datastores": {"warehouse": WAREHOUSE},
    "datasets": {"weather": {"datastore": "landing", "path": "weather/*.csv"}},
}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def asset_names(defs: dg.Definitions) -> set[str]:
    return {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}


def test_a_datastore_declared_in_one_catalog_serves_datasets_in_others() -> None:
    defs = catalog_definitions(SHARED_STORES, TEAM_A, TEAM_B)

    assert asset_names(defs) == {"rides", "weather"}
    assert set(defs.resources or {}) == {"landing", "warehouse", "workspace_default"}
    assert {job.name for job in defs.resolve_all_job_defs()} == {"__ASSET_JOB"}


def test_a_project_with_several_catalog_folders_loads_as_one_code_location(
    tmp_path: Path,
) -> None:
    # The README's "add more folders" used to crash: "different resources with same key".
    root = write_project(
        tmp_path / "project", {"stores": SHARED_STORES, "team_a": TEAM_A, "team_b": TEAM_B}
    )

    defs = project_definitions(root)

    assert asset_names(defs) == {"rides", "weather"}
    assert set(defs.resources or {}) == {"landing", "warehouse", "workspace_default"}


@pytest.mark.parametrize("section", ["datastores", "datasets"])
def test_a_name_declared_in_two_catalogs_names_both_files(section: str) -> None:
    entry = {"kind": "local"} if section == "datastores" else {"path": "x/*.csv"}
    with pytest.raises(CatalogError) as caught:
        project_catalog_of({section: {"shared": entry}}, {section: {"shared": entry}})

    (line,) = [line for line in str(caught.value).splitlines() if f"{section}.shared" in line]
    assert line.startswith(f"defs/catalog_2/defs.yaml: {section}.shared: is declared twice")
    assert "here and in defs/catalog/defs.yaml" in line
    assert "Declare it once per project" in line


def test_workspace_default_exists_once_declared_or_not() -> None:
    implicit = project_catalog_of({**SHARED_STORES, **TEAM_A}, {})
    declared = project_catalog_of({"datastores": {"workspace_default": {"kind": "local"}}}, {})

    assert "workspace_default" in implicit.resources
    assert "workspace_default" in declared.resources
    with pytest.raises(CatalogError, match="workspace_default: is declared twice"):
        project_catalog_of(
            {"datastores": {"workspace_default": {"kind": "local"}}},
            {"datastores": {"workspace_default": {"kind": "local", "root": "other"}}},
        )


def test_one_registry_per_project() -> None:
    registry = {"registry": {"prefix": "_versions"}}

    assert project_catalog_of(registry, {**SHARED_STORES, **TEAM_A}).registry.prefix == "_versions"
    with pytest.raises(CatalogError) as caught:
        project_catalog_of(registry, registry)
    assert "defs/catalog_2/defs.yaml: registry: is declared twice" in str(caught.value)
    assert "declare 'registry:' in one catalog only" in str(caught.value)


def test_an_asset_name_used_by_a_dataset_and_a_monitor_in_two_files() -> None:
    model = {
        "train_on": "rides",
        "target": "riders",
        "features": ["temp"],
        "scoring": {"dataset": "rides"},
    }
    monitors = {"models": {"demand": model}, "monitors": {"rides": {"model": "demand"}}}

    with pytest.raises(CatalogError) as caught:
        project_catalog_of({**SHARED_STORES, **TEAM_A}, monitors)

    assert (
        "defs/catalog_2/defs.yaml: monitors.rides: name is already used by datasets.rides "
        "(defs/catalog/defs.yaml)" in str(caught.value)
    )


def test_mistakes_of_every_file_are_reported_at_once_each_with_its_file() -> None:
    broken_a = {"datasets": {"rides": {"datastore": "landng", "path": "rides/*.csv"}}}
    broken_b = {"datastores": {"lake": {"kind": "azure_blb"}, "landing": {"kind": "local"}}}

    with pytest.raises(CatalogError) as caught:
        project_catalog_of(broken_a, broken_b)

    lines = str(caught.value).splitlines()
    assert any(
        line.startswith("defs/catalog/defs.yaml: datasets.rides.datastore: 'landng'")
        and "did you mean 'landing'?" in line
        for line in lines
    ), lines
    assert any(
        line.startswith("defs/catalog_2/defs.yaml: datastores.lake.kind: unknown datastore kind")
        for line in lines
    ), lines


def test_the_component_builds_definitions_on_its_own() -> None:
    # Dagster's own way to test a component: from attributes, with a test context.
    component = Catalog.from_attributes_dict(attributes={**SHARED_STORES, **TEAM_A})

    defs = component.build_defs(dg.ComponentTree.for_test().load_context)

    assert asset_names(defs) == {"rides"}


def test_the_schema_is_typed_for_editors_and_dg() -> None:
    schema = Catalog.get_model_cls().model_json_schema()

    datastore = schema["properties"]["datastores"]["additionalProperties"]
    assert set(datastore["discriminator"]["mapping"]) == {
        "local",
        "azure_blob",
        "azure_file_share",
        "adls_gen2",
        "postgresql",
        "mysql",
        "azure_sql",
        "dbfs",
        "http",
    }
    postgres = schema["$defs"]["PostgresDatastoreEntry"]
    assert postgres["properties"]["connect_timeout_seconds"]["default"] == 10
    assert postgres["properties"]["password"]["anyOf"][0] == {"$ref": "#/$defs/SecretRef"}
    assert postgres["additionalProperties"] is False
    trigger = schema["$defs"]["DatasetSpec"]["properties"]["trigger"]["anyOf"][0]
    assert trigger["oneOf"] == [
        {"$ref": "#/$defs/CronTrigger"},
        {"$ref": "#/$defs/DataChangeTrigger"},
        {"$ref": "#/$defs/StorageEventsTrigger"},
    ]


def test_dg_check_yaml_accepts_a_valid_catalog_and_flags_a_typo(tmp_path: Path) -> None:
    root = write_project(tmp_path / "project", {"catalog": {**SHARED_STORES, **TEAM_A}})

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "dg"), "check", "yaml"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    valid = check()
    assert valid.returncode == 0, valid.stdout + valid.stderr

    path = next(root.glob("*/defs/catalog/defs.yaml"))
    path.write_text(path.read_text().replace("path: rides/*.csv", "pathh: rides/*.csv"))
    typo = check()
    assert typo.returncode != 0
    assert "pathh" in typo.stdout + typo.stderr


def test_the_code_location_loads_with_a_secret_variable_unset(tmp_path: Path) -> None:
    variable = f"UNSET_{uuid.uuid4().hex[:8].upper()}"
    stores = {"datastores": {"warehouse": {**WAREHOUSE, "password": {"env": variable}}}}
    root = write_project(
        tmp_path / "project", {"catalog": {**stores, **TEAM_A}, "b": SHARED_STORES}
    )

    defs = project_definitions(root)

    password = defs.resources["warehouse"].password  # type: ignore[union-attr]
    assert isinstance(password, dg.EnvVar) and password.env_var_name == variable


def test_a_run_that_needs_an_unset_secret_names_the_datastore_and_the_variable() -> None:
    variable = f"UNSET_{uuid.uuid4().hex[:8].upper()}"
    query = {
        "datastore": "warehouse",
        "query": "select 1 as one order by 1",
    }
    defs = catalog_definitions(
        {
            "datastores": {"warehouse": {**WAREHOUSE, "password": {"env": variable}}},
            "datasets": {"ones": query},
        },
        {**SHARED_STORES, **TEAM_A},
    )
    landing = Path(defs.resources["landing"].root)  # type: ignore[union-attr]
    (landing / "rides").mkdir(parents=True)
    (landing / "rides" / "a.csv").write_text("id,temp\n1,0.5\n")

    # A run that does not need the secret is not held back by it.
    assert materialize(defs, "rides").success

    # Dagster resolves a run's resource config before any step runs, and refuses the run.
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        materialize(defs, "ones")

    text = str(caught.value)
    assert "resources:warehouse:config:password" in text
    assert f'environment variable "{variable}" which is not set' in text
    assert "must be set in this environment" in text


def code_versions_of(defs: dg.Definitions) -> dict[str, str]:
    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): str(graph.get(key).code_version) for key in graph.get_all_asset_keys()
    }


DEMO_LIKE = {
    "datasets": {
        "history": {"path": "history/*.csv"},
        "scoring": {"path": "incoming/*.csv"},
    },
    "models": {
        "demand": {
            "train_on": "history",
            "target": "bikers",
            "features": ["temp", "hum"],
            "scoring": {"dataset": "scoring"},
        }
    },
    "monitors": {"drift": {"model": "demand"}},
}


def test_a_catalog_edit_changes_exactly_the_code_version_of_the_edited_asset(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path / "project", {"catalog": DEMO_LIKE})
    before = code_versions_of(project_definitions(root))

    path = next(root.glob("*/defs/catalog/defs.yaml"))
    edited: dict[str, Any] = yaml.safe_load(path.read_text())
    edited["attributes"]["datasets"]["scoring"]["timestamp_column"] = "timestamp"
    path.write_text(yaml.safe_dump(edited))
    after = code_versions_of(project_definitions(root))

    assert (
        set(before)
        == set(after)
        == {
            "history",
            "scoring",
            "demand",
            "demand_predictions",
            "drift",
        }
    )
    assert {name for name in before if before[name] != after[name]} == {"scoring"}


def test_an_upgrade_of_the_training_code_changes_exactly_the_model_assets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = code_versions_of(catalog_definitions(DEMO_LIKE))
    real = code_versions.source_hash

    def upgraded(module: str) -> str:
        return real(module) + ("+1" if module == "ingestion_project.training" else "")

    monkeypatch.setattr(code_versions, "source_hash", upgraded)
    after = code_versions_of(catalog_definitions(DEMO_LIKE))

    assert {name for name in before if before[name] != after[name]} == {"demand"}


def test_a_new_package_version_changes_every_code_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = code_versions_of(catalog_definitions(DEMO_LIKE))
    monkeypatch.setattr(code_versions, "package_version", lambda: "99.0.0")

    after = code_versions_of(catalog_definitions(DEMO_LIKE))

    assert all(before[name] != after[name] for name in before)


def test_templates_in_a_catalog_are_rendered_like_any_defs_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDES_FOLDER", "rides_2026")
    catalog = (
        "type: ingestion_project.components.Catalog\n"
        "attributes:\n"
        "  datasets:\n"
        '    rides: {path: "{{ env.RIDES_FOLDER }}/*.csv"}\n'
    )
    root = write_project(tmp_path / "project", {"catalog": catalog})

    from ingestion_project.catalog.loading import load_project

    assert load_project(root).catalog.datasets["rides"].path == "rides_2026/*.csv"


def test_without_ingestion_home_every_command_uses_the_projects_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingestion_project.datasets.api import Workspace

    root = write_project(tmp_path / "project", {"catalog": {**SHARED_STORES, **TEAM_A}})
    monkeypatch.delenv("INGESTION_HOME")
    subfolder = root / "notebooks"
    subfolder.mkdir()
    monkeypatch.chdir(subfolder)

    workspace = Workspace.load()
    defs = project_definitions(root)

    assert workspace.home == (root / ".ingestion").resolve()
    landing = defs.resources["landing"].root  # type: ignore[union-attr]
    assert Path(landing) == (root / ".ingestion" / "landing").resolve()


def test_declared_checks_run_with_the_dataset_and_a_failure_blocks_what_depends_on_it() -> None:
    catalog = {
        **SHARED_STORES,
        "datasets": {
            "rides": {
                "datastore": "landing",
                "path": "rides/*.csv",
                "checks": [{"not_null": ["id"]}, {"between": {"temp": [0, 1]}}],
            }
        },
        "models": {"demand": {"train_on": "rides", "target": "riders", "features": ["temp"]}},
    }
    defs = catalog_definitions(catalog)
    landing = Path(defs.resources["landing"].root)  # type: ignore[union-attr]
    (landing / "rides").mkdir(parents=True)
    (landing / "rides" / "a.csv").write_text("id,temp,riders\n1,0.5,3\n,0.7,4\n")

    result = materialize(defs, "rides", "demand", raise_on_error=False)

    outcomes = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert outcomes == {"not_null": False, "between": True}
    failed = next(e for e in result.get_asset_check_evaluations() if not e.passed)
    assert failed.metadata["dataset_version"].value == 1
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "demand" not in materialized  # the blocking check stopped training on bad data
