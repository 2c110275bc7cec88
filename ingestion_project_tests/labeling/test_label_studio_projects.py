"""Labeling projects end to end, against a real Label Studio server (see conftest.py).

Each test declares a catalog, materializes the image dataset and its project as `dg launch`
would, labels through Label Studio's API as a labeler's browser does, exports, and reads back
the registered labeled dataset with the Python API: its table, its COCO file and its lineage.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from ingestion_project_tests.catalogs import (
    materialize,
)
from ingestion_project_tests.labeling.generated_images import write_digits, write_shapes
from ingestion_project_tests.labeling.labeler import (
    DIGITS,
    Labeling,
    choices,
    declare,
    rectangles,
)


def coco_of(labeling: Labeling, name: str, version: int | None = None) -> dict[str, Any]:
    return json.loads(labeling.workspace().get(name, version).read_attachment("coco"))


def test_multi_class_project_syncs_incrementally_and_exports_versions(labeling: Labeling) -> None:
    digits = {d.path: d.digit for d in write_digits(labeling.images, "photos", range(8))}
    declare(labeling, "digit_labels", "multi_class", DIGITS)

    first = labeling.sync("digit_labels")

    assert (first["new_tasks"], first["tasks"], first["removed_images"]) == (8, 8, 0)
    project = labeling.project_id("digit_labels")
    details = labeling.get(f"/api/projects/{project}")
    assert details["task_number"] == 8
    assert '<Choices name="label" toName="image" choice="single-radio"' in details["label_config"]
    assert details["expert_instruction"] == "Label what you see; skip an image you cannot judge."
    tasks = labeling.task_by_path(project)
    # The labeler's browser loads each image from Label Studio's local-files view.
    served = labeling.api.get(
        f"{labeling.server.url}{tasks['photos/digit_0000.png']['data']['image']}"
    )
    assert served.status_code == 200
    assert served.content == (labeling.images / "photos/digit_0000.png").read_bytes()

    for path in ["photos/digit_0000.png", "photos/digit_0001.png", "photos/digit_0002.png"]:
        labeling.annotate(tasks[path]["id"], choices(str(digits[path])))
    labeling.annotate(
        tasks["photos/digit_0004.png"]["id"], choices(str(digits["photos/digit_0004.png"]))
    )
    labeling.skip(tasks["photos/digit_0003.png"]["id"])

    exported = labeling.export("digit_labels")

    assert (exported["version"], exported["new_version"]) == (1, True)
    assert (exported["labeled"], exported["skipped"], exported["remaining"]) == (4, 1, 3)
    version = labeling.workspace().get("digit_labels")
    frame = version.to_pandas()
    assert list(frame["image"]) == [
        "photos/digit_0000.png",
        "photos/digit_0001.png",
        "photos/digit_0002.png",
        "photos/digit_0004.png",
    ]
    assert list(frame["label"]) == [str(digits[path]) for path in frame["image"]]
    assert set(frame["annotator"]) == {labeling.server.username}
    assert (frame["width"] == 32).all() and (frame["height"] == 32).all()
    record = version.record
    assert record.lineage.upstream[0] == {"dataset": "photos", "version": 1}
    assert record.lineage.upstream[1]["label_studio_project"] == project
    coco = coco_of(labeling, "digit_labels")
    assert [c["id"] for c in coco["categories"]] == list(range(1, 11))
    by_image = {image["id"]: image["file_name"] for image in coco["images"]}
    assert sorted(
        (by_image[a["image_id"]], a["category_id"]) for a in coco["annotations"]
    ) == sorted((path, digits[path] + 1) for path in frame["image"])

    # Unchanged labels: no new version; an unchanged image folder: no new task.
    assert labeling.export("digit_labels")["new_version"] is False
    assert labeling.sync("digit_labels")["new_tasks"] == 0

    # Version 2 of the images: four new, one removed (it was labeled).
    digits |= {d.path: d.digit for d in write_digits(labeling.images, "photos", range(8, 12))}
    (labeling.images / "photos/digit_0004.png").unlink()

    second = labeling.sync("digit_labels")

    assert (second["images_version"], second["new_tasks"], second["removed_images"]) == (2, 4, 1)
    assert second["tasks"] == 11
    assert labeling.get(f"/api/projects/{project}")["task_number"] == 12  # nothing imported twice
    paths = [task["data"]["path"] for task in labeling.tasks(project)]
    assert len(paths) == len(set(paths)) == 12
    tasks = labeling.task_by_path(project)
    labeling.annotate(
        tasks["photos/digit_0009.png"]["id"], choices(str(digits["photos/digit_0009.png"]))
    )

    exported = labeling.export("digit_labels")

    assert exported["version"] == 2
    frame = labeling.workspace().get("digit_labels").to_pandas()
    assert "photos/digit_0004.png" not in set(frame["image"])  # its image left the dataset
    assert set(frame["image"]) == {
        "photos/digit_0000.png",
        "photos/digit_0001.png",
        "photos/digit_0002.png",
        "photos/digit_0009.png",
    }
    assert labeling.workspace().get("digit_labels", 2).record.lineage.upstream[0]["version"] == 2
    assert len(labeling.workspace().get("digit_labels", 1).to_pandas()) == 4  # v1 is immutable


def test_multi_label_project_exports_lists_of_classes(labeling: Labeling) -> None:
    shapes = write_shapes(labeling.images, "photos", 6)
    declare(labeling, "shape_tags", "multi_label", ["cat", "dog"])
    labeling.sync("shape_tags")
    project = labeling.project_id("shape_tags")
    assert (
        '<Choices name="label" toName="image" choice="multiple"'
        in labeling.get(f"/api/projects/{project}")["label_config"]
    )
    tasks = labeling.task_by_path(project)
    for image in shapes[:5]:
        labeling.annotate(tasks[image.path]["id"], choices(*[label for label, _ in image.boxes]))

    exported = labeling.export("shape_tags")

    assert exported["labeled"] == 5
    frame = labeling.workspace().get("shape_tags").to_pandas()
    labels = {row.image: list(row.label) for row in frame.itertuples()}
    drawn = {image.path: sorted({label for label, _ in image.boxes}) for image in shapes[:5]}
    assert labels == drawn
    assert labels["photos/shapes_002.png"] == []  # looked at: nothing in it
    per_class = {row["class"]: row["count"] for row in _table(exported["per_class"])}
    assert per_class == {"cat": 4, "dog": 2}
    coco = coco_of(labeling, "shape_tags")
    assert len(coco["images"]) == 5
    assert len(coco["annotations"]) == 6


def _table(value: Any) -> list[dict[str, Any]]:
    return [dict(record.data) for record in value.records]


def test_object_detection_exports_coco_in_pixels_and_boxes_in_0_1(labeling: Labeling) -> None:
    shapes = write_shapes(labeling.images, "photos", 6)
    declare(labeling, "shape_boxes", "object_detection", ["cat", "dog"])
    synced = labeling.sync("shape_boxes")
    project = labeling.project_id("shape_boxes")
    assert synced["new_tasks"] == 6
    assert "<RectangleLabels" in labeling.get(f"/api/projects/{project}")["label_config"]
    tasks = labeling.task_by_path(project)
    for image in shapes[:4]:  # shapes_002 has no shape: annotated with no box
        labeling.annotate(
            tasks[image.path]["id"], rectangles(image.boxes, image.width, image.height)
        )
    labeling.skip(tasks[shapes[4].path]["id"])

    exported = labeling.export("shape_boxes")

    assert (exported["labeled"], exported["skipped"], exported["remaining"]) == (4, 1, 1)
    assert exported["coco_images"] == 4
    coco = coco_of(labeling, "shape_boxes")
    assert coco["categories"] == [
        {"id": 1, "name": "cat", "supercategory": ""},
        {"id": 2, "name": "dog", "supercategory": ""},
    ]
    images = {image["file_name"]: image for image in coco["images"]}
    assert set(images) == {image.path for image in shapes[:4]}  # the one without boxes is kept
    assert images["photos/shapes_000.png"]["width"] == 120
    assert images["photos/shapes_000.png"]["height"] == 80
    drawn = sorted((image.path, label, box) for image in shapes[:4] for label, box in image.boxes)
    names = {1: "cat", 2: "dog"}
    by_id = {image["id"]: name for name, image in images.items()}
    found = sorted(
        (by_id[a["image_id"]], names[a["category_id"]], [round(v) for v in a["bbox"]])
        for a in coco["annotations"]
    )
    assert found == drawn
    for annotation in coco["annotations"]:
        _, _, width, height = annotation["bbox"]
        assert annotation["area"] == pytest.approx(width * height, rel=1e-3)
        assert annotation["iscrowd"] == 0
    frame = labeling.workspace().get("shape_boxes").to_pandas()
    row = frame.set_index("image").loc["photos/shapes_001.png"]
    boxes = sorted(list(row["label"]), key=lambda box: box["label"])
    corners = [
        (box["label"], box["topX"], box["topY"], box["bottomX"], box["bottomY"]) for box in boxes
    ]
    assert corners == [
        ("cat", pytest.approx(6 / 120), pytest.approx(10 / 80), pytest.approx(46 / 120), 0.5),
        ("dog", 0.5, pytest.approx(21 / 80), pytest.approx(110 / 120), pytest.approx(66 / 80)),
    ]
    assert list(frame.set_index("image").loc["photos/shapes_002.png", "label"]) == []


def test_progress_sensor_records_progress_on_the_project_asset_when_it_changes(
    labeling: Labeling,
) -> None:
    write_digits(labeling.images, "photos", range(3))
    declare(labeling, "digit_labels", "multi_class", DIGITS, progress_every="1m")
    labeling.sync("digit_labels")
    defs = labeling.defs()
    sensor = defs.resolve_sensor_def("digit_labels_progress")
    resources = {"workspace_default": (defs.resources or {})["workspace_default"]}

    def tick(cursor: str | None = None) -> Any:
        """One evaluation as the daemon makes it."""
        context = dg.build_sensor_context(resources=resources, cursor=cursor, definitions=defs)
        return sensor.evaluate_tick(context)

    first = tick()

    (observation,) = first.asset_events
    assert observation.asset_key == dg.AssetKey("digit_labels_project")
    assert observation.metadata["tasks"].value == 3
    assert observation.metadata["labeled"].value == 0
    again = tick(first.cursor)
    assert again.asset_events == [] and again.skip_message.startswith("Unchanged")

    tasks = labeling.task_by_path(labeling.project_id("digit_labels"))
    labeling.annotate(tasks["photos/digit_0000.png"]["id"], choices("0"))
    changed = tick(first.cursor)

    (observation,) = changed.asset_events
    metadata = observation.metadata
    assert (metadata["labeled"].value, metadata["remaining"].value) == (1, 2)
    annotators = _table(metadata["per_annotator"])
    assert annotators == [{"annotator": labeling.server.username, "labeled": 1, "skipped": 0}]
    per_class = {row["class"]: row["count"] for row in _table(metadata["per_class"])}
    assert per_class["0"] == 1 and sum(per_class.values()) == 1


def test_a_registered_model_pre_labels_new_tasks(labeling: Labeling) -> None:
    """A binary classifier of digit pixels, scored on the images to label, pre-labels them."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    zeros_and_ones = [i for i, target in enumerate(digits.target) if target in (0, 1)]
    train, label = zeros_and_ones[:200], zeros_and_ones[200:206]
    pixels = [f"p{i}" for i in range(64)]
    features = pd.DataFrame(digits.data[train], columns=pixels)
    features["is_one"] = (digits.target[train] == 1).astype(int)
    (labeling.images / "features").mkdir()
    features.to_csv(labeling.images / "features/train.csv", index=False)
    written = write_digits(labeling.images, "photos", label)
    scoring = pd.DataFrame([d.pixels for d in written], columns=pixels)
    scoring.insert(0, "image", [d.path for d in written])
    scoring.to_csv(labeling.images / "features/photos.csv", index=False)
    labeling.raw["datasets"] |= {
        "digit_pixels": {"datastore": "images", "path": "features/train.csv"},
        "photo_pixels": {"datastore": "images", "path": "features/photos.csv"},
    }
    labeling.raw["models"] = {
        "one_detector": {
            "train_on": "digit_pixels",
            "target": "is_one",
            "features": pixels,
            "estimator": {"kind": "logistic_regression", "params": {"max_iter": 500}},
            "metric": "accuracy",
            "scoring": {"dataset": "photo_pixels"},
        }
    }
    declare(
        labeling,
        "digit_labels",
        "multi_class",
        ["zero", "one"],
        prelabel={
            "model": "one_detector",
            "image_column": "image",
            "score_column": "probability",
            "label_map": {"0": "zero", "1": "one"},
        },
    )
    defs = labeling.defs()
    materialize(defs, "digit_pixels", "one_detector", "photo_pixels", "one_detector_predictions")

    synced = labeling.sync("digit_labels")

    assert synced["prelabeled"] == 6
    tasks = labeling.task_by_path(labeling.project_id("digit_labels"))
    expected = {d.path: "one" if d.digit == 1 else "zero" for d in written}
    predicted = {}
    for path, task in tasks.items():
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == "one_detector v1"
        assert 0 <= prediction["score"] <= 1
        predicted[path] = prediction["result"][0]["value"]["choices"][0]
    assert predicted == expected


