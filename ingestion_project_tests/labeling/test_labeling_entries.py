"""Labeling entries in a catalog: what they generate, and each mistake worded with its fix."""

from __future__ import annotations

from typing import Any

import pytest

from ingestion_project.catalog.definitions import refresh_selection
from ingestion_project.catalog.errors import CatalogError
from ingestion_project_tests.catalogs import catalog_definitions, project_catalog_of

SOURCE = "defs/catalog/defs.yaml"


def catalog(**labeling: Any) -> dict[str, Any]:
    entry = {
        "images": "photos",
        "task": "object_detection",
        "classes": ["cat", "dog"],
        "instructions": "Draw a box around every animal.",
        "label_studio": {"url": "http://localhost:8080", "token": {"env": "LABEL_STUDIO_TOKEN"}},
        "image_urls": {"local_files_document_root": "/srv/label-studio"},
        **labeling,
    }
    return {
        "datastores": {
            "shares": {
                "kind": "azure_file_share",
                "account_url": "https://acct.file.core.windows.net",
                "share": "images",
            }
        },
        "datasets": {
            "photos": {"kind": "file", "path": "photos/**/*.png", "trigger": {"data_change": {}}},
            "readings": {"path": "readings/*.csv"},
        },
        "labeling": {"photo_boxes": entry},
    }


def problems(raw: dict[str, Any]) -> str:
    with pytest.raises(CatalogError) as caught:
        project_catalog_of(raw)
    return str(caught.value)


def line(text: str, entry: str) -> str:
    found = [item for item in text.splitlines() if item.startswith(f"{SOURCE}: {entry}: ")]
    assert found, f"nothing reported for {entry}:\n{text}"
    return found[0]


def test_an_entry_makes_a_project_asset_a_labeled_dataset_and_a_progress_sensor() -> None:
    raw = catalog()
    defs = catalog_definitions(raw)

    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"photos", "photo_boxes_project", "photo_boxes"} <= keys
    assert defs.resolve_sensor_def("photo_boxes_progress").minimum_interval_seconds == 300
    graph = defs.resolve_asset_graph()
    assert graph.get(dg_key("photo_boxes")).parent_keys == {dg_key("photo_boxes_project")}
    assert dg_key("photos") in graph.get(dg_key("photo_boxes_project")).parent_keys
    # New images become tasks in the same run that registers them.
    assert "photo_boxes_project" in refresh_selection(project_catalog_of(raw), "photos")


def dg_key(name: str) -> Any:
    import dagster as dg

    return dg.AssetKey(name)


@pytest.mark.parametrize(
    ("change", "entry", "hints"),
    [
        (
            {"images": "photo"},
            "labeling.photo_boxes.images",
            ["'photo' is not a declared dataset", "did you mean 'photos'?"],
        ),
        (
            {"images": "readings"},
            "labeling.photo_boxes.images",
            ["tabular", "'kind: file'"],
        ),
        (
            {"task": "segmentation"},
            "labeling.photo_boxes.task",
            ["multi_class", "multi_label", "object_detection"],
        ),
        (
            {"classes": ["cat", "cat"]},
            "labeling.photo_boxes.classes",
            ["'cat' is listed twice"],
        ),
        (
            {"classes": []},
            "labeling.photo_boxes.classes",
            ["at least 1"],
        ),
        (
            {"prelabel": {"model": "detector"}},
            "labeling.photo_boxes.prelabel.model",
            ["'detector' is not a declared model"],
        ),
        (
            {"prelabel": {"model": "detector", "dataset": "readings"}},
            "labeling.photo_boxes.prelabel",
            ["exactly one of 'model'"],
        ),
        (
            {"image_urls": {"expiry": "30d"}},
            "labeling.photo_boxes.image_urls.expiry",
            ["30d"],
        ),
        (
            {"label_studio": {"url": "localhost:8080", "token": {"env": "T"}}},
            "labeling.photo_boxes.label_studio.url",
            ["http(s) address"],
        ),
    ],
    ids=[
        "unknown images",
        "tabular images",
        "task",
        "duplicate class",
        "no class",
        "unknown model",
        "two sources",
        "expiry",
        "url",
    ],
)
def test_mistakes_name_the_entry_and_the_fix(
    change: dict[str, Any], entry: str, hints: list[str]
) -> None:
    reported = line(problems(catalog(**change)), entry)

    for hint in hints:
        assert hint in reported, reported


def test_a_token_written_in_the_yaml_is_refused_without_showing_it() -> None:
    text = problems(catalog(label_studio={"url": "http://ls:8080", "token": "s3cr3t-t0ken"}))

    reported = line(text, "labeling.photo_boxes.label_studio.token")
    assert "must name an environment variable" in reported
    assert "s3cr3t-t0ken" not in text


def test_images_a_browser_cannot_reach_need_a_base_url() -> None:
    raw = catalog()
    raw["datasets"]["photos"]["datastore"] = "shares"

    reported = line(problems(raw), "labeling.photo_boxes.images")
    assert "azure_file_share" in reported and "image_urls.base_url" in reported

    raw["labeling"]["photo_boxes"]["image_urls"] = {"base_url": "https://images.example.org/"}
    assert "photo_boxes" in project_catalog_of(raw).labeling


def test_local_images_need_label_studio_document_root() -> None:
    raw = catalog()
    del raw["labeling"]["photo_boxes"]["image_urls"]

    reported = line(problems(raw), "labeling.photo_boxes.image_urls.local_files_document_root")
    assert "LOCAL_FILES_DOCUMENT_ROOT" in reported and "base_url" in reported


def test_a_labeling_name_is_an_asset_name_like_any_other() -> None:
    raw = catalog()
    raw["labeling"]["photos"] = raw["labeling"].pop("photo_boxes")

    reported = line(problems(raw), "labeling.photos")
    assert "already used by datasets.photos" in reported
