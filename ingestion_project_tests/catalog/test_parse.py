"""Every kind of catalog mistake fails loading, naming the file, the entry and what to change.

Each test starts from a small valid catalog, makes one mistake, and checks the reported line.
Catalogs load through the Catalog component, as Dagster loads a defs.yaml.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox
from pydantic import BaseModel

from ingestion_project.catalog.errors import CatalogError
from ingestion_project.catalog.loading import load_project
from ingestion_project.catalog.spec import (
    CronTrigger,
    DataChangeTrigger,
    DatasetSpec,
    EstimatorSpec,
    MonitorSpec,
    RegistrySpec,
    ScoringSpec,
)
from ingestion_project_tests.catalogs import project_catalog_of, write_project
from ingestion_project_tests.conftest import PROJECT_CATALOG

SOURCE = "defs/catalog/defs.yaml"
CATALOG = "ingestion_project.components.Catalog"

Mutation = Callable[[dict[str, Any]], None]


def base_catalog() -> dict[str, Any]:
    """A small valid catalog in the shape of defs.yaml, as `yaml.safe_load` returns it."""
    return {
        "datastores": {
            "workspace_default": {"kind": "local"},
            "raw_blob": {"kind": "local", "root": "raw"},
            "warehouse": {
                "kind": "postgresql",
                "host": "db.example.internal",
                "database": "rides",
                "user": "reader",
            },
        },
        "datasets": {
            "trips": {
                "datastore": "raw_blob",
                "path": "trips/*.csv",
                "timestamp_column": "ts",
                "checks": [{"not_null": ["ts", "riders"]}, {"between": {"temp": [0, 1]}}],
                "trigger": {"cron": "0 2 * * *", "timezone": "UTC"},
            },
            "trips_new": {
                "datastore": "raw_blob",
                "path": "incoming/*.csv",
                "trigger": {"data_change": {"every": "30s"}},
            },
        },
        "models": {
            "demand": {
                "train_on": "trips",
                "target": "riders",
                "features": ["hr", "temp", "hum", "weathersit"],
                "categorical": ["weathersit"],
                "estimator": {"kind": "random_forest", "params": {"n_estimators": 10}},
                "scoring": {"dataset": "trips_new", "path": "predictions"},
            }
        },
        "monitors": {"demand_drift": {"model": "demand", "features": ["temp", "weathersit"]}},
    }


def catalog_error(raw: Any) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        project_catalog_of(raw)
    assert caught.value.source == SOURCE
    return caught.value


def mistake(mutate: Mutation) -> CatalogError:
    raw = base_catalog()
    mutate(raw)
    return catalog_error(raw)


def problem_line(error: CatalogError, entry: str) -> str:
    """The one rendered line for ``entry``: file first, then the exact entry path."""
    prefix = f"{SOURCE}: {entry}: "
    lines = [line for line in str(error).splitlines() if line.startswith(prefix)]
    assert lines, f"no problem reported for {entry!r}; got:\n{error}"
    return lines[0]


def assert_reported(error: CatalogError, entry: str, *hints: str) -> str:
    line = problem_line(error, entry)
    for hint in hints:
        assert hint in line, f"{hint!r} missing from: {line}"
    return line


def test_base_catalog_is_valid() -> None:
    spec = project_catalog_of(base_catalog())

    assert sorted(spec.datasets) == ["trips", "trips_new"]
    assert isinstance(spec.datasets["trips"].trigger, CronTrigger)
    assert isinstance(spec.datasets["trips_new"].trigger, DataChangeTrigger)


@pytest.mark.parametrize(
    ("where", "key", "spec_type", "suggestion"),
    [
        ("datasets.trips", "pathh", DatasetSpec, "path"),
        ("monitors.demand_drift", "treshold", MonitorSpec, "threshold"),
        ("registry", "prefx", RegistrySpec, "prefix"),
        ("models.demand.estimator", "parms", EstimatorSpec, "params"),
        ("models.demand.scoring", "datset", ScoringSpec, "dataset"),
        ("datasets.trips.trigger", "timezon", CronTrigger, "timezone"),
    ],
    ids=["dataset", "monitor", "registry", "model.estimator", "model.scoring", "trigger"],
)
def test_unknown_key_lists_allowed_keys_and_suggests_one(
    where: str, key: str, spec_type: type[BaseModel], suggestion: str
) -> None:
    raw = base_catalog()
    entry = raw
    for part in where.split("."):
        entry = entry.setdefault(part, {})
    entry[key] = "x"

    error = catalog_error(raw)

    assert_reported(
        error,
        f"{where}.{key}",
        f"unknown key '{key}'",
        f"Allowed keys: {', '.join(sorted(spec_type.model_fields))}",
        f"did you mean '{suggestion}'?",
    )


def test_unknown_top_level_section_lists_sections() -> None:
    def rename(raw: dict[str, Any]) -> None:
        raw["dataset"] = raw.pop("datasets")

    error = mistake(rename)

    assert_reported(
        error,
        "dataset",
        "unknown section",
        "registry, datastores, datasets, models, monitors",
        "did you mean 'datasets'?",
    )


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda raw: raw["datasets"]["trips"].update(datastore="raw_blb"), "datasets.trips"),
        (
            lambda raw: raw["models"]["demand"]["scoring"].update(datastore="raw_blb"),
            "models.demand.scoring",
        ),
        (lambda raw: raw.update(registry={"datastore": "raw_blb"}), "registry"),
    ],
    ids=["dataset", "model.scoring", "registry"],
)
def test_undeclared_datastore_lists_declared_ones(mutate: Mutation, where: str) -> None:
    error = mistake(mutate)

    assert_reported(
        error,
        f"{where}.datastore",
        "'raw_blb' is not a declared datastore",
        "Declared datastores: raw_blob, warehouse, workspace_default",
        "did you mean 'raw_blob'?",
    )


@pytest.mark.parametrize(
    ("mutate", "where", "hints"),
    [
        (
            lambda raw: raw["models"]["demand"].update(train_on="trip"),
            "models.demand.train_on",
            ("'trip' is not a declared dataset", "Declared datasets: trips, trips_new"),
        ),
        (
            lambda raw: raw["models"]["demand"]["scoring"].update(dataset="trips_nwe"),
            "models.demand.scoring.dataset",
            ("'trips_nwe' is not a declared dataset", "did you mean 'trips_new'?"),
        ),
        (
            lambda raw: raw["monitors"]["demand_drift"].update(model="demand_v2"),
            "monitors.demand_drift.model",
            ("'demand_v2' is not a declared model", "Declared models: demand"),
        ),
        (
            lambda raw: raw["monitors"]["demand_drift"].update(
                features=["temp", "hum"], methods={"wind": "psi"}
            ),
            "monitors.demand_drift.methods",
            ("['wind'] are not among the monitored features", "Monitored features: temp, hum"),
        ),
        (
            lambda raw: raw["models"]["demand"].pop("scoring"),
            "monitors.demand_drift.model",
            ("model 'demand' has no 'scoring:' section", "add models.demand.scoring"),
        ),
        (
            lambda raw: raw["monitors"]["demand_drift"].update(target="trips_nwe"),
            "monitors.demand_drift.target",
            ("'trips_nwe' is not a declared dataset", "did you mean 'trips_new'?"),
        ),
    ],
    ids=[
        "train_on",
        "scoring.dataset",
        "monitor.model",
        "monitor.methods",
        "monitor.no_scoring",
        "monitor.target",
    ],
)
def test_undeclared_reference_names_what_is_declared(
    mutate: Mutation, where: str, hints: tuple[str, ...]
) -> None:
    error = mistake(mutate)

    assert_reported(error, where, *hints)


def _add_postgres(password: Any) -> Mutation:
    def add(raw: dict[str, Any]) -> None:
        raw["datastores"]["secure_db"] = {
            "kind": "postgresql",
            "host": "db.example.internal",
            "database": "rides",
            "user": "loader",
            "password": password,
        }

    return add


@pytest.fixture
def secret_variable(monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"INGESTION_TEST_PASSWORD_{uuid.uuid4().hex.upper()}"
    monkeypatch.delenv(name, raising=False)
    return name


def test_unset_secret_variable_does_not_block_loading(secret_variable: str) -> None:
    # Secrets are read at run time: the webserver and daemon need not hold the workers' secrets.
    raw = base_catalog()
    _add_postgres({"env": secret_variable})(raw)

    spec = project_catalog_of(raw)

    password = spec.datastores["secure_db"].password  # type: ignore[attr-defined]
    assert password is not None
    assert password.env == secret_variable


@pytest.mark.parametrize(
    ("shape", "where"),
    [("literal", "password"), ("as_env_name", "password.env")],
    ids=["literal", "as_env_name"],
)
def test_literal_secret_is_refused_without_echoing_it(shape: str, where: str) -> None:
    planted = f"hunter2-{uuid.uuid4()}"
    password = planted if shape == "literal" else {"env": planted}

    error = mistake(_add_postgres(password))

    assert_reported(
        error, f"datastores.secure_db.{where}", "value not shown", "{env: VARIABLE_NAME}"
    )
    assert planted not in str(error)
    assert planted not in repr(error.problems)


@pytest.mark.parametrize(
    ("pattern", "hint"),
    [
        ("trips/[abc.csv", "'[' without a closing ']'"),
        ("trips/[a[b]].csv", "nests '['"),
        ("../outside/*.csv", "leaves the datastore root through '..'"),
        ("trips/../../outside/*.csv", "leaves the datastore root through '..'"),
        ("/etc/*.csv", "absolute path '/etc/*.csv' is not allowed"),
        ("C:/data/*.csv", "absolute path 'C:/data/*.csv' is not allowed"),
        ("trips/a**b/*.csv", "'**' must be a whole path segment"),
    ],
    ids=["unbalanced", "nested", "dotdot", "inner_dotdot", "absolute", "drive", "double_star"],
)
def test_malformed_glob_names_the_dataset_path(pattern: str, hint: str) -> None:
    error = mistake(lambda raw: raw["datasets"]["trips"].update(path=pattern))

    assert_reported(error, "datasets.trips.path", hint)


def test_problem_lines_do_not_double_the_full_stop() -> None:
    error = mistake(lambda raw: raw["datasets"]["trips"].update(path="trips/[abc.csv"))

    assert ".. " not in problem_line(error, "datasets.trips.path")


@pytest.mark.parametrize(
    ("trigger", "where", "hint"),
    [
        ({"cron": "61 * * * *"}, "cron", "'61 * * * *' is not a valid cron expression"),
        ({"cron": "every day"}, "cron", "'every day' is not a valid cron expression"),
        ({"cron": "0 2 * * * *"}, "cron", "five fields"),
        ({"cron": "0 0 30 2 *"}, "cron", "'0 0 30 2 *'"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "timezone", "IANA time zone"),
        ({"data_change": {"every": "soon"}}, "data_change.every", "an interval like '30s'"),
        ({"data_change": {"every": "0s"}}, "data_change.every", "at least 1s"),
    ],
    ids=["minute_61", "words", "seconds_field", "feb_30", "timezone", "interval", "zero"],
)
def test_malformed_trigger_names_the_field(trigger: dict[str, Any], where: str, hint: str) -> None:
    error = mistake(lambda raw: raw["datasets"]["trips"].update(trigger=trigger))

    assert_reported(error, f"datasets.trips.trigger.{where}", hint)


def test_trigger_that_is_neither_schedule_nor_data_change_shows_both_forms() -> None:
    error = mistake(lambda raw: raw["datasets"]["trips"].update(trigger={"every": "30s"}))

    assert_reported(
        error, "datasets.trips.trigger", "is neither", "cron:", "data_change: {every: 60s}"
    )


def test_the_old_on_data_change_form_says_how_to_write_it_now() -> None:
    # YAML 1.1 reads a bare `on:` key as true, which no JSON schema (`dg check yaml`) accepts.
    loaded = yaml.safe_load("trigger: {on: data_change, every: 30s}")
    assert True in loaded["trigger"]

    error = mistake(lambda raw: raw["datasets"]["trips_new"].update(trigger=loaded["trigger"]))

    assert_reported(
        error, "datasets.trips_new.trigger", "old way", "trigger: {data_change: {every: 30s}}"
    )


def test_a_data_change_trigger_with_nothing_after_it_checks_every_minute() -> None:
    raw = base_catalog()
    raw["datasets"]["trips_new"]["trigger"] = yaml.safe_load("data_change:")

    trigger = project_catalog_of(raw).datasets["trips_new"].trigger

    assert isinstance(trigger, DataChangeTrigger)
    assert trigger.interval_seconds == 60


def test_retired_adls_gen1_points_to_gen2() -> None:
    error = mistake(lambda raw: raw["datastores"].update(lake={"kind": "adls_gen1"}))

    assert_reported(error, "datastores.lake.kind", "retired", "2024-02-29", "kind: adls_gen2")


@pytest.mark.parametrize(
    ("kind", "suggestion"),
    [("s3", ""), ("postgres", " (did you mean 'postgresql'?)"), (None, "")],
    ids=["s3", "typo", "missing"],
)
def test_unknown_datastore_kind_lists_supported_kinds(kind: str | None, suggestion: str) -> None:
    error = mistake(lambda raw: raw["datastores"].update(other={"kind": kind}))

    assert_reported(
        error,
        "datastores.other.kind",
        "Use one of: local, azure_blob, azure_file_share, adls_gen2, postgresql, mysql, azure_sql, "
        f"dbfs, http{suggestion}",
    )


@pytest.mark.parametrize(
    ("kind", "required"),
    [
        ("azure_blob", "container"),
        ("azure_file_share", "share"),
        ("adls_gen2", "filesystem"),
        ("azure_sql", "host"),
        ("dbfs", "host"),
        ("http", "base_url"),
    ],
)
def test_each_kind_names_its_missing_required_key(kind: str, required: str) -> None:
    entry = {"kind": kind, "account_url": "https://acct.blob.core.windows.net"}
    if kind in ("azure_sql", "dbfs", "http"):
        entry.pop("account_url")
    error = mistake(lambda raw: raw["datastores"].update(lake=entry))

    assert_reported(error, f"datastores.lake.{required}", "is required but missing")


@pytest.mark.parametrize(
    "credential",
    [
        {"account_key": "literal-key-0f3a9c"},
        {"sas_token": "sv=2024&sig=literal-0f3a9c"},
        {"service_principal": {"tenant_id": "t", "client_id": "c", "client_secret": "lit-0f3a9c"}},
    ],
    ids=["account_key", "sas_token", "service_principal"],
)
def test_nested_literal_azure_secrets_are_refused_without_echo(credential: dict[str, Any]) -> None:
    entry = {
        "kind": "azure_blob",
        "account_url": "https://acct.blob.core.windows.net",
        "container": "raw",
        "credential": credential,
    }
    error = mistake(lambda raw: raw["datastores"].update(lake=entry))

    assert "0f3a9c" not in str(error)
    assert "must name an environment variable" in str(error)


def test_two_azure_credentials_at_once_are_refused() -> None:
    entry = {
        "kind": "azure_blob",
        "account_url": "https://acct.blob.core.windows.net",
        "container": "raw",
        "credential": {"account_key": {"env": "A_KEY"}, "sas_token": {"env": "A_SAS"}},
    }
    error = mistake(lambda raw: raw["datastores"].update(lake=entry))

    assert_reported(error, "datastores.lake.credential", "give one way to authenticate")


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        (
            {
                "kind": "postgresql",
                "host": "reader:s3cr3t-0f3a9c@db.internal",
                "database": "d",
                "user": "u",
            },
            "host",
        ),
        (
            {
                "kind": "azure_blob",
                "container": "raw",
                "account_url": "https://u:s3cr3t-0f3a9c@acct.blob.core.windows.net",
            },
            "account_url",
        ),
        (
            {
                "kind": "azure_blob",
                "container": "raw",
                "account_url": "https://acct.blob.core.windows.net/?sv=2024&sig=s3cr3t-0f3a9c",
            },
            "account_url",
        ),
        ({"kind": "dbfs", "host": "https://token:s3cr3t-0f3a9c@adb-1.azuredatabricks.net"}, "host"),
        ({"kind": "http", "base_url": "https://u:s3cr3t-0f3a9c@example.org/data/"}, "base_url"),
        ({"kind": "http", "base_url": "https://example.org/data/?token=s3cr3t-0f3a9c"}, "base_url"),
    ],
    ids=["sql_host", "azure_userinfo", "azure_sas_in_url", "dbfs_host", "http_userinfo", "token"],
)
def test_credentials_inside_a_url_or_host_are_refused_like_literal_secrets(
    entry: dict[str, Any], where: str
) -> None:
    error = mistake(lambda raw: raw["datastores"].update(lake=entry))

    line = assert_reported(
        error, f"datastores.lake.{where}", "value not shown", "{env: VARIABLE_NAME}"
    )
    assert "0f3a9c" not in str(error), line


@pytest.mark.parametrize(
    ("mutate", "where", "hint"),
    [
        (
            lambda raw: raw["datasets"].update(
                stations={"datastore": "warehouse", "path": "stations/*.csv"}
            ),
            "datasets.stations.path",
            "Use 'query:' for SQL datastores",
        ),
        (
            lambda raw: raw["datasets"]["trips"].update(path=None, query="select 1"),
            "datasets.trips.query",
            "Use 'path:' with a glob",
        ),
    ],
    ids=["path_on_sql", "query_on_files"],
)
def test_path_or_query_that_does_not_fit_the_datastore(
    mutate: Mutation, where: str, hint: str
) -> None:
    def apply(raw: dict[str, Any]) -> None:
        mutate(raw)
        for dataset in raw["datasets"].values():
            for key in ("path", "query"):
                if dataset.get(key) is None:
                    dataset.pop(key, None)

    error = mistake(apply)

    assert_reported(error, where, hint)


def test_sql_query_datasets_are_snapshots() -> None:
    raw = base_catalog()
    raw["datasets"]["stations"] = {"datastore": "warehouse", "query": "select * from stations"}
    spec = project_catalog_of(raw).datasets["stations"]
    assert spec.effective_mode == "snapshot"


@pytest.mark.parametrize(
    ("extra", "hint"),
    [
        ({"mode": "reference"}, "cannot be a reference"),
        ({"trigger": {"data_change": {}}}, "needs 'tables'"),
        ({"partition_format": "{a}/*.csv"}, "need 'path', not 'query'"),
    ],
    ids=["reference", "trigger_without_tables", "partition_format"],
)
def test_sql_dataset_mistakes(extra: dict[str, Any], hint: str) -> None:
    def apply(raw: dict[str, Any]) -> None:
        raw["datasets"]["stations"] = {
            "datastore": "warehouse",
            "query": "select * from stations",
            **extra,
        }

    assert_reported(mistake(apply), "datasets.stations", hint)


@pytest.mark.parametrize("keep", ["both", "neither"])
def test_dataset_needs_exactly_one_of_path_and_query(keep: str) -> None:
    def apply(raw: dict[str, Any]) -> None:
        trips = raw["datasets"]["trips"]
        if keep == "both":
            trips["query"] = "select 1"
        else:
            del trips["path"]

    error = mistake(apply)

    assert_reported(error, "datasets.trips", "give exactly one of 'path' (files) or 'query' (SQL)")


@pytest.mark.parametrize(
    ("mutate", "where", "earlier"),
    [
        (
            lambda raw: raw["datasets"].update(demand={"datastore": "raw_blob", "path": "d/*.csv"}),
            "models.demand",
            "datasets.demand",
        ),
        (
            lambda raw: raw["monitors"].update(demand={"model": "demand"}),
            "monitors.demand",
            "models.demand",
        ),
        (
            lambda raw: raw["datasets"].update(
                demand_drift={"datastore": "raw_blob", "path": "d/*.csv"}
            ),
            "monitors.demand_drift",
            "datasets.demand_drift",
        ),
    ],
    ids=["dataset_and_model", "model_and_monitor", "dataset_and_monitor"],
)
def test_duplicate_names_across_sections(mutate: Mutation, where: str, earlier: str) -> None:
    error = mistake(mutate)

    assert_reported(error, where, f"name is already used by {earlier}", "rename one")


def test_dataset_named_like_a_models_predictions_is_a_duplicate() -> None:
    # A model with `scoring:` generates the asset '<model>_predictions'.
    error = mistake(
        lambda raw: raw["datasets"].update(
            demand_predictions={"datastore": "raw_blob", "path": "d/*.csv"}
        )
    )

    assert_reported(error, "datasets.demand_predictions", "demand", "rename")


@pytest.mark.parametrize("section", ["datastores", "datasets", "models", "monitors"])
@pytest.mark.parametrize("name", ["Bad-Name", "1st", "x" * 64])
def test_bad_name_says_which_characters_are_allowed(section: str, name: str) -> None:
    error = mistake(lambda raw: raw[section].update({name: {}}))

    assert_reported(error, f"{section}.{name}", "is not a valid name", "lower-case letters")


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda raw: raw["models"]["demand"].pop("target"), "models.demand.target"),
        (lambda raw: raw["datastores"]["warehouse"].pop("host"), "datastores.warehouse.host"),
    ],
    ids=["model.target", "datastore.host"],
)
def test_missing_required_key_names_it(mutate: Mutation, where: str) -> None:
    error = mistake(mutate)

    assert_reported(error, where, "is required but missing", "Add it")


@pytest.mark.parametrize(
    ("mutate", "hint"),
    [
        (
            lambda raw: raw["models"]["demand"].update(categorical=["colour"]),
            "categorical columns ['colour'] are not listed in 'features'",
        ),
        (
            lambda raw: raw["models"]["demand"]["features"].append("riders"),
            "the target 'riders' must not also be a feature",
        ),
    ],
    ids=["categorical", "target"],
)
def test_model_columns_that_contradict_each_other(mutate: Mutation, hint: str) -> None:
    error = mistake(mutate)

    assert_reported(error, "models.demand", hint)


@pytest.mark.parametrize(
    ("check", "hint"),
    [
        ({"not_nul": ["ts"]}, "did you mean 'not_null'?"),
        ({"not_null": ["ts"], "unique": ["ts"]}, "exactly one check"),
    ],
    ids=["unknown", "two_in_one"],
)
def test_bad_check_lists_check_kinds(check: dict[str, Any], hint: str) -> None:
    error = mistake(lambda raw: raw["datasets"]["trips"]["checks"].append(check))

    assert_reported(error, "datasets.trips.checks[2]", hint, "not_null, between, unique, columns")


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda raw: raw.update(datasets=["trips"]), "datasets"),
        (lambda raw: raw["datasets"].update(trips="trips/*.csv"), "datasets.trips"),
        (lambda raw: raw["datastores"].update(lake="local"), "datastores.lake"),
    ],
    ids=["section", "dataset", "datastore"],
)
def test_entry_of_the_wrong_shape_says_it_must_be_a_mapping(mutate: Mutation, where: str) -> None:
    error = mistake(mutate)

    assert_reported(error, where, "must be a mapping")


def test_several_mistakes_in_entries_are_all_reported() -> None:
    def break_three(raw: dict[str, Any]) -> None:
        raw["datasets"]["trips"]["pathh"] = "x"
        raw["datasets"]["trips_new"]["trigger"] = {"cron": "61 * * * *"}
        raw["monitors"]["demand_drift"]["treshold"] = 0.5

    error = mistake(break_three)

    assert len(error.problems) == 3
    assert len(str(error).splitlines()) == 3
    problem_line(error, "datasets.trips.pathh")
    problem_line(error, "datasets.trips_new.trigger.cron")
    problem_line(error, "monitors.demand_drift.treshold")


def test_entry_and_reference_mistakes_are_reported_together() -> None:
    # One load should show every mistake, not one pass at a time.
    def break_three(raw: dict[str, Any]) -> None:
        raw["monitors"]["demand_drift"]["treshold"] = 0.5
        raw["datasets"]["trips_new"]["datastore"] = "warehous"
        raw["datastores"]["secure_db"] = {"kind": "postgresql", "host": "h", "user": "u"}

    error = mistake(break_three)

    problem_line(error, "monitors.demand_drift.treshold")
    problem_line(error, "datasets.trips_new.datastore")
    problem_line(error, "datastores.secure_db.database")


def test_catalog_that_is_not_a_mapping() -> None:
    error = catalog_error(["datasets"])

    assert_reported(error, "(top level)", "must be a mapping", "registry")


def test_a_project_with_invalid_yaml_does_not_load(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "proj",
        {"catalog": f"type: {CATALOG}\nattributes:\n  datasets:\n    trips: {{path: [unclosed\n"},
    )

    with pytest.raises(Exception, match=r"defs\.yaml"):
        load_project(root)


def test_loading_a_project_reports_mistakes_with_the_catalog_file(tmp_path: Path) -> None:
    raw = base_catalog()
    raw["datasets"]["trips"]["datastore"] = "raw_blb"
    root = write_project(tmp_path / "proj", {"catalog": raw})

    with pytest.raises(CatalogError) as caught:
        load_project(root)

    source = next(root.glob("*/defs/catalog/defs.yaml")).relative_to(root)
    assert f"{source}: datasets.trips.datastore: 'raw_blb' is not a declared datastore" in str(
        caught.value
    )


def test_loading_a_project_reads_its_catalogs(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"catalog": base_catalog()})

    spec = load_project(root).catalog

    assert sorted(spec.models) == ["demand"]
    assert sorted(spec.monitors) == ["demand_drift"]


def test_a_name_declared_twice_in_one_file_is_refused(tmp_path: Path) -> None:
    # YAML keeps the last of two equal keys; a second 'trips' must not silently replace the first.
    root = write_project(
        tmp_path / "proj",
        {
            "catalog": f"type: {CATALOG}\n"
            "attributes:\n"
            "  datasets:\n"
            "    trips: {path: trips/*.csv}\n"
            "    trips: {path: other/*.csv}\n"
        },
    )

    with pytest.raises(CatalogError) as caught:
        load_project(root)

    assert "defs/catalog/defs.yaml: (file):" in str(caught.value)
    assert "'trips' is declared twice" in str(caught.value)


def test_project_catalog_loads() -> None:
    spec = load_project(PROJECT_CATALOG.parent).catalog

    assert sorted(spec.datasets) == ["bikeshare_daily", "bikeshare_history", "bikeshare_scoring"]
    assert sorted(spec.models) == ["bikeshare_demand", "busy_hours"]
    assert sorted(spec.monitors) == ["bikeshare_drift", "busy_hours_drift", "weather_daily"]
    assert spec.models["busy_hours"].task_name == "classification"
    assert isinstance(spec.datasets["bikeshare_scoring"].trigger, DataChangeTrigger)


def _load_through_dagster(defs_yaml: str) -> BaseException | None:
    """Load a defs folder holding only this catalog, the way `dg` and the webserver do."""
    with create_defs_folder_sandbox() as sandbox:
        folder = sandbox.defs_folder_path / "catalog"
        folder.mkdir()
        (folder / "defs.yaml").write_text(defs_yaml, encoding="utf-8")
        try:
            with sandbox.build_all_defs():
                return None
        except Exception as error:
            return error


def _catalog_error_in_chain(error: BaseException | None) -> CatalogError:
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        if isinstance(error, CatalogError):
            return error
        seen.append(error)
        error = error.__cause__ or error.__context__
    pytest.fail(f"no CatalogError among {[type(e).__name__ for e in seen]}")


@pytest.fixture
def project_defs_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    return PROJECT_CATALOG.read_text(encoding="utf-8")


def test_project_catalog_loads_through_dagster(project_defs_yaml: str) -> None:
    assert _load_through_dagster(project_defs_yaml) is None


def test_dagster_loading_surfaces_the_catalog_message(project_defs_yaml: str) -> None:
    broken = project_defs_yaml.replace(
        "datastore: workspace_default\n      path: bikeshare/history",
        "datastore: raw_blb\n      path: bikeshare/history",
    )
    assert broken != project_defs_yaml

    error = _catalog_error_in_chain(_load_through_dagster(broken))

    message = str(error)
    assert "defs/catalog/defs.yaml: datasets.bikeshare_history.datastore:" in message
    assert "Declared datastores: workspace_default" in message


def test_dagster_loading_words_a_misspelt_section_like_the_parser(project_defs_yaml: str) -> None:
    broken = project_defs_yaml.replace("\n  datasets:\n", "\n  dataset:\n")
    assert broken != project_defs_yaml

    error = _catalog_error_in_chain(_load_through_dagster(broken))

    assert "dataset: unknown section" in str(error)
    assert "did you mean 'datasets'?" in str(error)


@pytest.mark.parametrize("owner", ["alice", "team:", "a@b"])
def test_dataset_owners_are_emails_or_teams(owner: str) -> None:
    error = mistake(lambda raw: raw["datasets"]["trips"].update(owners=[owner]))
    assert_reported(error, "datasets.trips.owners", "must be an email address or 'team:<name>'")


@pytest.mark.parametrize(("section", "entry"), [("models", "demand"), ("monitors", "demand_drift")])
def test_model_and_monitor_owners_are_emails_or_teams_like_a_datasets(
    section: str, entry: str
) -> None:
    error = mistake(lambda raw: raw[section][entry].update(owners=["alice"]))
    assert_reported(error, f"{section}.{entry}.owners", "must be an email address or 'team:<name>'")

    raw = base_catalog()
    raw[section][entry].update(owners=["team:ml", "ana@example.com"], tags={"domain": "mobility"})
    spec = getattr(project_catalog_of(raw), section)[entry]
    assert (spec.owners, spec.tags) == (["team:ml", "ana@example.com"], {"domain": "mobility"})
