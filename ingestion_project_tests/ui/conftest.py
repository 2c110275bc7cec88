"""A materialized demo served by `dagster-webserver`, and headless Chromium pages on it.

Chromium is Debian's (`make test` installs it); Playwright drives it, no browser download.
A test that fails leaves a screenshot of its page under its tmp_path and names it in the failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from ingestion_project.demo.loop import HISTORY, INCOMING
from ingestion_project_tests.conftest import PROJECT_ROOT, place_month
from ingestion_project_tests.labeling.labeler import labeling  # noqa: F401  (fixture)
from ingestion_project_tests.processes import executable, running_web_server
from ingestion_project_tests.ui.webui import (
    CHROMIUM,
    CHROMIUM_ARGS,
    INSTANCE_YAML,
    MATERIALIZED,
    VIEWPORT,
    DemoUI,
)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            f"Debian's chromium is not at {CHROMIUM}: `make test` installs it "
            "(apt-get install chromium, as root)"
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def demo_ui(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoUI]:
    """`dagster-webserver` on a free port over the demo, its five assets materialized first."""
    root = tmp_path_factory.mktemp("demo_ui")
    dagster_home, home = root / "dagster", root / "ingestion"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
    for month in (1, 2, 3, 4):
        place_month(home, HISTORY, month)
    place_month(home, INCOMING, 5)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "INGESTION_HOME": str(home),
        "VIRTUAL_ENV": str(Path(sys.executable).parent.parent),
    }
    launched = subprocess.run(
        executable(["dg", "launch", "--assets", ",".join(MATERIALIZED)]),
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]

    log = root / "webserver.log"
    with running_web_server(PROJECT_ROOT, env, log) as url:
        yield DemoUI(url, log)


@pytest.fixture(scope="package")
def browser(chromium: Path) -> Iterator[Browser]:
    """Chromium, closed when a worker leaves this package's tests.

    Playwright's sync API keeps an asyncio loop running in the thread while it is open: had it
    lived for the session, a test file the same xdist worker ran afterwards failed at
    ``asyncio.run()`` ("cannot be called from a running event loop"), as Dagster's
    automation-condition evaluation does in triggers/test_code_change.py.
    """
    # Pages query the instance as they load; on two busy cores that can take more than 5 s.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        headless = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield headless
        headless.close()


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    """A fresh 1440 px wide page; Dagster's community pop-up is dismissed whenever it shows."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    community = tab.get_by_role("dialog").filter(has_text="Join the Dagster community")
    tab.add_locator_handler(community, lambda: community.get_by_role("button", name="Skip").click())
    yield tab
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """On failure, a screenshot of the test's page, its path in the failure message."""
    try:
        return (yield)
    except (Exception, pytest.fail.Exception) as error:
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        tab, tmp_path = funcargs.get("page"), funcargs.get("tmp_path")
        if not isinstance(tab, Page) or not isinstance(tmp_path, Path):
            raise
        shot = tmp_path / "screenshots" / f"{item.name}.png"
        shot.parent.mkdir(exist_ok=True)
        try:
            tab.screenshot(path=shot, full_page=True)
            kept = f"Screenshot of {tab.url}: {shot}"
        except PlaywrightError as failure:
            kept = f"No screenshot of {tab.url}: {failure}"
        summary = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise pytest.fail.Exception(f"{summary}\n{kept}") from error
