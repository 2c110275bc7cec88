"""What an alert says: the event, a one-line title, a few sentences and the figures behind them.

The builders take plain numbers, so the Dagster side only passes what it computed, and every
alert of a kind reads the same. They never raise on odd figures (NaN, an unknown metric): an
alert is sent from inside a run, and wording must not be what fails it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from ingestion_project.catalog.spec import HIGHER_IS_BETTER

EVENTS = ("drift", "performance_drop", "promotion")

FieldValue = str | int | float

_LISTED_FEATURES = 8
_METRIC_LABELS = {"r2": "R²", "auc": "AUC", "mae": "MAE", "rmse": "RMSE", "f1": "F1"}


@dataclass(frozen=True)
class Alert:
    """One thing worth telling people about, independent of where it is sent.

    ``fields`` is copied into a read-only mapping, so an alert cannot change after it was built.
    """

    event: str
    subject: str
    title: str
    text: str
    fields: Mapping[str, FieldValue] = field(default_factory=dict, hash=False)
    link: str | None = None

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(
                f"alert event {self.event!r} is not one of {', '.join(EVENTS)}; "
                "use one of those names."
            )
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))


def drift_alert(
    monitor: str,
    window: str,
    drift_share: float,
    threshold: float,
    drifted_features: Sequence[str],
    magnitude: float | None,
    link: str | None = None,
    *,
    feature_count: int | None = None,
) -> Alert:
    """Drift found by ``monitor`` on ``window``.

    ``magnitude`` is shown as given (e.g. how far past its threshold the worst feature is);
    ``feature_count``, when known, turns "5 features" into "5 of 6 features".
    """
    drifted = len(drifted_features)
    counted = f"{drifted} of {feature_count}" if feature_count is not None else str(drifted)
    noun = "feature" if (feature_count or drifted) == 1 else "features"
    shown = ", ".join(drifted_features[:_LISTED_FEATURES])
    if drifted > _LISTED_FEATURES:
        shown += f" and {drifted - _LISTED_FEATURES} more"
    what = (
        f"{counted} {noun} drifted in window {window} "
        f"(drift share {_figure(drift_share)}, threshold {_figure(threshold)})"
    )
    fields: dict[str, FieldValue] = {
        "window": window,
        "drift share": _rounded(drift_share),
        "threshold": _rounded(threshold),
        "drifted features": counted,
    }
    if magnitude is not None:
        fields["magnitude"] = _rounded(magnitude)
    return Alert(
        event="drift",
        subject=monitor,
        title=f"Drift on {monitor}: {counted} {noun}",
        text=(
            f"{what}{': ' + shown if shown else ''}. "
            "Look at the per-feature drift on the monitor's asset to see which columns moved and "
            "how far. If the monitor belongs to a model, its retraining policy decides whether to "
            "retrain; act yourself only if the shift is not expected, e.g. an upstream feed that "
            "changed its units or broke."
        ),
        fields=fields,
        link=link,
    )


def performance_drop_alert(
    model: str,
    model_version: int | str,
    metric: str,
    value: float,
    reference: float,
    tolerance: float,
    kind: Literal["realized", "estimated"],
    window: str,
    link: str | None = None,
) -> Alert:
    """The champion's ``kind`` metric on ``window`` fell beyond ``tolerance`` from ``reference``.

    ``reference`` is the champion's figure on the window it was promoted on.
    """
    label = _METRIC_LABELS.get(metric, metric)
    version = _version(model_version)
    higher = HIGHER_IS_BETTER.get(metric)
    if higher is None:
        moved = f"moved to {_figure(value)}"
        change = f"a change of {_figure(abs(value - reference))}"
    else:
        moved = f"{'fell' if higher else 'rose'} to {_figure(value)}"
        change = f"worse by {_figure(reference - value if higher else value - reference)}"
    if kind == "estimated":
        advice = (
            "This is an estimate from calibrated probabilities before the labels arrive, and "
            "concept drift can fool it: confirm it with the realized figure once labels land."
        )
    else:
        advice = "It is measured on labelled rows, so the model is doing worse on this window."
    return Alert(
        event="performance_drop",
        subject=model,
        title=(
            f"Performance drop on {model} {version}: {kind} {label} {_figure(value)} "
            f"(was {_figure(reference)})"
        ),
        text=(
            f"The {kind} {label} of {model} {version} {moved} in window {window}, against "
            f"{_figure(reference)} when it was promoted: {change}, beyond the tolerance of "
            f"{_figure(tolerance)}. {advice} Check the drift monitors for a cause; the retraining "
            "policy decides whether to train a challenger."
        ),
        fields={
            "model version": version,
            "window": window,
            "kind": kind,
            label: _rounded(value),
            "at promotion": _rounded(reference),
            "tolerance": _rounded(tolerance),
        },
        link=link,
    )


def promotion_alert(
    model: str,
    version: int | str,
    previous_version: int | str | None,
    metric: str,
    value: float,
    champion_value: float | None,
    decision: str,
    link: str | None = None,
) -> Alert:
    """``version`` became the champion of ``model``; ``decision`` is the gate's reason, as recorded.

    ``previous_version`` and ``champion_value`` are None for a model's first version.
    """
    label = _METRIC_LABELS.get(metric, metric)
    new = _version(version)
    if previous_version is None:
        title = f"{model} {new} promoted: the first champion"
        replaced = f"{model} {new} is the model's first champion"
    else:
        old = _version(previous_version)
        title = f"{model} {new} promoted, replacing {old}"
        replaced = f"{model} {new} is the new champion, replacing {old}"
    versus = (
        f" against the champion's {_figure(champion_value)}" if champion_value is not None else ""
    )
    fields: dict[str, FieldValue] = {"version": new, label: _rounded(value)}
    if previous_version is not None:
        fields["previous version"] = _version(previous_version)
    if champion_value is not None:
        fields[f"champion {label}"] = _rounded(champion_value)
    return Alert(
        event="promotion",
        subject=model,
        title=title,
        text=(
            f"{replaced}: {label} {_figure(value)}{versus}. The gate's decision: {decision}. "
            "Scoring uses the new version from its next run. If it misbehaves, compare the "
            "versions on the model's asset; earlier versions stay in the registry."
        ),
        fields=fields,
        link=link,
    )


def _version(version: int | str) -> str:
    return f"v{version}" if isinstance(version, int) else str(version)


def _rounded(value: float, digits: int = 4) -> float | str:
    """``digits`` significant digits for the figures list; NaN and infinities as words."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "infinite" if value > 0 else "-infinite"
    return float(f"{value:.{digits}g}")


def _figure(value: float) -> str:
    """A figure in a sentence: three significant digits read better than four."""
    rounded = _rounded(value, digits=3)
    return rounded if isinstance(rounded, str) else f"{rounded:g}"
