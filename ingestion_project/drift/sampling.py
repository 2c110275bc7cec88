"""A uniform random sample of bounded size from values that arrive in batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class BoundedSample:
    """At most ``capacity`` values, each value of the stream equally likely to be kept.

    Every present value gets a random key and the ``capacity`` smallest keys are kept, so memory
    is bounded. Keys are drawn in value order from one generator, so the sample is the same
    however the stream is cut into batches; and every value is kept while there are at most
    ``capacity`` of them.
    """

    def __init__(self, capacity: int, seed: int | Sequence[int]) -> None:
        if capacity < 1:
            raise ValueError(f"The sample size must be at least 1, not {capacity}.")
        self.capacity = capacity
        self._rng = np.random.default_rng(seed)
        self._values = np.empty(0, dtype=np.float64)
        self._keys = np.empty(0, dtype=np.float64)
        self._largest_key = np.inf

    @property
    def values(self) -> np.ndarray:
        """The sampled values, in no particular order."""
        return self._values

    def add(self, values: np.ndarray) -> None:
        """Offer the present (non-NaN) values of one batch."""
        keys = self._rng.random(len(values))
        if len(self._keys) >= self.capacity:
            wanted = keys < self._largest_key
            keys, values = keys[wanted], values[wanted]
        if not len(keys):
            return
        keys = np.concatenate([self._keys, keys])
        values = np.concatenate([self._values, values])
        if len(keys) > self.capacity:
            kept = np.argpartition(keys, self.capacity - 1)[: self.capacity]
            keys, values = keys[kept], values[kept]
        self._keys, self._values = keys, values
        if len(keys) >= self.capacity:
            self._largest_key = float(keys.max())
