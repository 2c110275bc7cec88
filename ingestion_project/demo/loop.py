"""The demo: months of bike rentals arrive, drift is measured, and retraining fires by itself.

It drives the real definitions the way the daemon would: it ticks the sensors, launches the runs
they request (skipping run keys that already ran, as the daemon does) and records everything in
the Dagster instance, so `dagster dev` shows the same history afterwards.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from ingestion_project.catalog.definitions import retrain_job_name
from ingestion_project.triggers.data_change import data_change_sensor_name
from ingestion_project.triggers.drift_retrain import retrain_sensor_name

DEMO_DATA = Path(__file__).parent / "data" / "bikeshare"
HISTORY = "bikeshare/history"
INCOMING = "bikeshare/incoming"
DATASET, SCORING = "bikeshare_history", "bikeshare_scoring"
MODEL, MONITOR = "bikeshare_demand", "bikeshare_drift"
MONTH_NAMES = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
RUN_KEY_TAG = "dagster/run_key"
# The demo speaks in sentences; Dagster's step-by-step log stays in the instance for the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def demo_definitions() -> dg.Definitions:
    """The embedded demo project's definitions, loaded as Dagster loads any defs folder.

    Built from the package's own defs module, so it works from a checkout and from a wheel
    alike, whatever folder the command runs in.
    """
    import importlib

    import ingestion_project

    defs_module = importlib.import_module("ingestion_project.defs")
    root = Path(ingestion_project.__file__).resolve().parent.parent
    return dg.ComponentTree.from_module(defs_module=defs_module, project_root=root).build_defs()


@dataclass
class MonthOutcome:
    """What happened when one month arrived."""

    month: int
    scoring_version: int | None = None
    live_r2: float | None = None
    drift_share: float | None = None
    drifted: str = ""
    retrain_requested: bool = False
    model_version: int | None = None
    promoted: bool | None = None
    decision: str = ""


@dataclass
class DemoReport:
    """Everything the demo did, for its summary and for the end-to-end test."""

    months: list[MonthOutcome] = field(default_factory=list)
    runs: int = 0
    seconds: float = 0.0


class DemoRunner:
    """Ticks sensors and launches the runs they ask for, in-process, against a real instance."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs = defs
        self.instance = instance
        self.cursors: dict[str, str | None] = {}
        self.runs = 0

    def tick(self, sensor_name: str) -> list[dg.RunRequest]:
        sensor = self.defs.resolve_sensor_def(sensor_name)
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(sensor_name),
            definitions=self.defs,
            sensor_name=sensor_name,
            resources=dict(self.defs.resources or {}),
        )
        result = sensor.evaluate_tick(context)
        self.cursors[sensor_name] = result.cursor
        return [
            request
            for request in result.run_requests or []
            if not request.run_key or not self._ran(request.run_key)
        ]

    def _ran(self, run_key: str) -> bool:
        return bool(self.instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key})))

    def launch(
        self, job_name: str, request: dg.RunRequest | None = None
    ) -> dg.ExecuteInProcessResult:
        tags = dict(request.tags) if request else {}
        if request and request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
        job = self.defs.resolve_job_def(job_name)
        self.runs += 1
        return job.execute_in_process(
            instance=self.instance, tags=tags, run_config=QUIET, raise_on_error=False
        )

    def launch_for_sensor(
        self, sensor_name: str, request: dg.RunRequest
    ) -> dg.ExecuteInProcessResult:
        """A run of the assets a sensor targets, as the daemon launches it."""
        tags = {**request.tags, **({RUN_KEY_TAG: request.run_key} if request.run_key else {})}
        selection = self.defs.resolve_sensor_def(sensor_name).asset_selection
        assert selection is not None, f"{sensor_name} targets assets"
        keys = request.asset_selection or list(selection.resolve(self.defs.resolve_asset_graph()))
        self.runs += 1
        return self.defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=self.instance,
            tags=tags,
            run_config=QUIET,
            raise_on_error=False,
            asset_selection=list(keys),
        )

    def metadata(self, asset: str) -> dict[str, Any]:
        event = self.instance.get_latest_materialization_event(dg.AssetKey(asset))
        if event is None or event.asset_materialization is None:
            return {}
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def reset_demo_state(home: Path) -> None:
    """Start from an empty datastore and registry, so every demo run tells the same story."""
    for folder in ("datastores", "dagster"):
        shutil.rmtree(home / folder, ignore_errors=True)


