"""The Dockerfile, docker-compose and Helm files agree with the code and with each other.

No Docker engine, Kubernetes cluster or Helm runs here: these tests read the files (deploy/README.md
says what that leaves unverified), and run the one piece of compose logic that is Python.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from azure.storage.blob import BlobServiceClient

from ingestion_project.deployment.executor import EXECUTOR_ENV, K8S
from ingestion_project_tests.azurite import Azurite

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = ROOT / "deploy"
DAGSTER_SERVICES = ("compute-logs-container", "ingestion-project", "webserver", "daemon")
CODE_SERVICE = "ingestion-project"
# Variables that come from a Kubernetes Secret, never from a literal value in the values file.
SECRET_VARIABLES = {"DAGSTER_COMPUTE_LOGS_KEY": "dagster-compute-logs"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile: continuations joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY_DIR / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, arguments = (pending + line).split(None, 1)
        instructions.append((instruction.upper(), arguments))
        pending = ""
    return instructions


def arguments_of(instruction: str) -> list[str]:
    return [arguments for name, arguments in dockerfile() if name == instruction]


def option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def env_vars_named(node: Any) -> set[str]:
    """Every variable a Dagster config names in its ``{env: NAME}`` form."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(env_vars_named(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(env_vars_named(value) for value in node))
    return set()


def compose_default(value: str) -> str:
    """The value compose gives ``${NAME:-default}`` when NAME is unset; other values unchanged."""
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    return match.group(1) if match else value


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def code_location_module() -> str:
    return f"{pyproject()['tool']['dg']['project']['root_module']}.definitions"


def exposed_port() -> int:
    (port,) = arguments_of("EXPOSE")
    return int(port)


def compose() -> dict[str, Any]:
    return load_yaml(DEPLOY_DIR / "docker-compose.yaml")


def helm_values() -> dict[str, Any]:
    return load_yaml(DEPLOY_DIR / "helm" / "values.yaml")


def helm_deployment() -> dict[str, Any]:
    (deployment,) = helm_values()["dagster-user-deployments"]["deployments"]
    return deployment


def env_list(pod: dict[str, Any]) -> dict[str, str]:
    return {entry["name"]: entry["value"] for entry in pod.get("env", [])}


def test_dockerfile_installs_from_the_lock_file_and_runs_as_a_non_root_user() -> None:
    (base,) = arguments_of("FROM")
    assert base.startswith("python:3.11-")
    assert "3.11" in pyproject()["project"]["requires-python"]
    assert any("uv.lock" in shlex.split(copy) for copy in arguments_of("COPY"))
    syncs = [run for run in arguments_of("RUN") if "uv sync" in run]
    assert len(syncs) == 2  # dependencies first, then the project: a cached layer per change
    assert all("--frozen" in shlex.split(run) for run in syncs)
    assert all("--extra k8s" in run for run in syncs)
    k8s_extra = pyproject()["project"]["optional-dependencies"][K8S]
    assert any(requirement.startswith("dagster-k8s==") for requirement in k8s_extra)

    user = arguments_of("USER")[-1]
    uid = user.split(":")[0]
    assert uid not in {"0", "root"}
    assert uid.isdigit()  # Kubernetes' runAsNonRoot can only verify a numeric user
    assert any(f"--uid {uid}" in run and "useradd" in run for run in arguments_of("RUN"))
    last_user = max(i for i, (name, _) in enumerate(dockerfile()) if name == "USER")
    last_run = max(i for i, (name, _) in enumerate(dockerfile()) if name == "RUN")
    assert last_user > last_run


