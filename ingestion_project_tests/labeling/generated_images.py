"""Test images made here, never downloaded: scikit-learn's digits, and shapes at known boxes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DIGIT_SCALE = 4
SHAPE_COLOURS = {"cat": (220, 40, 40), "dog": (40, 60, 220)}


@dataclass(frozen=True)
class Digit:
    """A 32x32 PNG of one of scikit-learn's 8x8 digits, its label and its 64 pixel values."""

    path: str
    digit: int
    pixels: list[float]


def write_digits(root: Path, folder: str, indices: range | list[int]) -> list[Digit]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    written = []
    for index in indices:
        image = digits.images[index]
        grey = (255 - image * 255 / 16).astype(np.uint8)
        big = np.kron(grey, np.ones((DIGIT_SCALE, DIGIT_SCALE), dtype=np.uint8))
        path = f"{folder}/digit_{index:04d}.png"
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(big, mode="L").save(root / path)
        written.append(Digit(path, int(digits.target[index]), image.flatten().tolist()))
    return written


@dataclass(frozen=True)
class Shapes:
    """A PNG with coloured rectangles: each (class, [x, y, width, height]) in pixels."""

    path: str
    width: int
    height: int
    boxes: list[tuple[str, list[int]]]


def write_shapes(root: Path, folder: str, count: int, start: int = 0) -> list[Shapes]:
    """``count`` images of 120x80; every third one has no shape at all."""
    written = []
    for number in range(start, start + count):
        canvas = np.full((80, 120, 3), 245, dtype=np.uint8)
        boxes: list[tuple[str, list[int]]] = []
        if number % 3 != 2:
            boxes.append(("cat", [5 + number % 7, 10, 40, 30]))
        if number % 3 == 1:
            boxes.append(("dog", [60, 20 + number % 5, 50, 45]))
        for label, (x, y, width, height) in boxes:
            canvas[y : y + height, x : x + width] = SHAPE_COLOURS[label]
        path = f"{folder}/shapes_{number:03d}.png"
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(canvas, mode="RGB").save(root / path)
        written.append(Shapes(path, 120, 80, boxes))
    return written
