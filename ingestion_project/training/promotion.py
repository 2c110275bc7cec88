"""The promotion gate: a challenger replaces the champion only if it wins, and clearly.

Both score the same newest labelled window. The challenger must beat the champion by the
declared minimum effect, and a paired test must say the win is unlikely to be chance: DeLong's
test for AUC, a paired bootstrap for every other metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ingestion_project.catalog.spec import HIGHER_IS_BETTER, ModelSpec
from ingestion_project.training.estimators import PREDICTION, PROBABILITY


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, the figures behind it, and one line that says why."""

    promote: bool
    reason: str
    method: str
    difference: float
    p_value: float


def compare(
    actual: pd.Series,
    champion: pd.DataFrame,
    challenger: pd.DataFrame,
    spec: ModelSpec,
    *,
    seed: int = 0,
) -> GateDecision:
    """Judge the challenger against the champion on the rows both scored and that have labels."""
    from ingestion_project.training.significance import (
        decide_promotion,
        delong_test,
        paired_bootstrap,
    )

    present = actual.notna() & champion[PREDICTION].notna() & challenger[PREDICTION].notna()
    y = np.asarray(actual[present], dtype=float)
    metric = spec.metric_name
    higher = HIGHER_IS_BETTER[metric]
    if metric == "auc":
        comparison = delong_test(
            y,
            champion.loc[present, PROBABILITY].to_numpy(dtype=float),
            challenger.loc[present, PROBABILITY].to_numpy(dtype=float),
        )
    else:
        column = PROBABILITY if metric in ("log_loss", "brier") else PREDICTION
        comparison = paired_bootstrap(
            y,
            champion.loc[present, column].to_numpy(dtype=float),
            challenger.loc[present, column].to_numpy(dtype=float),
            metric_function(metric),
            higher_is_better=higher,
            seed=seed,
            name=metric,
        )
    decision = decide_promotion(
        comparison, min_effect=spec.promotion.min_effect, alpha=spec.promotion.alpha
    )
    return GateDecision(
        promote=decision.promote,
        reason=decision.reason,
        method=comparison.method,
        difference=float(comparison.difference),
        p_value=float(comparison.p_value),
    )


def metric_function(metric: str) -> Callable[[Any, Any], float]:
    """A metric on (labels, predictions or probabilities), for the bootstrap.

    Metrics that are means over rows use the bootstrap's vectorised path; f1 is a plain call.
    """
    from sklearn import metrics as sk

    from ingestion_project.training import significance

    functions: dict[str, Callable[[Any, Any], float]] = {
        "r2": significance.R2,
        "mae": significance.MAE,
        "rmse": significance.RMSE,
        "log_loss": significance.LOG_LOSS,
        "brier": significance.BRIER,
        "accuracy": significance.ACCURACY,
        "f1": lambda y, p: float(sk.f1_score(y, p, zero_division=0)),  # type: ignore[arg-type]
    }
    return functions[metric]
