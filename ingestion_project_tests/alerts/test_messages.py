from __future__ import annotations

import math

import pytest

from ingestion_project.alerts.messages import (
    Alert,
    drift_alert,
    performance_drop_alert,
    promotion_alert,
)


def test_drift_alert_names_the_features_and_what_to_do() -> None:
    alert = drift_alert(
        "bikeshare_drift",
        "2011-05",
        0.8333,
        0.5,
        ["temp", "hum", "windspeed", "hr", "season"],
        2.41234,
        "http://dagster.local/assets/bikeshare_drift",
        feature_count=6,
    )

    assert (alert.event, alert.subject) == ("drift", "bikeshare_drift")
    assert alert.title == "Drift on bikeshare_drift: 5 of 6 features"
    assert alert.text.startswith(
        "5 of 6 features drifted in window 2011-05 (drift share 0.833, threshold 0.5): "
        "temp, hum, windspeed, hr, season. "
    )
    assert "per-feature drift" in alert.text
    assert "retraining policy decides" in alert.text
    assert dict(alert.fields) == {
        "window": "2011-05",
        "drift share": 0.8333,
        "threshold": 0.5,
        "drifted features": "5 of 6",
        "magnitude": 2.412,
    }
    assert alert.link == "http://dagster.local/assets/bikeshare_drift"


def test_drift_alert_shortens_a_long_list_and_omits_an_unknown_magnitude() -> None:
    features = [f"f{number}" for number in range(12)]

    alert = drift_alert("wide", "2011-05", 1.0, 0.5, features, None)

    assert alert.title == "Drift on wide: 12 features"
    assert "f0, f1, f2, f3, f4, f5, f6, f7 and 4 more." in alert.text
    assert "f8" not in alert.text
    assert "magnitude" not in alert.fields


@pytest.mark.parametrize(
    ("metric", "value", "reference", "moved", "change"),
    [
        ("auc", 0.7123, 0.8011, "fell to 0.712", "worse by 0.0888"),
        ("rmse", 61.5, 48.25, "rose to 61.5", "worse by 13.2"),
        ("custom", 0.4, 0.5, "moved to 0.4", "a change of 0.1"),
    ],
)
def test_performance_drop_alert_says_which_way_is_worse(
    metric: str, value: float, reference: float, moved: str, change: str
) -> None:
    alert = performance_drop_alert(
        "busy_hours", 3, metric, value, reference, 0.02, "realized", "2011-05"
    )

    assert (alert.event, alert.subject) == ("performance_drop", "busy_hours")
    assert alert.title.startswith("Performance drop on busy_hours v3: realized ")
    assert moved in alert.text
    assert change in alert.text
    assert "beyond the tolerance of 0.02" in alert.text
    assert "retraining policy decides" in alert.text
    assert alert.fields["model version"] == "v3"
    assert alert.fields["at promotion"] == reference


def test_an_estimated_drop_says_to_confirm_it_with_labels() -> None:
    alert = performance_drop_alert("busy_hours", 3, "auc", 0.71, 0.80, 0.02, "estimated", "2011-05")

    assert alert.title == "Performance drop on busy_hours v3: estimated AUC 0.71 (was 0.8)"
    assert "The estimated AUC of busy_hours v3 fell to 0.71 in window 2011-05" in alert.text
    assert "confirm it with the realized figure" in alert.text
    assert alert.fields["kind"] == "estimated"


def test_promotion_alert_names_both_versions_and_the_gate() -> None:
    reason = "AUC 0.823 vs champion 0.801 (+0.022 ≥ 0.01), DeLong p=0.003 < 0.05: promote"

    alert = promotion_alert("busy_hours", 4, 3, "auc", 0.823, 0.801, reason)

    assert (alert.event, alert.subject) == ("promotion", "busy_hours")
    assert alert.title == "busy_hours v4 promoted, replacing v3"
    assert "AUC 0.823 against the champion's 0.801" in alert.text
    assert reason in alert.text
    assert dict(alert.fields) == {
        "version": "v4",
        "AUC": 0.823,
        "previous version": "v3",
        "champion AUC": 0.801,
    }


def test_promotion_alert_for_a_first_version() -> None:
    alert = promotion_alert("busy_hours", 1, None, "auc", 0.79, None, "first version of the model")

    assert alert.title == "busy_hours v1 promoted: the first champion"
    assert "first version of the model" in alert.text
    assert dict(alert.fields) == {"version": "v1", "AUC": 0.79}


def test_odd_figures_are_words_not_errors() -> None:
    alert = performance_drop_alert(
        "busy_hours", "2024-06-01", "auc", math.nan, 0.8, 0.02, "realized", "2011-05"
    )

    assert alert.fields["AUC"] == "n/a"
    assert "busy_hours 2024-06-01" in alert.title


def test_an_alert_has_a_known_event_and_fixed_fields() -> None:
    with pytest.raises(ValueError, match="not one of drift, performance_drop, promotion"):
        Alert(event="drfit", subject="m", title="t", text="x")
    fields = {"a": 1}
    alert = Alert(event="drift", subject="m", title="t", text="x", fields=fields)
    fields["a"] = 2
    assert alert.fields == {"a": 1}
    assert hash(alert) == hash(Alert(event="drift", subject="m", title="t", text="x"))