def test_image_serves_the_code_location_the_project_declares() -> None:
    module = code_location_module()
    port = exposed_port()
    (cmd,) = arguments_of("CMD")
    argv = json.loads(cmd)
    assert argv[:3] == ["dagster", "code-server", "start"]
    assert option(argv, "-m") == module
    assert int(option(argv, "-p")) == port

    (root_location,) = load_yaml(ROOT / "workspace.yaml")["load_from"]
    assert root_location["python_module"]["module_name"] == module
    location_name = pyproject()["tool"]["dg"]["project"]["code_location_name"]
    assert root_location["python_module"]["location_name"] == location_name

    (grpc,) = load_yaml(DEPLOY_DIR / "workspace.yaml")["load_from"]
    assert grpc["grpc_server"] == {
        "host": CODE_SERVICE,
        "port": port,
        "location_name": location_name,
    }

    code_service = compose()["services"][CODE_SERVICE]
    assert "command" not in code_service  # the image's CMD
    assert code_service["expose"] == [str(port)]
    assert int(option(code_service["healthcheck"]["test"], "-p")) == port

    deployment = helm_deployment()
    assert deployment["name"] == CODE_SERVICE
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module]
    assert deployment["port"] == port

    # The chart mounts its instance config at $DAGSTER_HOME/dagster.yaml, the image's own path.
    env = " ".join(arguments_of("ENV"))
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in env
    assert "deploy/dagster.yaml ${DAGSTER_HOME}/dagster.yaml" in arguments_of("COPY")


def test_compose_runs_every_dagster_process_from_the_one_image() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "azurite", *DAGSTER_SERVICES}
    for name in DAGSTER_SERVICES:
        service = services[name]
        assert service["image"] == "ingestion-project:local", name
        assert (DEPLOY_DIR / service["build"]["context"]).resolve() == ROOT, name
        assert ROOT / service["build"]["dockerfile"] == DEPLOY_DIR / "Dockerfile", name

    for name, program in (("webserver", "dagster-webserver"), ("daemon", "dagster-daemon")):
        command = services[name]["command"]
        assert command[0] == program
        workspace = option(command, "-w")
        assert f"./workspace.yaml:{workspace}:ro" in services[name]["volumes"]
        assert services[name]["depends_on"][CODE_SERVICE]["condition"] == "service_healthy"
    # The image installs what uv.lock pins, as this virtualenv does: the programs exist.
    programs = {"dagster", "dagster-webserver", "dagster-daemon", "python"}
    for program in programs:
        assert (Path(sys.executable).parent / program).exists(), program


def test_compose_gives_every_dagster_process_the_instance_variables() -> None:
    instance_variables = env_vars_named(load_yaml(DEPLOY_DIR / "dagster.yaml"))
    assert {"DAGSTER_PG_HOST", "DAGSTER_COMPUTE_LOGS_ACCOUNT_URL"} <= instance_variables
    services = compose()["services"]
    for name in DAGSTER_SERVICES:
        assert set(services[name]["environment"]) >= instance_variables, name

    env = {k: compose_default(v) for k, v in services[CODE_SERVICE]["environment"].items()}
    postgres = services["postgres"]["environment"]
    assert env["DAGSTER_PG_HOST"] == "postgres"
    assert env["DAGSTER_PG_PORT"] == "5432"
    assert env["DAGSTER_PG_USER"] == postgres["POSTGRES_USER"]
    assert env["DAGSTER_PG_DB"] == postgres["POSTGRES_DB"]
    raw = services[CODE_SERVICE]["environment"]
    assert raw["DAGSTER_PG_PASSWORD"] == postgres["POSTGRES_PASSWORD"]

    azurite = services["azurite"]
    url = urlparse(env["DAGSTER_COMPUTE_LOGS_ACCOUNT_URL"])
    assert url.hostname == "azurite"
    assert url.port == int(option(azurite["command"], "--blobPort"))
    assert url.path.strip("/") == env["DAGSTER_COMPUTE_LOGS_ACCOUNT"]
    npm_azurite = json.loads((ROOT / "package.json").read_text())["devDependencies"]["azurite"]
    assert azurite["image"] == f"mcr.microsoft.com/azure-storage/azurite:{npm_azurite}"


