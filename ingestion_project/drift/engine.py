"""Drift of a target table against a baseline summary: one streamed pass, one report.

Each feature gets its method's statistic and a test of its missing rate; the p-values of all
features form one family, judged with Benjamini-Hochberg so that many columns do not mean many
false alarms. Distance methods (no p-value) drift when their effect reaches a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ingestion_project.drift import methods as stats
from ingestion_project.drift.accumulate import CategoryCounts, NumericCounts
from ingestion_project.drift.batches import TableData, record_batches
from ingestion_project.drift.fdr import benjamini_hochberg
from ingestion_project.drift.summaries import (
    CATEGORICAL,
    NUMERIC,
    BaselineSummary,
    CategoricalSummary,
    NumericSummary,
)

METHODS = ("ks", "wasserstein", "psi", "jensen_shannon", "chi_squared")
P_VALUE_METHODS = ("ks", "chi_squared")
DEFAULT_THRESHOLDS = {"wasserstein": 0.1, "psi": 0.2, "jensen_shannon": 0.1}
DEFAULT_METHODS = {NUMERIC: "ks", CATEGORICAL: "chi_squared"}
METHODS_BY_KIND = {
    NUMERIC: ("ks", "wasserstein", "psi", "jensen_shannon"),
    CATEGORICAL: ("chi_squared", "psi", "jensen_shannon"),
}
# Unseen categories listed per feature; `unseen_rate` counts them all.
UNSEEN_LISTED = 20
REPORT_FORMAT = 1


@dataclass(frozen=True)
class DriftSettings:
    """How drift is judged.

    ``alpha`` is the level of the p-value tests, the false discovery rate when ``fdr`` is on.
    ``methods`` maps a feature to a method (default: ks for numeric, chi_squared for
    categorical); ``thresholds`` maps a distance method to its threshold. With ``min_effect``
    a significant test also needs ``distance`` (or, for missing values, the change in the
    missing rate) of at least that much, so a huge sample does not flag a negligible change.
    """

    alpha: float = 0.05
    fdr: bool = True
    methods: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    min_effect: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1 (exclusive), not {self.alpha}.")
        unknown = {name: method for name, method in self.methods.items() if method not in METHODS}
        if unknown:
            raise ValueError(f"Unknown drift method(s) {unknown}; choose from {list(METHODS)}.")
        distance_methods = [method for method in METHODS if method not in P_VALUE_METHODS]
        stray = [method for method in self.thresholds if method not in distance_methods]
        if stray:
            raise ValueError(
                f"Thresholds given for {stray}; thresholds are for the distance methods "
                f"{distance_methods} (the p-value methods use alpha)."
            )
        negative = {method: value for method, value in self.thresholds.items() if not value >= 0}
        if negative:
            raise ValueError(f"Thresholds must be 0 or more, not {negative}.")
        if not 0 <= self.min_effect <= 1:
            raise ValueError(f"min_effect must be between 0 and 1, not {self.min_effect}.")

    def method(self, feature: str, kind: str) -> str:
        return self.methods.get(feature, DEFAULT_METHODS[kind])

    def threshold(self, method: str) -> float:
        return self.thresholds.get(method, DEFAULT_THRESHOLDS[method])


@dataclass(frozen=True)
class FeatureQuality:
    """Data-quality signals of one feature against the baseline.

    Rates of values (``out_of_range_rate``, ``unseen_rate``) are shares of the target's present
    values; ``target_null_rate`` counts type errors as missing.
    """

    baseline_null_rate: float
    target_null_rate: float
    null_p_value: float | None
    out_of_range_rate: float
    unseen_categories: tuple[str, ...]
    unseen_rate: float
    type_errors: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline_null_rate": self.baseline_null_rate,
            "target_null_rate": self.target_null_rate,
            "null_p_value": _plain(self.null_p_value),
            "out_of_range_rate": self.out_of_range_rate,
            "unseen_categories": list(self.unseen_categories),
            "unseen_rate": self.unseen_rate,
            "type_errors": self.type_errors,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureQuality:
        return cls(
            baseline_null_rate=float(data["baseline_null_rate"]),
            target_null_rate=float(data["target_null_rate"]),
            null_p_value=_optional(data["null_p_value"]),
            out_of_range_rate=float(data["out_of_range_rate"]),
            unseen_categories=tuple(str(text) for text in data["unseen_categories"]),
            unseen_rate=float(data["unseen_rate"]),
            type_errors=int(data["type_errors"]),
        )


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one feature, with the figures behind it.

    ``statistic`` and ``effect`` are in the method's own units; ``distance`` is on one [0, 1]
    scale for every feature (KS D for numeric, total variation for categorical), and is 0 when
    the target has no values to compare. ``reason`` says which part drifted.
    """

    feature: str
    kind: str
    method: str
    statistic: float
    p_value: float | None
    adjusted_p_value: float | None
    effect: float
    distance: float
    threshold: float
    drifted: bool
    reason: str
    contribution: float
    quality: FeatureQuality
    target_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "method": self.method,
            "statistic": _plain(self.statistic),
            "p_value": _plain(self.p_value),
            "adjusted_p_value": _plain(self.adjusted_p_value),
            "effect": _plain(self.effect),
            "distance": self.distance,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "reason": self.reason,
            "contribution": self.contribution,
            "quality": self.quality.to_dict(),
            "target_rows": self.target_rows,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureDrift:
        return cls(
            feature=str(data["feature"]),
            kind=str(data["kind"]),
            method=str(data["method"]),
            statistic=_number(data["statistic"]),
            p_value=_optional(data["p_value"]),
            adjusted_p_value=_optional(data["adjusted_p_value"]),
            effect=_number(data["effect"]),
            distance=float(data["distance"]),
            threshold=float(data["threshold"]),
            drifted=bool(data["drifted"]),
            reason=str(data["reason"]),
            contribution=float(data["contribution"]),
            quality=FeatureQuality.from_dict(data["quality"]),
            target_rows=int(data["target_rows"]),
        )


