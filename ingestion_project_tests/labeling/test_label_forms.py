"""Labeling configurations, and annotations turned into our table and into COCO, without a server.

The end-to-end tests (test_label_studio_projects.py) do the same through a real Label Studio.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest

from ingestion_project.labeling.export import coco_document, read_annotations
from ingestion_project.labeling.label_config import label_config
from ingestion_project.labeling.results import (
    coco_box,
    labels_of,
    prediction_result,
    result_boxes,
)
from ingestion_project.labeling.spec import LabelingSpec
from ingestion_project.labeling.state import ProjectState, TaskState


def spec(task: str, classes: list[str] | None = None, **extra: Any) -> LabelingSpec:
    return LabelingSpec.model_validate(
        {
            "images": "photos",
            "task": task,
            "classes": classes or ["cat", "dog", "bird"],
            "label_studio": {"url": "http://ls.example", "token": {"env": "LS_TOKEN"}},
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("task", "control", "choice"),
    [
        ("multi_class", "Choices", "single-radio"),
        ("multi_label", "Choices", "multiple"),
        ("object_detection", "RectangleLabels", None),
    ],
)
def test_each_task_gets_its_labeling_configuration(
    task: str, control: str, choice: str | None
) -> None:
    xml = label_config(spec(task, instructions='Tag "every" animal & nothing else <3'))

    root = ET.fromstring(xml)
    assert root.tag == "View"
    (image,) = root.iter("Image")
    assert image.attrib == {"name": "image", "value": "$image"}
    (labels,) = root.iter(control)
    assert labels.attrib["toName"] == "image"
    assert labels.attrib.get("choice") == choice
    assert [option.attrib["value"] for option in labels] == ["cat", "dog", "bird"]
    (header,) = root.iter("Header")
    assert header.attrib["value"] == 'Tag "every" animal & nothing else <3'


def test_boxes_go_from_percent_to_corners_in_0_1_and_to_pixels() -> None:
    result = [
        {
            "type": "rectanglelabels",
            "from_name": "label",
            "to_name": "image",
            "original_width": 200,
            "original_height": 100,
            "value": {"x": 10, "y": 20, "width": 50, "height": 40, "rectanglelabels": ["dog"]},
        }
    ]

    (box,) = result_boxes(result)

    assert box == {"label": "dog", "topX": 0.1, "topY": 0.2, "bottomX": 0.6, "bottomY": 0.6}
    pixels, area = coco_box(box, 200, 100)
    assert pixels == [20.0, 20.0, 100.0, 40.0]
    assert area == 4000.0


def test_a_prediction_round_trips_through_label_studio_results() -> None:
    boxes = [{"label": "cat", "topX": 0.25, "topY": 0.5, "bottomX": 0.75, "bottomY": 1.0}]

    assert labels_of("object_detection", prediction_result("object_detection", boxes, 64, 32)) == (
        boxes
    )
    assert labels_of("multi_class", prediction_result("multi_class", "dog", 8, 8)) == "dog"
    assert labels_of("multi_label", prediction_result("multi_label", ["dog", "cat"], 8, 8)) == [
        "cat",
        "dog",
    ]


def annotation(
    result: list[dict[str, Any]], *, by: int = 1, at: str, cancelled: bool = False, **extra: Any
) -> dict[str, Any]:
    return {
        "id": hash(at) % 1000,
        "result": result,
        "completed_by": {"id": 1, "email": "ann@x.org"} if by == 1 else by,
        "updated_at": at,
        "was_cancelled": cancelled,
        **extra,
    }


def choice(label: str) -> list[dict[str, Any]]:
    return [{"type": "choices", "from_name": "label", "value": {"choices": [label]}}]


def state(paths: list[str], removed: list[str] | None = None) -> ProjectState:
    tasks = {path: TaskState(id=index + 1, width=8, height=8) for index, path in enumerate(paths)}
    return ProjectState(
        url="http://ls.example",
        project_id=1,
        config_fingerprint="x",
        images_version=2,
        tasks=tasks,
        removed=removed or [],
    )


def task(number: int, path: str, annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": number,
        "data": {"path": path, "width": 8, "height": 8},
        "annotations": annotations,
    }


def test_the_annotation_in_use_is_the_ground_truth_else_the_latest_not_skipped() -> None:
    exported = [
        task(
            1,
            "a.png",
            [
                annotation(choice("cat"), at="2026-01-01T10:00:00Z", ground_truth=True),
                annotation(choice("dog"), by=2, at="2026-01-02T10:00:00Z"),
            ],
        ),
        task(
            2,
            "b.png",
            [
                annotation(choice("cat"), at="2026-01-01T10:00:00Z"),
                annotation(choice("bird"), by=2, at="2026-01-03T10:00:00Z"),
                annotation([], by=2, at="2026-01-04T10:00:00Z", cancelled=True),
            ],
        ),
        task(3, "c.png", [annotation([], at="2026-01-01T10:00:00Z", cancelled=True)]),
        task(4, "d.png", []),
        task(5, "gone.png", [annotation(choice("dog"), at="2026-01-01T10:00:00Z")]),
        task(6, "made-by-hand.png", [annotation(choice("dog"), at="2026-01-01T10:00:00Z")]),
    ]
    paths = ["a.png", "b.png", "c.png", "d.png", "gone.png"]

    labeled, progress = read_annotations(
        spec("multi_class"), exported, state(paths, removed=["gone.png"])
    )

    assert [(image.path, image.label) for image in labeled] == [("a.png", "cat"), ("b.png", "bird")]
    assert labeled[0].annotator == "ann@x.org"
    assert labeled[1].annotator == "user 2"
    assert labeled[1].annotated_at == datetime(2026, 1, 3, 10, tzinfo=UTC)
    assert (progress.tasks, progress.labeled, progress.skipped, progress.remaining) == (4, 2, 1, 1)
    assert progress.outdated == 1
    assert progress.per_class == {"cat": 1, "dog": 0, "bird": 1}
    assert progress.per_annotator == {
        "ann@x.org": {"labeled": 3, "skipped": 1},
        "user 2": {"labeled": 2, "skipped": 1},
    }


def test_coco_keeps_images_without_boxes_and_numbers_categories_from_1() -> None:
    box = {
        "type": "rectanglelabels",
        "original_width": 100,
        "original_height": 50,
        "value": {"x": 0, "y": 0, "width": 50, "height": 50, "rectanglelabels": ["bird"]},
    }
    exported = [
        task(1, "a.png", [annotation([box, box], at="2026-01-01T10:00:00Z")]),
        task(2, "b.png", [annotation([], at="2026-01-01T10:00:00Z")]),
    ]
    current = state(["a.png", "b.png"])
    current = current.model_copy(
        update={
            "tasks": {
                p: TaskState(id=i + 1, width=100, height=50)
                for i, p in enumerate(["a.png", "b.png"])
            }
        }
    )
    detection = spec("object_detection")
    labeled, _ = read_annotations(detection, exported, current)

    coco = coco_document(detection, "photo_boxes", labeled)

    assert [image["file_name"] for image in coco["images"]] == ["a.png", "b.png"]
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3]
    assert len(coco["annotations"]) == 2
    first = coco["annotations"][0]
    assert first["category_id"] == 3
    assert first["bbox"] == [0.0, 0.0, 50.0, 25.0]
    assert first["area"] == 1250.0
    assert first["iscrowd"] == 0
    assert [a["id"] for a in coco["annotations"]] == [1, 2]