def arrive(store_root: Path, folder: str, month: int) -> None:
    target = store_root / folder
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(DEMO_DATA / f"2011-{month:02d}.csv", target / f"2011-{month:02d}.csv")


def labels_arrive(store_root: Path, month: int) -> None:
    """Last month's actual rentals are now known: its file moves from incoming to history."""
    source = store_root / INCOMING / f"2011-{month:02d}.csv"
    (store_root / HISTORY).mkdir(parents=True, exist_ok=True)
    shutil.move(source, store_root / HISTORY / source.name)


def run_demo(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    store_root: Path,
    *,
    first_months: Sequence[int] = (1, 2, 3, 4),
    arriving: Sequence[int] = (5, 6, 7, 8, 9, 10),
    say: Callable[[str], None],
) -> DemoReport:
    started = time.monotonic()
    runner = DemoRunner(defs, instance)
    report = DemoReport()
    total = len(arriving) + 1

    say(f"[1/{total}] {_months(first_months)} 2011 land in {HISTORY}/; training the first model.")
    for month in first_months:
        arrive(store_root, HISTORY, month)
    _require(runner.launch(retrain_job_name(MODEL)))
    dataset = runner.metadata(DATASET)
    model = runner.metadata(MODEL)
    say(
        f"      {DATASET} version {dataset['version']}: {dataset['files']} files, "
        f"{dataset['dagster/row_count']:,} rows (fingerprint {str(dataset['fingerprint'])[:12]})."
    )
    say(
        f"      {MODEL} version {model['model_version']} trained on {model['trained_on']}: "
        f"R² {model['holdout_r2']} on its newest {model['holdout_rows']} rows (held out); "
        f"{model['decision']}."
    )

    previous: int | None = None
    for step, month in enumerate(arriving, start=2):
        outcome = MonthOutcome(month)
        lead = f"[{step}/{total}] {MONTH_NAMES[month - 1]} arrives in {INCOMING}/"
        if previous is not None:
            labels_arrive(store_root, previous)
            lead += f"; {MONTH_NAMES[previous - 1]}'s actuals join the history"
        arrive(store_root, INCOMING, month)
        say(lead + ".")
        sensor = data_change_sensor_name("catalog", "30s")
        for request in runner.tick(sensor):
            _require(runner.launch_for_sensor(sensor, request))
        scoring = runner.metadata(SCORING)
        predictions = runner.metadata(f"{MODEL}_predictions")
        drift = runner.metadata(MONITOR)
        outcome.scoring_version = scoring.get("version")
        outcome.live_r2 = predictions.get("live_r2")
        outcome.drift_share = drift.get("drift_share")
        outcome.drifted = str(drift.get("drifted_columns", ""))
        say(
            f"      {SCORING} version {outcome.scoring_version}; model v"
            f"{predictions.get('model_version')} scored it (R² against its actuals "
            f"{outcome.live_r2}); drift share {outcome.drift_share:.2f} against "
            f"{drift.get('baseline')} (threshold {drift.get('threshold')}), drifted: "
            f"{outcome.drifted}."
        )
        requests = runner.tick(retrain_sensor_name(MODEL))
        outcome.retrain_requested = bool(requests)
        for request in requests:
            say(f"      Drift crossed the threshold: retraining (run key {request.run_key}).")
            _require(runner.launch(retrain_job_name(MODEL), request))
            model = runner.metadata(MODEL)
            outcome.model_version = model.get("model_version")
            outcome.promoted = model.get("promoted")
            outcome.decision = str(model.get("decision", ""))
            after = runner.metadata(MONITOR)
            say(f"      {MODEL} v{outcome.model_version}: {outcome.decision}.")
            say(f"      Drift after retraining: {after.get('drift_share', 0):.2f}.")
            runner.tick(retrain_sensor_name(MODEL))
        if not requests:
            say("      Drift below the threshold: no retraining.")
        report.months.append(outcome)
        previous = month

    report.runs = runner.runs
    report.seconds = time.monotonic() - started
    return report


def _require(result: dg.ExecuteInProcessResult) -> None:
    if not result.success:
        raise RuntimeError(f"run {result.run_id} of {result.job_def.name} failed; see its logs.")


def _months(months: Sequence[int]) -> str:
    names = [MONTH_NAMES[m - 1] for m in months]
    return f"{names[0]}-{names[-1]}" if len(names) > 1 else names[0]
