"""The retraining policy: when the evidence of a new window is worth training a challenger.

Drift alone is not loss: a feature can move while the model stays as good. The declared policy
weighs what is known about the newest window: drift against the champion's training data, its
realized metric once labels arrived, its estimated metric before they do (classifiers), or a
schedule. The same function decides in the daemon's sensors and in backtests.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingestion_project.catalog.spec import HIGHER_IS_BETTER, RetrainPolicySpec


@dataclass(frozen=True)
class Evidence:
    """What is known about the newest window; None where it is not (yet) known.

    ``reference`` is the champion's own metric on the window it was promoted on: the level a
    drop is measured from.
    """

    drift_share: float | None = None
    drift_threshold: float | None = None
    # The monitor's own verdict (share at threshold, persisted over its windows), when it gave one.
    drift_alarm: bool | None = None
    realized: float | None = None
    estimated: float | None = None
    reference: float | None = None
    scheduled: bool = False


@dataclass(frozen=True)
class PolicyDecision:
    """Whether to train a challenger, and which triggers fired (or stayed quiet) and why."""

    retrain: bool
    reason: str
    fired: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        """The decision in a few words, for tables: "retrain (drift 0.80)" or "keep"."""
        return f"retrain ({', '.join(self.fired)})" if self.retrain else "keep"


def decide(policy: RetrainPolicySpec, metric: str, evidence: Evidence) -> PolicyDecision:
    """Retrain when any declared trigger fires; the reason names each one with its figures."""
    fired: list[str] = []
    quiet: list[str] = []
    short: list[str] = []
    if "drift" in policy.when and evidence.drift_share is not None:
        threshold = evidence.drift_threshold if evidence.drift_threshold is not None else 0.5
        text = f"drift share {evidence.drift_share:.2f} (threshold {threshold:.2f})"
        alarm = evidence.drift_share >= threshold
        if evidence.drift_alarm is not None:
            if alarm and not evidence.drift_alarm:
                text += ", not yet persistent"
            alarm = evidence.drift_alarm
        (fired if alarm else quiet).append(text)
        if alarm:
            short.append(f"drift {evidence.drift_share:.2f}")
    if "performance_drop" in policy.when and evidence.reference is not None:
        for kind, value in _performance(policy, evidence):
            drop = metric_drop(metric, evidence.reference, value)
            text = (
                f"{kind} {metric} {value:.4f} against {evidence.reference:.4f} at promotion "
                f"(drop {drop:+.4f}, tolerance {policy.tolerance:.4f})"
            )
            (fired if drop > policy.tolerance else quiet).append(text)
            if drop > policy.tolerance:
                short.append(f"{kind} drop {drop:.3f}")
    if "schedule" in policy.when and evidence.scheduled:
        fired.append(f"schedule '{policy.cron}'")
        short.append("schedule")
    if fired:
        rest = f" (quiet: {'; '.join(quiet)})" if quiet else ""
        return PolicyDecision(True, "retrain: " + "; ".join(fired) + rest, tuple(short))
    return PolicyDecision(False, "keep: " + ("; ".join(quiet) or "no trigger has evidence yet"))


def _performance(policy: RetrainPolicySpec, evidence: Evidence) -> list[tuple[str, float]]:
    known = []
    if policy.performance in ("realized", "either") and evidence.realized is not None:
        known.append(("realized", evidence.realized))
    if policy.performance in ("estimated", "either") and evidence.estimated is not None:
        known.append(("estimated", evidence.estimated))
    return known


def metric_drop(metric: str, reference: float, value: float) -> float:
    """How much worse ``value`` is than ``reference``, in the metric's units (positive = worse)."""
    return reference - value if HIGHER_IS_BETTER[metric] else value - reference