def test_compose_creates_the_compute_log_container_once(azurite: Azurite) -> None:
    service = compose()["services"]["compute-logs-container"]
    assert service["depends_on"]["azurite"]["condition"] == "service_started"
    for name in ("ingestion-project", "webserver", "daemon"):
        needs = compose()["services"][name]["depends_on"]["compute-logs-container"]
        assert needs["condition"] == "service_completed_successfully"
    program, *args = service["command"]
    container = f"compose-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DAGSTER_COMPUTE_LOGS_ACCOUNT_URL": azurite.account_url,
        "DAGSTER_COMPUTE_LOGS_ACCOUNT": azurite.account_name,
        "DAGSTER_COMPUTE_LOGS_KEY": azurite.account_key,
        "DAGSTER_COMPUTE_LOGS_CONTAINER": container,
    }
    python = Path(sys.executable).parent / program
    for _ in range(2):  # a restart of the stack finds the container there already
        subprocess.run([str(python), *args], env=env, check=True, timeout=60)
    with BlobServiceClient(azurite.account_url, credential=azurite.account_key) as client:
        assert client.get_container_client(container).exists()
        client.delete_container(container)


def test_helm_values_run_our_image_with_the_k8s_launcher_and_executor() -> None:
    values = helm_values()
    user_deployments = values["dagster-user-deployments"]
    assert user_deployments["enabled"] is True
    deployment = helm_deployment()
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    assert env_list(deployment)[EXECUTOR_ENV] == K8S
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["enabled"] is True

    image = deployment["image"]
    assert values["dagsterWebserver"]["image"] == image
    assert values["dagsterDaemon"]["image"] == image
    compose_image = compose()["services"][CODE_SERVICE]["image"]
    assert image["repository"].rsplit("/", 1)[-1] == compose_image.split(":")[0]

    webserver = values["dagsterWebserver"]
    assert f"{webserver['service']['port']}:3000" in compose()["services"]["webserver"]["ports"]
    assert option(compose()["services"]["webserver"]["command"], "-p") == "3000"
    assert webserver["readinessProbe"]["httpGet"]["port"] == webserver["service"]["port"]


def test_helm_instance_settings_are_those_of_dagster_yaml() -> None:
    instance = load_yaml(DEPLOY_DIR / "dagster.yaml")
    values = helm_values()
    logs = values["computeLogManager"]
    assert logs["type"] == "CustomComputeLogManager"
    assert logs["config"]["customComputeLogManager"] == instance["compute_logs"]

    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    runs = instance["concurrency"]["runs"]
    assert queue["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert queue["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]

    retries = values["dagsterDaemon"]["runRetries"]
    assert {
        "enabled": retries["enabled"],
        "max_retries": retries["maxRetries"],
        "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"],
    } == instance["run_retries"]

    postgres = values["postgresql"]
    assert postgres["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]
    env = env_list(helm_deployment())
    assert env["DAGSTER_PG_HOST"] == postgres["postgresqlHost"]
    assert env["DAGSTER_PG_PORT"] == str(postgres["service"]["port"])
    assert env["DAGSTER_PG_USER"] == postgres["postgresqlUsername"]
    assert env["DAGSTER_PG_DB"] == postgres["postgresqlDatabase"]


def test_secrets_come_from_the_environment_and_from_named_kubernetes_secrets() -> None:
    instance = load_yaml(DEPLOY_DIR / "dagster.yaml")
    assert set(instance["storage"]["postgres"]["postgres_db"]["password"]) == {"env"}
    assert set(instance["compute_logs"]["config"]["access_key_or_sas_token"]) == {"env"}

    values = helm_values()
    log_variables = env_vars_named(values["computeLogManager"])
    pods = {
        "deployment": helm_deployment(),
        "webserver": values["dagsterWebserver"],
        "daemon": values["dagsterDaemon"],
    }
    for name, pod in pods.items():
        plain = set(env_list(pod))
        secrets = {entry["name"] for entry in pod["envSecrets"]}
        assert plain >= log_variables - set(SECRET_VARIABLES), name
        for variable, secret in SECRET_VARIABLES.items():
            assert variable not in plain, name
            assert secret in secrets, name

    readme = (DEPLOY_DIR / "README.md").read_text()
    secret_names = {values["global"]["postgresqlSecretName"]}
    secret_names |= {entry["name"] for pod in pods.values() for entry in pod["envSecrets"]}
    for secret in secret_names:
        assert f"create secret generic {secret}" in readme, secret
    for variable, secret in SECRET_VARIABLES.items():
        assert f"create secret generic {secret} --from-literal={variable}=" in readme
