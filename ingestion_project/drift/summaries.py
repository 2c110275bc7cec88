"""What drift needs to remember of a baseline: per feature, a bounded ECDF or category counts.

A summary is built once, in one streamed pass over the baseline, and stored as bytes; the
baseline itself is not needed again. Numeric columns keep the ECDF of a uniform random sample
of at most ``sample_size`` values (all of them when there are fewer), exact counts and moments,
and baseline-quantile bins; categorical columns keep exact counts per category.
"""

from __future__ import annotations

import io
import json
import math
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa

from ingestion_project.drift.batches import TableData, record_batches
from ingestion_project.drift.columns import (
    category_counts,
    category_texts,
    is_numeric_type,
    is_text_type,
    numeric_values,
)
from ingestion_project.drift.sampling import BoundedSample

NUMERIC = "numeric"
CATEGORICAL = "categorical"

# Bumped when the bytes of `BaselineSummary.to_bytes` change shape.
SUMMARY_FORMAT = 1
_ARRAYS = ("values", "cdf", "bin_edges", "bin_shares")


@dataclass(frozen=True)
class NumericSummary:
    """One numeric baseline column: the ECDF of a bounded sample, exact counts and moments.

    ``values`` are the sorted distinct values of the sample and ``cdf`` its ECDF at them;
    ``bin_edges`` are sample values, so bins aggregate exactly from counts against ``values``.
    """

    values: np.ndarray
    cdf: np.ndarray
    count: int
    sample_size: int
    nulls: int
    minimum: float
    maximum: float
    mean: float
    std: float
    bin_edges: np.ndarray
    bin_shares: np.ndarray

    @property
    def sample_counts(self) -> np.ndarray:
        """Sample rows at each of ``values`` (int64), recovered exactly from the ECDF."""
        cumulative = np.rint(self.cdf * self.sample_size).astype(np.int64)
        return np.diff(cumulative, prepend=0)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumericSummary):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, name), getattr(other, name))
            if name in _ARRAYS
            else getattr(self, name) == getattr(other, name)
            for name in (field.name for field in fields(self))
        )


@dataclass(frozen=True)
class CategoricalSummary:
    """One categorical baseline column: rows per category (as text), exactly."""

    counts: dict[str, int]
    nulls: int
    count: int