def test_another_projects_labels_pre_label_a_new_project(labeling: Labeling) -> None:
    """Boxes exported by one project (0..1 corners) come back as the next one's predictions."""
    shapes = write_shapes(labeling.images, "photos", 3)
    declare(labeling, "first_pass", "object_detection", ["cat", "dog"])
    labeling.sync("first_pass")
    tasks = labeling.task_by_path(labeling.project_id("first_pass"))
    for image in shapes:
        labeling.annotate(
            tasks[image.path]["id"], rectangles(image.boxes, image.width, image.height)
        )
    labeling.export("first_pass")
    declare(
        labeling,
        "second_pass",
        "object_detection",
        ["cat", "dog"],
        prelabel={"dataset": "first_pass", "image_column": "image"},
    )

    synced = labeling.sync("second_pass")

    assert synced["prelabeled"] == 2  # the image without boxes has nothing to predict
    second = labeling.task_by_path(labeling.project_id("second_pass"))
    for image in shapes:
        predictions = second[image.path]["predictions"]
        if not image.boxes:
            assert predictions == []
            continue
        (prediction,) = predictions
        assert prediction["model_version"] == "first_pass v1"
        drawn = sorted(
            (
                item["value"]["rectanglelabels"][0],
                round(item["value"]["x"] * image.width / 100),
                round(item["value"]["y"] * image.height / 100),
                round(item["value"]["width"] * image.width / 100),
                round(item["value"]["height"] * image.height / 100),
            )
            for item in prediction["result"]
        )
        assert drawn == sorted((label, *box) for label, box in image.boxes)
