"""A team's own Dagster project, from an empty folder, as the README's "Your own project" says.

create-dagster scaffolds the project with the pinned Dagster's templates, ingestion_project
becomes its dependency, and then dg, the `ingestion` command and the Python API all work from
the project's root on the project's own catalogs. Nothing asks a package registry: the
project's environment is made from this locked one, and every proxy points nowhere.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import tomlkit

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LOCKED_BIN = Path(sys.executable).parent
# Give-up bounds for a hung command on a busy machine, never expectations of speed.
COMMAND_TIMEOUT = 300
DEV_SERVER_DEADLINE = 300
UNREACHABLE = "http://127.0.0.1:9"
CATALOG_TYPE = "ingestion_project.components.Catalog"
ASSETS = {"catalog_files", "landing_orders", "landing_events"}

LANDING_CATALOG = """\
# A second catalog folder: its datastore serves the scaffolded catalog too.
type: ingestion_project.components.Catalog
attributes:
  datastores:
    landing:
      kind: local
      root: landing
  datasets:
    landing_events:
      datastore: landing
      path: events/*.csv
"""
# What the user adds to the scaffolded catalog: a dataset in the other catalog's datastore.
LANDING_ORDERS = """\
  datasets:
    landing_orders:
      datastore: landing
      path: orders/*.csv
"""
READ_BACK = """\
import json
from ingestion_project.datasets.api import Workspace

ws = Workspace.load()
frame = ws.get("catalog_files").to_pandas()
print(json.dumps({"datasets": sorted(ws.catalog.datasets), "rows": frame.to_dict("list")}))
"""


@dataclass
class UserProject:
    """The project's root and the environment its commands run in (an activated .venv)."""

    root: Path
    venv: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command of the project's environment from its root, as a user would."""
        command = [str(self.venv / "bin" / args[0]), *args[1:]]
        result = subprocess.run(
            command,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if check:
            assert result.returncode == 0, (
                f"{' '.join(args)} exited {result.returncode}\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result


def offline_environment(tmp_path: Path, venv: Path) -> dict[str, str]:
    """An activated venv, its own Dagster and ingestion homes, and no way to reach a registry."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "INGESTION_HOME"}
        and not key.lower().endswith("_proxy")
    }
    proxies = {
        name: UNREACHABLE
        for key in ("http_proxy", "https_proxy", "all_proxy")
        for name in (key, key.upper())
    }
    return {
        **inherited,
        **proxies,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "UV_OFFLINE": "1",
        "PIP_NO_INDEX": "1",
        # dg and create-dagster otherwise ask PyPI whether they are the newest release.
        "DAGSTER_DG_UPDATE_CHECK_ENABLED": "0",
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(dagster_home),
        "INGESTION_HOME": str(tmp_path / "ingestion_home"),
        "COLUMNS": "200",
    }


def add_dependency(pyproject: Path) -> None:
    """What the README's `uv add --editable <this repository>` writes into pyproject.toml.

    create-dagster allows Python 3.10 to 3.14; our package supports 3.11 only, so the README
    has the user narrow ``requires-python`` first (uv refuses to resolve otherwise).
    """
    document = tomlkit.parse(pyproject.read_text(encoding="utf-8"))
    project: Any = document["project"]
    project["requires-python"] = ">=3.11,<3.12"
    project["dependencies"].append("ingestion-project")
    tool: Any = document["tool"]
    sources = tomlkit.table()
    sources["ingestion-project"] = tomlkit.inline_table()
    sources["ingestion-project"].update({"path": str(REPO), "editable": True})
    uv = tomlkit.table(is_super_table=True)
    uv["sources"] = sources
    tool["uv"] = uv
    pyproject.write_text(tomlkit.dumps(document), encoding="utf-8")


def make_project_environment(root: Path) -> Path:
    """The project's .venv as `uv sync` would leave it, made from this locked environment.

    `uv sync` would resolve and download the project's dependencies; the locked environment
    already holds all of them at the locked versions, and the test must not reach a registry.
    So: a bare venv of the same base interpreter, plus what an editable install writes into
    its site-packages: a .pth for the project's src/ folder, and one that adds the locked
    site-packages with site.addsitedir (a plain path line would skip the .pth files there,
    among them the editable install of this repository). Its console scripts are written as
    installers write them, with this venv's python in the shebang, so that `dg dev` starts the
    code server with the project's interpreter, as after `uv sync`.
    """
    venv = root / ".venv"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base_python = Path(sys.base_prefix) / "bin" / f"python{version}"
    subprocess.run(
        [str(base_python), "-m", "venv", "--without-pip", str(venv)],
        check=True,
        timeout=COMMAND_TIMEOUT,
        capture_output=True,
    )
    site_packages = venv / "lib" / f"python{version}" / "site-packages"
    locked = sysconfig.get_paths()["purelib"]
    (site_packages / "_locked_environment.pth").write_text(
        f"import site; site.addsitedir({locked!r})\n", encoding="utf-8"
    )
    (site_packages / f"_{root.name}.pth").write_text(f"{root / 'src'}\n", encoding="utf-8")
    python = venv / "bin" / "python"
    for distribution in importlib.metadata.distributions():
        for entry in distribution.entry_points.select(group="console_scripts"):
            script = venv / "bin" / entry.name
            script.write_text(
                f"#!{python}\nimport sys\nfrom {entry.module} import {entry.attr.split('.')[0]}\n"
                f"if __name__ == '__main__':\n    sys.exit({entry.attr}())\n",
                encoding="utf-8",
            )
            script.chmod(0o755)
    return venv


def write_csv(path: Path, rows: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql_asset_keys(port: int) -> set[str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    # The test's own proxies (if any) must not see a request to a local server.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        nodes = json.load(response)["data"]["assetNodes"]
    return {"/".join(node["assetKey"]["path"]) for node in nodes}


def reset_interrupt() -> None:
    """Let `dg dev` take Ctrl-C even if this test runs with SIGINT ignored (a background job).

    Dagster copies SIGINT's handler to SIGTERM, so an ignored SIGINT would leave no way to
    stop it but SIGKILL.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def dev_server_asset_keys(project: UserProject, log: Path) -> set[str]:
    """Start `dg dev`, read the asset keys from its GraphQL API, stop it as Ctrl-C does."""
    port = free_port()
    with log.open("w", encoding="utf-8") as output:
        server = subprocess.Popen(
            [str(project.venv / "bin" / "dg"), "dev", "--port", str(port)],
            cwd=project.root,
            env=project.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=reset_interrupt,
        )
    try:
        keys: set[str] = set()
        deadline = time.monotonic() + DEV_SERVER_DEADLINE
        while not ASSETS <= keys:
            assert server.poll() is None, f"dg dev exited early:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"dg dev did not answer:\n{log.read_text()[-4000:]}"
            try:
                keys = graphql_asset_keys(port)
            except (OSError, KeyError, json.JSONDecodeError):
                time.sleep(1)
        os.killpg(server.pid, signal.SIGINT)
        assert server.wait(timeout=COMMAND_TIMEOUT) == 0, log.read_text()[-4000:]
        return keys
    finally:
        # Whatever happened above, nothing of the server outlives the test.
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.wait(timeout=COMMAND_TIMEOUT)


def test_a_user_project_from_an_empty_folder(tmp_path: Path) -> None:
    root = tmp_path / "my_team"
    venv = root / ".venv"
    env = offline_environment(tmp_path, venv)
    subprocess.run(
        [str(LOCKED_BIN / "create-dagster"), "project", "--no-uv-sync", root.name],
        cwd=tmp_path,
        env=env,
        check=True,
        timeout=COMMAND_TIMEOUT,
        capture_output=True,
    )
    assert (root / "src" / "my_team" / "definitions.py").is_file()
    add_dependency(root / "pyproject.toml")
    make_project_environment(root)
    project = UserProject(root=root, venv=venv, env=env)

    listed = json.loads(project.run("dg", "list", "components", "--json").stdout)
    assert CATALOG_TYPE in {item["key"] for item in listed["items"]}

    project.run("dg", "scaffold", "defs", CATALOG_TYPE, "catalog")
    scaffolded = root / "src" / "my_team" / "defs" / "catalog" / "defs.yaml"
    text = scaffolded.read_text(encoding="utf-8")
    assert "  datasets:\n    catalog_files:\n" in text
    scaffolded.write_text(text.replace("  datasets:\n", LANDING_ORDERS, 1), encoding="utf-8")
    landing = root / "src" / "my_team" / "defs" / "landing" / "defs.yaml"
    landing.parent.mkdir()
    landing.write_text(LANDING_CATALOG, encoding="utf-8")
    home = Path(env["INGESTION_HOME"])
    write_csv(
        home / "datastores" / "workspace_default" / "catalog" / "2024-01.csv",
        ["id,amount", "1,10.5", "2,20", "3,7"],
    )
    write_csv(home / "landing" / "orders" / "2024-01.csv", ["order,total", "a,5"])
    write_csv(home / "landing" / "events" / "2024-01.csv", ["event,kind", "1,click"])

    checked = project.run("dg", "check", "defs")
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    listed_defs = json.loads(project.run("dg", "list", "defs", "--json").stdout)
    assert {asset["asset_key"] for asset in listed_defs["assets"]} == ASSETS

    project.run("dg", "launch", "--assets", "catalog_files,landing_orders")
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    for name in ("catalog_files", "landing_orders"):
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        assert event is not None and event.asset_materialization is not None, name
        assert event.asset_materialization.metadata["version"].value == 1

    datasets = project.run("ingestion", "datasets", "list").stdout
    assert f"3 datasets in {root.resolve()}" in datasets
    assert "latest: version 1, 3 rows in 1 file" in datasets
    assert "no version yet (materialize it: dg launch --assets landing_events)" in datasets
    shown = project.run("ingestion", "datasets", "show", "catalog_files").stdout
    assert "Dataset catalog_files version 1 (the latest)" in shown
    stores = project.run("ingestion", "datastores", "check").stdout
    assert "ok      landing (local" in stores and "ok      workspace_default (local" in stores

    read_back = json.loads(project.run("python", "-c", READ_BACK).stdout)
    assert read_back == {
        "datasets": sorted(ASSETS),
        "rows": {"id": [1, 2, 3], "amount": [10.5, 20.0, 7.0]},
    }

    assert dev_server_asset_keys(project, tmp_path / "dg_dev.log") == ASSETS


def test_the_readme_shows_the_commands_this_test_runs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Your own project", 1)[1].split("\n## ", 1)[0]
    # The README's create-dagster is the one the lock pins, the scaffolding of our Dagster.
    version = importlib.metadata.version("create-dagster")
    assert version == dg.__version__
    for text in (
        f"create-dagster@{version} project --no-uv-sync my_team",
        'requires-python = ">=3.11,<3.12"',
        "uv add --editable",
        "uv sync",
        "dg list components",
        f"dg scaffold defs {CATALOG_TYPE} catalog",
        ".ingestion/datastores/workspace_default/catalog/",
        ".ingestion/landing/orders/",
        "dg check defs",
        "dg list defs",
        "dg launch --assets catalog_files,landing_orders",
        "ingestion datasets list",
        "ingestion datasets show catalog_files",
        "ingestion datastores check",
        "dg dev",
        "ws = Workspace.load()",
        'ws.get("catalog_files").to_pandas()',
        LANDING_CATALOG.split("\n", 1)[1],
        LANDING_ORDERS,
    ):
        assert text in section, text