@dataclass(frozen=True)
class BaselineSummary:
    """Every summarized feature of a baseline, and its number of rows."""

    features: dict[str, NumericSummary | CategoricalSummary]
    rows: int

    def kind(self, feature: str) -> str:
        """``NUMERIC`` or ``CATEGORICAL``."""
        summary = self.features.get(feature)
        if summary is None:
            raise KeyError(
                f"The baseline summary has no feature {feature!r}; it has {list(self.features)}."
            )
        return NUMERIC if isinstance(summary, NumericSummary) else CATEGORICAL

    def to_bytes(self) -> bytes:
        """An ``.npz`` archive: a JSON header and the numeric arrays, readable without pickle."""
        header: dict[str, Any] = {"format": SUMMARY_FORMAT, "rows": self.rows, "features": []}
        arrays: dict[str, Any] = {}
        for index, (name, summary) in enumerate(self.features.items()):
            entry: dict[str, Any] = {"name": name}
            if isinstance(summary, NumericSummary):
                entry["kind"] = NUMERIC
                for field in fields(summary):
                    value = getattr(summary, field.name)
                    if field.name in _ARRAYS:
                        arrays[f"{index}.{field.name}"] = value
                    else:
                        entry[field.name] = value
            else:
                entry.update(
                    kind=CATEGORICAL,
                    counts=summary.counts,
                    nulls=summary.nulls,
                    count=summary.count,
                )
            header["features"].append(entry)
        text = json.dumps(header).encode()
        buffer = io.BytesIO()
        np.savez(buffer, header=np.frombuffer(text, dtype=np.uint8), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> BaselineSummary:
        """Read a summary written by ``to_bytes``."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                header = json.loads(archive["header"].tobytes())
                arrays = {name: archive[name] for name in archive.files if name != "header"}
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"These bytes are not a drift baseline summary ({error}).") from error
        if header.get("format") != SUMMARY_FORMAT:
            raise ValueError(
                f"This baseline summary has format {header.get('format')!r}; this version "
                f"reads format {SUMMARY_FORMAT}. Summarize the baseline again."
            )
        features: dict[str, NumericSummary | CategoricalSummary] = {}
        for index, entry in enumerate(header["features"]):
            if entry["kind"] == NUMERIC:
                scalars = {
                    key: value for key, value in entry.items() if key not in ("name", "kind")
                }
                features[entry["name"]] = NumericSummary(
                    **scalars, **{name: arrays[f"{index}.{name}"] for name in _ARRAYS}
                )
            else:
                features[entry["name"]] = CategoricalSummary(
                    counts={str(key): int(rows) for key, rows in entry["counts"].items()},
                    nulls=int(entry["nulls"]),
                    count=int(entry["count"]),
                )
        return cls(features=features, rows=int(header["rows"]))


def summarize(
    data: TableData,
    columns: Sequence[str],
    *,
    categorical: Collection[str] = (),
    sample_size: int = 100_000,
    bins: int = 10,
    seed: int = 0,
) -> BaselineSummary:
    """Summarize ``columns`` of a baseline in one streamed pass.

    A column is categorical when listed in ``categorical``, when its type is text, boolean or
    dictionary (a pandas ``object`` column reads as text), or when it is numeric with at most two
    distinct values (a flag); otherwise it is numeric. The sample of a numeric column is
    deterministic for ``seed`` and the column's name, whatever the batch sizes.
    """
    if not columns:
        raise ValueError("No columns to summarize: pass at least one column name.")
    repeated = sorted({name for name in columns if list(columns).count(name) > 1})
    if repeated:
        raise ValueError(f"Columns listed more than once: {repeated}. List each column once.")
    stray = sorted(set(categorical) - set(columns))
    if stray:
        raise ValueError(f"Categorical columns {stray} are not in `columns` {list(columns)}.")
    if bins < 2:
        raise ValueError(f"`bins` must be at least 2, not {bins}.")
    builders = [
        _ColumnSummary(name, name in categorical, sample_size, [seed, zlib.crc32(name.encode())])
        for name in columns
    ]
    rows = 0
    for batch in record_batches(data, columns, role="baseline"):
        rows += batch.num_rows
        for builder, array in zip(builders, batch.columns, strict=True):
            builder.add(array)
    if rows == 0:
        raise ValueError("The baseline has no rows; a drift baseline needs data.")
    return BaselineSummary(
        features={builder.name: builder.summary(bins) for builder in builders}, rows=rows
    )


class _ColumnSummary:
    """One baseline column as it streams by; its kind is settled by the first typed batch."""

    def __init__(self, name: str, categorical: bool, sample_size: int, seed: list[int]) -> None:
        self.name = name
        self.kind: str | None = CATEGORICAL if categorical else None
        self.type: pa.DataType | None = None
        self.nulls = 0
        self.counts: dict[str, int] = {}
        self.sample = BoundedSample(sample_size, seed)
        self.count = 0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.mean = 0.0
        self.squares = 0.0  # sum of squared deviations from the mean
        self.flag: dict[float, int] | None = {}  # counts while at most two distinct values

    def add(self, array: pa.Array) -> None:
        if self.kind is None and not pa.types.is_null(array.type):
            self.kind = self._kind_of(array.type)
        if self.kind == NUMERIC and not pa.types.is_null(array.type):
            if not is_numeric_type(array.type):
                raise ValueError(
                    f"Baseline column {self.name!r} changes type from {self.type} to "
                    f"{array.type} between batches; give it one type, or list it in "
                    "`categorical`."
                )
            self._add_numbers(numeric_values(array)[0])
        elif self.kind == NUMERIC or self.kind is None:
            self.nulls += len(array)
        else:
            counts, missing = category_counts(array)
            self.nulls += missing
            for text, rows in counts.items():
                self.counts[text] = self.counts.get(text, 0) + rows

    def _kind_of(self, kind: pa.DataType) -> str:
        self.type = kind
        if is_text_type(kind):
            return CATEGORICAL
        if is_numeric_type(kind):
            return NUMERIC
        raise ValueError(
            f"Baseline column {self.name!r} has type {kind}, neither numeric nor text; list it "
            "in `categorical` to compare its values as categories, or leave it out."
        )

    def _add_numbers(self, numbers: np.ndarray) -> None:
        missing = np.isnan(numbers)
        absent = int(np.count_nonzero(missing))
        self.nulls += absent
        present = numbers[~missing] if absent else numbers
        if not len(present):
            return
        self.sample.add(present)
        low, high = float(present.min()), float(present.max())
        size = len(present)
        batch_mean = float(present.mean())
        batch_squares = float(np.square(present - batch_mean).sum())
        total = self.count + size
        delta = batch_mean - self.mean
        self.mean += delta * size / total
        self.squares += batch_squares + delta * delta * self.count * size / total
        self.count = total
        self.minimum, self.maximum = min(self.minimum, low), max(self.maximum, high)
        if self.flag is not None:
            self._track_flag(present, low, high)

    def _track_flag(self, present: np.ndarray, low: float, high: float) -> None:
        if low == high:
            seen = {low: len(present)}
        else:
            at_low = int(np.count_nonzero(present == low))
            at_high = int(np.count_nonzero(present == high))
            if at_low + at_high != len(present):
                self.flag = None
                return
            seen = {low: at_low, high: at_high}
        flag = self.flag if self.flag is not None else {}
        for value, rows in seen.items():
            flag[value] = flag.get(value, 0) + rows
        self.flag = flag if len(flag) <= 2 else None

    def summary(self, bins: int) -> NumericSummary | CategoricalSummary:
        if self.kind == NUMERIC and self.flag is None:
            return self._numeric_summary(bins)
        counts = self.counts
        if self.kind == NUMERIC and self.flag:
            distinct = sorted(self.flag)
            texts = category_texts(pa.array(distinct, type=pa.float64()))
            counts = {
                str(text): self.flag[value] for text, value in zip(texts, distinct, strict=True)
            }
        return CategoricalSummary(counts=counts, nulls=self.nulls, count=sum(counts.values()))

    def _numeric_summary(self, bins: int) -> NumericSummary:
        values, rows = np.unique(self.sample.values, return_counts=True)
        size = int(rows.sum())
        cdf = np.cumsum(rows) / size
        cdf[-1] = 1.0
        edges, shares = quantile_bins(values, cdf, bins)
        return NumericSummary(
            values=values.astype(np.float64),
            cdf=cdf,
            count=self.count,
            sample_size=size,
            nulls=self.nulls,
            minimum=self.minimum,
            maximum=self.maximum,
            mean=self.mean,
            std=math.sqrt(self.squares / self.count),
            bin_edges=edges,
            bin_shares=shares,
        )


def quantile_bins(values: np.ndarray, cdf: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner edges at the sample's ``bins``-quantiles (sample values) and the share per bin.

    Bins are right-closed: ``(-inf, e0], (e0, e1], ..., (e_last, inf)``. Repeated quantiles
    (ties) merge, and no edge sits on the maximum, so no baseline bin is empty.
    """
    wanted = np.arange(1, bins) / bins
    index = np.minimum(np.searchsorted(cdf, wanted - 1e-12, side="left"), len(values) - 1)
    edges = np.unique(values[index])
    edges = edges[edges < values[-1]]
    below = cdf[np.searchsorted(values, edges)]
    shares = np.diff(np.concatenate([[0.0], below, [1.0]]))
    return edges, shares
