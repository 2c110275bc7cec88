"""The web UI in a real browser, over a materialized demo: what a user reads and clicks.

Catalog, a dataset's versions and profile, a materialization launched from its page, the model's
metric, the drift of each feature, a sensor's page. Set INGESTION_SCREENSHOTS=docs/screenshots
to keep the README's screenshots as well.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from ingestion_project_tests.ui.webui import (
    MATERIALIZED,
    DemoUI,
    asset_link,
    inner_row,
    metadata_row,
    metadata_value,
    save_for_docs,
)

pytestmark = pytest.mark.slow

DATASET, MODEL, MONITOR = "bikeshare_history", "bikeshare_demand", "bikeshare_drift"
MONITORED = ("temp", "atemp", "hum", "windspeed", "weathersit")
SENSOR = "bikeshare_demand_retrain_sensor"
RUN_STATUS = """
query RunStatus($id: ID!) {
  runOrError(runId: $id) { ... on Run { status assetSelection { path } } }
}"""
SENSOR_DESCRIPTION = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) { ... on Sensor { description } }
}"""


def test_the_catalog_lists_the_materialized_demo(demo_ui: DemoUI, page: Page) -> None:
    page.goto(f"{demo_ui.url}/assets")
    for asset in (*MATERIALIZED, "busy_hours", "weather_daily"):
        expect(asset_link(page, asset)).to_be_visible()
    expect(page.get_by_text("Materialized", exact=True)).to_have_count(len(MATERIALIZED))

    asset_link(page, DATASET).click()
    expect(page).to_have_url(re.compile(rf"/assets/{DATASET}$"))


def test_a_dataset_page_shows_its_versions_and_profile(demo_ui: DemoUI, page: Page) -> None:
    page.goto(f"{demo_ui.url}/assets/{DATASET}")
    expect(metadata_value(page, "version")).to_have_text("1")
    expect(metadata_value(page, "quality")).to_have_text("passed")
    versions = metadata_row(page, "versions")
    expect(inner_row(versions, "1", "passed", "2786")).to_have_count(1)
    profile = metadata_row(page, "profile")
    for column in ("timestamp", "hr", "temp", "bikers"):
        expect(inner_row(profile, column)).to_have_count(1)
    expect(inner_row(profile, "temp", "float64")).to_have_count(1)

    page.goto(f"{demo_ui.url}/assets/{DATASET}?view=events")
    profile = metadata_row(page, "profile")
    expect(inner_row(profile, "temp", "float64")).to_have_count(1)
    save_for_docs(page, "dataset", down_to=profile)


def test_a_materialization_launched_from_the_ui_succeeds(demo_ui: DemoUI, page: Page) -> None:
    page.goto(f"{demo_ui.url}/assets/{DATASET}")
    page.get_by_role("button", name=re.compile(r"Materialize$")).click()
    toast = page.get_by_role("region", name=re.compile("Notifications"))
    expect(toast).to_contain_text("Launched run")
    toast.get_by_role("link", name="View").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    run_id = page.url.split("/runs/")[1].split("?")[0]

    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=120_000)
    expect(page.get_by_text("RUN_SUCCESS", exact=True)).to_be_visible()
    run = demo_ui.graphql(RUN_STATUS, {"id": run_id})["runOrError"]
    assert run == {"status": "SUCCESS", "assetSelection": [{"path": [DATASET]}]}


def test_the_model_page_shows_its_metric(demo_ui: DemoUI, page: Page) -> None:
    page.goto(f"{demo_ui.url}/assets/{MODEL}")
    expect(metadata_value(page, "model_version")).to_have_text("1")
    expect(metadata_value(page, "holdout_r2")).to_have_text(re.compile(r"^0\.\d+$"))
    assert 0.3 < float(metadata_value(page, "holdout_r2").inner_text()) < 1
    expect(metadata_value(page, "trained_on")).to_have_text(f"{DATASET} v1")


def test_the_drift_page_shows_the_drift_of_each_feature(demo_ui: DemoUI, page: Page) -> None:
    page.goto(f"{demo_ui.url}/assets/{MONITOR}")
    expect(metadata_value(page, "drift_share")).to_have_text(re.compile(r"^[01](\.\d+)?$"))
    features = metadata_row(page, "features")
    for feature in MONITORED:
        expect(inner_row(features, feature)).to_have_count(1)
    expect(inner_row(features, "temp", "ks")).to_have_count(1)
    expect(inner_row(features, "weathersit", "chi_squared")).to_have_count(1)

    page.goto(f"{demo_ui.url}/assets/{MONITOR}?view=events")
    features = metadata_row(page, "features")
    expect(inner_row(features, "weathersit", "chi_squared")).to_have_count(1)
    save_for_docs(page, "drift", down_to=features)


def test_a_sensor_page_says_what_the_sensor_does(demo_ui: DemoUI, page: Page) -> None:
    selector = {
        "repositoryLocationName": "ingestion_project",
        "repositoryName": "__repository__",
        "sensorName": SENSOR,
    }
    description = demo_ui.graphql(SENSOR_DESCRIPTION, {"selector": selector})["sensorOrError"]
    assert MODEL in description["description"]

    page.goto(f"{demo_ui.url}/automation")
    page.locator(f'a[href$="/sensors/{SENSOR}"]').click()
    expect(page).to_have_url(re.compile(rf"/sensors/{SENSOR}"))
    expect(page.get_by_role("row", name=re.compile("^Description"))).to_contain_text(
        description["description"]
    )


# Tables inside the metadata whose content is wider than the box that shows them: the UI cuts
# them off (its metadata cells hide what overflows), so a reader never sees those columns.
CLIPPED_TABLES = """
() => [...document.querySelectorAll('td table')].flatMap((table) => {
  const clipped = [];
  for (let box = table.parentElement; box && box !== document.body; box = box.parentElement) {
    const style = getComputedStyle(box);
    const hides = ['hidden', 'clip'].includes(style.overflowX);
    if (hides && table.getBoundingClientRect().right > box.getBoundingClientRect().right + 1) {
      const row = table.closest('tr:not(table table tr)') || table.closest('tr');
      clipped.push((row ? row.innerText : table.innerText).split('\\n')[0]);
      break;
    }
  }
  if (table.getBoundingClientRect().right > window.innerWidth + 1) {
    clipped.push('past the window: ' + table.innerText.split('\\n')[0]);
  }
  return clipped;
})
"""


@pytest.mark.parametrize("asset", [DATASET, MODEL, MONITOR])
def test_metadata_tables_fit_a_1440_px_screen(demo_ui: DemoUI, page: Page, asset: str) -> None:
    for view in ("", "?view=events"):
        page.goto(f"{demo_ui.url}/assets/{asset}{view}")
        expect(page.get_by_text("Show schema", exact=True).first).to_be_visible()
        assert page.evaluate(CLIPPED_TABLES) == [], f"clipped on {page.url}"