@dataclass(frozen=True)
class DriftReport:
    """Drift of every measured feature, and of the table as a whole.

    ``magnitude`` is the mean ``distance`` over features; ``drift_share`` the share drifted.
    """

    features: tuple[FeatureDrift, ...]
    baseline_rows: int
    target_rows: int
    magnitude: float
    drift_share: float
    alpha: float
    fdr: bool

    @property
    def drifted(self) -> tuple[str, ...]:
        """Names of the drifted features, in the order they were measured."""
        return tuple(feature.feature for feature in self.features if feature.drifted)

    def feature(self, name: str) -> FeatureDrift:
        for feature in self.features:
            if feature.feature == name:
                return feature
        raise KeyError(
            f"The drift report has no feature {name!r}; it has "
            f"{[feature.feature for feature in self.features]}."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (NaN becomes None), for Dagster metadata or a stored result."""
        return {
            "format": REPORT_FORMAT,
            "baseline_rows": self.baseline_rows,
            "target_rows": self.target_rows,
            "magnitude": self.magnitude,
            "drift_share": self.drift_share,
            "alpha": self.alpha,
            "fdr": self.fdr,
            "drifted": list(self.drifted),
            "features": [feature.to_dict() for feature in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        """Rebuild a report stored with ``to_dict``; ``drifted`` is derived, so ignored."""
        return cls(
            features=tuple(FeatureDrift.from_dict(item) for item in data["features"]),
            baseline_rows=int(data["baseline_rows"]),
            target_rows=int(data["target_rows"]),
            magnitude=float(data["magnitude"]),
            drift_share=float(data["drift_share"]),
            alpha=float(data["alpha"]),
            fdr=bool(data["fdr"]),
        )


def _plain(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _optional(value: float | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class _Measured:
    """One feature's figures before the family of p-values is judged."""

    feature: str
    kind: str
    method: str
    statistic: float
    p_distribution: float | None  # None for distance methods, NaN when undefined
    effect: float
    distance: float
    null_change: float
    quality: FeatureQuality
    target_rows: int


def measure_drift(
    baseline: BaselineSummary,
    target: TableData,
    settings: DriftSettings = DriftSettings(),
    *,
    features: Sequence[str] | None = None,
) -> DriftReport:
    """Measure drift of ``target`` against ``baseline``, streaming the target once.

    Memory is that of the baseline summary plus one target batch, however large the target.

    Raises:
        ValueError: A feature is not in the baseline or the target, a method does not suit a
            feature's kind, or the target has no rows.
    """
    names = list(baseline.features) if features is None else list(features)
    _check_features(baseline, names, settings)
    counters = {name: _counter(baseline, name, settings) for name in names}
    rows = 0
    for batch in record_batches(target, names, role="target"):
        rows += batch.num_rows
        for counter, array in zip(counters.values(), batch.columns, strict=True):
            counter.add(array)
    if rows == 0:
        raise ValueError("The target has no rows; drift needs data to compare with the baseline.")
    measured = [_measure(baseline, name, settings, counters[name]) for name in names]
    return _judge(measured, settings, baseline.rows, rows)


def _check_features(baseline: BaselineSummary, names: list[str], settings: DriftSettings) -> None:
    if not names:
        raise ValueError("No features to measure: pass at least one feature name.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"Features listed more than once: {repeated}. List each feature once.")
    unknown = [name for name in [*names, *settings.methods] if name not in baseline.features]
    if unknown:
        raise ValueError(
            f"Feature(s) {unknown} are not in the baseline summary, which has "
            f"{list(baseline.features)}. Summarize the baseline with them, or leave them out."
        )
    for name in names:
        kind = baseline.kind(name)
        method = settings.method(name, kind)
        if method not in METHODS_BY_KIND[kind]:
            raise ValueError(
                f"Method {method!r} does not apply to {kind} feature {name!r}; "
                f"use one of {list(METHODS_BY_KIND[kind])}."
            )


def _counter(
    baseline: BaselineSummary, name: str, settings: DriftSettings
) -> NumericCounts | CategoryCounts:
    summary = baseline.features[name]
    if isinstance(summary, NumericSummary):
        return NumericCounts(summary, sums=settings.method(name, NUMERIC) == "wasserstein")
    return CategoryCounts()


def _measure(
    baseline: BaselineSummary,
    name: str,
    settings: DriftSettings,
    counter: NumericCounts | CategoryCounts,
) -> _Measured:
    summary = baseline.features[name]
    kind = baseline.kind(name)
    method = settings.method(name, kind)
    if isinstance(summary, NumericSummary):
        assert isinstance(counter, NumericCounts)
        statistic, p_value, effect, distance = _numeric_figures(summary, counter, method)
        unseen: tuple[str, ...] = ()
        unseen_rows = 0
        out_of_range = counter.out_of_range
    else:
        assert isinstance(counter, CategoryCounts)
        statistic, p_value, effect, distance = _categorical_figures(summary, counter, method)
        new = sorted(
            (text for text in counter.counts if text not in summary.counts),
            key=lambda text: (-counter.counts[text], text),
        )
        unseen = tuple(new[:UNSEEN_LISTED])
        unseen_rows = sum(counter.counts[text] for text in new)
        out_of_range = 0
    present = counter.count
    baseline_nulls = baseline.rows - summary.count
    quality = FeatureQuality(
        baseline_null_rate=baseline_nulls / baseline.rows,
        target_null_rate=counter.missing / counter.rows,
        null_p_value=stats.null_rate_p_value(
            baseline_nulls, baseline.rows, counter.missing, counter.rows
        ),
        out_of_range_rate=out_of_range / present if present else 0.0,
        unseen_categories=unseen,
        unseen_rate=unseen_rows / present if present else 0.0,
        type_errors=counter.type_errors,
    )
    return _Measured(
        feature=name,
        kind=kind,
        method=method,
        statistic=statistic,
        p_distribution=p_value,
        effect=effect,
        distance=distance,
        null_change=abs(quality.target_null_rate - quality.baseline_null_rate),
        quality=quality,
        target_rows=counter.rows,
    )


_Figures = tuple[float, float | None, float, float]  # statistic, p-value, effect, distance


def _numeric_figures(summary: NumericSummary, counter: NumericCounts, method: str) -> _Figures:
    p_value = math.nan if method in P_VALUE_METHODS else None
    if counter.count == 0:
        return math.nan, p_value, math.nan, 0.0
    cells = counter.cells
    distance = stats.ks_statistic(summary.cdf, cells)
    if method == "ks":
        p_value = stats.ks_p_value(distance, summary.sample_size, counter.count)
        return distance, p_value, distance, distance
    if method == "wasserstein":
        assert counter.gap_sums is not None
        normalized = stats.wasserstein(summary.values, summary.cdf, cells, counter.gap_sums)
        normalized /= summary.std
        return normalized, None, normalized, distance
    shares = stats.bin_counts(summary.values, summary.bin_edges, cells) / counter.count
    value = _shares_method(method, summary.bin_shares, shares)
    return value, None, value, distance


def _categorical_figures(
    summary: CategoricalSummary, counter: CategoryCounts, method: str
) -> _Figures:
    p_value = math.nan if method in P_VALUE_METHODS else None
    categories = [*summary.counts, *(text for text in counter.counts if text not in summary.counts)]
    baseline_counts = np.array([summary.counts.get(text, 0) for text in categories], dtype=float)
    target_counts = np.array([counter.counts.get(text, 0) for text in categories], dtype=float)
    if not baseline_counts.sum() or not target_counts.sum():
        return math.nan, p_value, math.nan, 0.0
    baseline_shares = baseline_counts / baseline_counts.sum()
    target_shares = target_counts / target_counts.sum()
    distance = stats.total_variation(baseline_shares, target_shares)
    if method == "chi_squared":
        statistic, p_value, cramers_v = stats.chi_squared(baseline_counts, target_counts)
        return statistic, p_value, cramers_v, distance
    value = _shares_method(method, baseline_shares, target_shares)
    return value, None, value, distance


def _shares_method(method: str, baseline_shares: np.ndarray, target_shares: np.ndarray) -> float:
    if method == "psi":
        return stats.psi(baseline_shares, target_shares)
    return stats.jensen_shannon(baseline_shares, target_shares)


def _family_p_value(item: _Measured) -> tuple[float, int]:
    """The feature's p-value in the BH family, and the Bonferroni factor of its parts.

    A p-value method tests the distribution and the missing rate: the smaller p-value, doubled
    (Bonferroni over the two). A distance method brings the missing-rate test alone. Where
    neither side has a missing value (or both have nothing else) the missing-rate test cannot
    reject, so it is left out rather than halving the distribution test's level.
    """
    quality = item.quality
    null_p = quality.null_p_value
    constant = {quality.baseline_null_rate, quality.target_null_rate} in ({0.0}, {1.0})
    null_p = math.nan if null_p is None or constant else null_p
    if item.p_distribution is None:
        return null_p, 1
    parts = [p for p in (item.p_distribution, null_p) if not math.isnan(p)]
    if not parts:
        return math.nan, 1
    return min(1.0, len(parts) * min(parts)), len(parts)


def _judge(
    measured: list[_Measured], settings: DriftSettings, baseline_rows: int, target_rows: int
) -> DriftReport:
    family = [_family_p_value(item) for item in measured]
    p_values = np.array([p for p, _ in family])
    if settings.fdr:
        rejected, adjusted = benjamini_hochberg(p_values, settings.alpha)
        # BH's line at the last rejection: the family's p-values at or below it are rejected,
        # and a part (distribution or nulls) of a feature is significant on the same terms.
        tested = np.count_nonzero(~np.isnan(p_values))
        cutoff = float(settings.alpha * np.count_nonzero(rejected) / tested) if tested else 0.0
    else:
        adjusted = p_values
        cutoff = settings.alpha
    total_distance = sum(item.distance for item in measured)
    features = []
    for item, (p_value, factor), adjusted_p in zip(measured, family, adjusted, strict=True):

        def significant(part: float | None, factor: int = factor) -> bool:
            return part is not None and 0 < cutoff and min(1.0, factor * part) <= cutoff

        null_drift = (
            significant(item.quality.null_p_value) and item.null_change >= settings.min_effect
        )
        if item.method in P_VALUE_METHODS:
            threshold = settings.alpha
            distribution_drift = (
                significant(item.p_distribution) and item.distance >= settings.min_effect
            )
            reported_p, reported_adjusted = _plain(p_value), _plain(float(adjusted_p))
        else:
            threshold = settings.threshold(item.method)
            distribution_drift = item.effect >= threshold  # False for NaN
            reported_p = reported_adjusted = None
        reason = " and ".join(
            word
            for word, flagged in (("distribution", distribution_drift), ("nulls", null_drift))
            if flagged
        )
        features.append(
            FeatureDrift(
                feature=item.feature,
                kind=item.kind,
                method=item.method,
                statistic=item.statistic,
                p_value=reported_p,
                adjusted_p_value=reported_adjusted,
                effect=item.effect,
                distance=item.distance,
                threshold=threshold,
                drifted=bool(reason),
                reason=reason,
                contribution=item.distance / total_distance if total_distance else 0.0,
                quality=item.quality,
                target_rows=item.target_rows,
            )
        )
    return DriftReport(
        features=tuple(features),
        baseline_rows=baseline_rows,
        target_rows=target_rows,
        magnitude=total_distance / len(measured),
        drift_share=sum(feature.drifted for feature in features) / len(features),
        alpha=settings.alpha,
        fdr=settings.fdr,
    )
