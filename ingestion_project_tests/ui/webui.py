"""Helpers for the web UI tests: the demo's web server and what a page is kept as."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, ViewportSize

from ingestion_project_tests.conftest import PROJECT_ROOT
from ingestion_project_tests.processes import graphql

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root, and quiet: this machine's closed network refuses Chromium's own calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]
VIEWPORT = ViewportSize(width=1440, height=1000)
DOCS_MAX_HEIGHT = 2400
# What the pages show: the datasets, the regressor, its predictions and their drift.
MATERIALIZED = (
    "bikeshare_history",
    "bikeshare_scoring",
    "bikeshare_demand",
    "bikeshare_demand_predictions",
    "bikeshare_drift",
)
# Runs launched from the UI start at once: no daemon is needed to dequeue them.
INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""


@dataclass(frozen=True)
class DemoUI:
    """The web server of a materialized demo."""

    url: str
    log: Path

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return graphql(self.url, query, variables)


def save_for_docs(tab: Page, name: str, down_to: Locator) -> Path | None:
    """With INGESTION_SCREENSHOTS set (e.g. docs/screenshots), keep the page as ``name``.png.

    The page is cut below ``down_to``; the viewport grows to hold it, since the UI scrolls
    inside its own panels and a full-page screenshot would stop at the window's height.
    """
    folder = os.environ.get("INGESTION_SCREENSHOTS")
    if not folder:
        return None
    tab.set_viewport_size(ViewportSize(width=VIEWPORT["width"], height=DOCS_MAX_HEIGHT))
    box = down_to.bounding_box()
    assert box is not None, f"{down_to} is not on the page"
    height = min(box["y"] + box["height"] + 1, DOCS_MAX_HEIGHT)
    path = PROJECT_ROOT / folder / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=path, clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height})
    return path


def asset_link(page: Page, asset: str) -> Locator:
    """The catalog's link to ``asset`` (its accessible name repeats the key)."""
    return page.locator(f'a[href="/assets/{asset}"]')


def metadata_row(page: Page, key: str) -> Locator:
    """The row of ``key`` in the asset's metadata table, on the Overview and Events tabs alike."""
    return page.get_by_role("cell", name=key, exact=True).first.locator("xpath=ancestor::tr[1]")


def metadata_value(page: Page, key: str) -> Locator:
    """The value of ``key`` on the Overview tab, whose metadata columns are key, time, value."""
    return metadata_row(page, key).locator("xpath=td[3]")


def inner_row(table: Locator, *cells: str) -> Locator:
    """The row of a table inside ``table`` (a metadata row) that holds all of ``cells``."""
    row = table.get_by_role("row")
    for cell in cells:
        row = row.filter(has=table.page.get_by_role("cell", name=cell, exact=True))
    return row
