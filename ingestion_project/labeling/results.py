"""Label Studio's annotation results to and from our two label forms.

Label Studio gives boxes in percent of the image (x, y, width, height from the top-left); our
tabular form has Azure ML's normalized corners (``topX``, ``topY``, ``bottomX``, ``bottomY`` in
0..1) and COCO has pixels (``[x, y, width, height]``, ``area``, ``iscrowd``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ingestion_project.labeling.label_config import IMAGE_TAG, LABEL_TAG, RESULT_TYPES

Box = dict[str, Any]


def _unit(value: float) -> float:
    return round(min(max(value, 0.0), 1.0), 6)


def result_classes(result: list[dict[str, Any]]) -> list[str]:
    """The classes a classification annotation chose, in the order given."""
    chosen: list[str] = []
    for item in result:
        if item.get("type") == "choices" and item.get("from_name", LABEL_TAG) == LABEL_TAG:
            chosen.extend(str(choice) for choice in item.get("value", {}).get("choices", []))
    return list(dict.fromkeys(chosen))


def result_boxes(result: list[dict[str, Any]]) -> list[Box]:
    """The boxes of a detection annotation, normalized corners in 0..1 (Azure ML's form)."""
    boxes = []
    for item in result:
        if item.get("type") != "rectanglelabels":
            continue
        value = item.get("value", {})
        x, y = float(value.get("x", 0)) / 100, float(value.get("y", 0)) / 100
        width, height = float(value.get("width", 0)) / 100, float(value.get("height", 0)) / 100
        boxes.extend(
            {
                "label": str(label),
                "topX": _unit(x),
                "topY": _unit(y),
                "bottomX": _unit(x + width),
                "bottomY": _unit(y + height),
            }
            for label in value.get("rectanglelabels", [])
        )
    return boxes


def coco_box(box: Box, width: int, height: int) -> tuple[list[float], float]:
    """A normalized box as COCO's pixel ``[x, y, width, height]`` and its ``area``."""
    left, top = box["topX"] * width, box["topY"] * height
    box_width = (box["bottomX"] - box["topX"]) * width
    box_height = (box["bottomY"] - box["topY"]) * height
    pixels = [round(value, 2) for value in (left, top, box_width, box_height)]
    return pixels, round(pixels[2] * pixels[3], 2)


def prediction_result(
    task: str, label: Any, width: int, height: int, score: float | None = None
) -> list[dict[str, Any]]:
    """One image's predicted label(s) as Label Studio result items, shown to labelers."""
    common = {"from_name": LABEL_TAG, "to_name": IMAGE_TAG, "type": RESULT_TYPES[task]}
    if task == "object_detection":
        items = []
        for box in label or []:
            value = {
                "x": float(box["topX"]) * 100,
                "y": float(box["topY"]) * 100,
                "width": (float(box["bottomX"]) - float(box["topX"])) * 100,
                "height": (float(box["bottomY"]) - float(box["topY"])) * 100,
                "rotation": 0,
                "rectanglelabels": [str(box["label"])],
            }
            item: dict[str, Any] = {
                **common,
                "id": uuid.uuid4().hex[:10],
                "original_width": width,
                "original_height": height,
                "image_rotation": 0,
                "value": value,
            }
            if score is not None:
                item["score"] = score
            items.append(item)
        return items
    choices = [label] if isinstance(label, str) else [str(value) for value in label]
    return [{**common, "id": uuid.uuid4().hex[:10], "value": {"choices": choices}}]


def labels_of(task: str, result: list[dict[str, Any]]) -> Any:
    """What our table's ``label`` column holds for one annotation, by task type.

    multi_class: the class (None if none was chosen); multi_label: the sorted list of classes;
    object_detection: the list of boxes (empty: the image was looked at and has no object).
    """
    if task == "object_detection":
        return result_boxes(result)
    chosen = result_classes(result)
    if task == "multi_class":
        return chosen[0] if chosen else None
    return sorted(chosen)


def coerce_prediction(task: str, value: Any, label_map: Mapping[str, str] | None = None) -> Any:
    """A prediction's label cell (from a model's or a dataset's table) in our label form.

    ``label_map`` renames predicted values (as text: a whole float 1.0 reads as '1') to classes.
    """
    import numpy as np

    names = label_map or {}

    def named(item: Any) -> str:
        if isinstance(item, float | np.floating) and float(item).is_integer():
            item = int(item)
        text = str(item)
        return names.get(text, text)

    if isinstance(value, np.ndarray):
        value = value.tolist()
    if task == "multi_class":
        return None if value is None else named(value)
    if task == "multi_label":
        if isinstance(value, str):
            return sorted({named(part.strip()) for part in value.split(";") if part.strip()})
        return sorted(named(part) for part in value or [])
    return [{**box, "label": named(box["label"])} for box in value or []]
