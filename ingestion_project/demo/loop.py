"""The demo: months of bike rentals arrive, and two models look after themselves.

Drift, estimated and realized performance are measured, and the declared policies retrain a
regressor of demand and a classifier of busy hours, promoting a challenger only when the gate
says it wins.

It drives the real definitions the way the daemon would: it ticks the sensors, launches the runs
they request (skipping run keys that already ran, as the daemon does) and records everything in
the Dagster instance, so `dagster dev` shows the same history afterwards.
"""

from __future__ import annotations

import calendar
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from ingestion_project.catalog.definitions import refresh_job_name, retrain_job_name
from ingestion_project.triggers.data_change import data_change_sensor_name
from ingestion_project.triggers.drift_retrain import retrain_sensor_name

if TYPE_CHECKING:
    from ingestion_project.training.backtest import BacktestResult

DEMO_DATA = Path(__file__).parent / "data" / "bikeshare"
HISTORY = "bikeshare/history"
INCOMING = "bikeshare/incoming"
DATASET, SCORING = "bikeshare_history", "bikeshare_scoring"
MODEL, MONITOR = "bikeshare_demand", "bikeshare_drift"
CLASSIFIER, CLASSIFIER_MONITOR = "busy_hours", "busy_hours_drift"
DAILY_MONITOR = "weather_daily"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
MONTH_NAMES = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
RUN_KEY_TAG = "dagster/run_key"
# The demo speaks in sentences; Dagster's step-by-step log stays in the instance for the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def demo_definitions() -> dg.Definitions:
    """The embedded demo project's definitions, loaded as Dagster loads any defs folder.

    Built from the package's own defs module, so it works from a checkout and from a wheel
    alike, whatever folder the command runs in.
    """
    return _demo_tree().build_defs()


def demo_catalog() -> Any:
    """The demo project's catalog (every catalog of its defs folder, as one project)."""
    from ingestion_project.components.catalog import Catalog, shared_project

    return shared_project(_demo_tree().get_all_components(Catalog))


def _demo_tree() -> dg.ComponentTree:
    import importlib

    import ingestion_project

    defs_module = importlib.import_module("ingestion_project.defs")
    root = Path(ingestion_project.__file__).resolve().parent.parent
    return dg.ComponentTree.from_module(defs_module=defs_module, project_root=root)


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
    estimated_auc: float | None = None
    realized_auc: float | None = None
    classifier_version: int | None = None
    classifier_decisions: list[str] = field(default_factory=list)
    # Requests a retraining sensor made after its own retraining run: the policy must make none.
    repeated_requests: int = 0


@dataclass
class DemoReport:
    """Everything the demo did, for its summary and for the end-to-end test."""

    months: list[MonthOutcome] = field(default_factory=list)
    runs: int = 0
    seconds: float = 0.0
    backtest: list[str] = field(default_factory=list)
    backfill: list[str] = field(default_factory=list)


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
        self,
        job_name: str,
        request: dg.RunRequest | None = None,
        tags: dict[str, str] | None = None,
    ) -> dg.ExecuteInProcessResult:
        tags = {**(dict(request.tags) if request else {}), **(tags or {})}
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
    total = len(arriving) + 3

    say(f"[1/{total}] {_months(first_months)} 2011 land in {HISTORY}/; training the first models.")
    for month in first_months:
        arrive(store_root, HISTORY, month)
    _require(runner.launch(retrain_job_name(MODEL)))
    _require(runner.launch(retrain_job_name(CLASSIFIER)))
    dataset = runner.metadata(DATASET)
    model = runner.metadata(MODEL)
    classifier = runner.metadata(CLASSIFIER)
    say(
        f"      {DATASET} version {dataset['version']}: {dataset['files']} files, "
        f"{dataset['dagster/row_count']:,} rows (fingerprint {str(dataset['fingerprint'])[:12]})."
    )
    say(
        f"      {MODEL} version {model['model_version']} trained on {model['trained_on']}: "
        f"R² {model['holdout_r2']} on its newest {model['holdout_rows']} rows (held out); "
        f"{model['decision']}."
    )
    say(
        f"      {CLASSIFIER} version {classifier['model_version']} (busy hour: more than 300 "
        f"rentals): AUC {classifier['holdout_auc']} on its newest {classifier['holdout_rows']} "
        "rows (held out)."
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
        if previous is not None:
            # The history's nightly schedule: a new version, and the realized performance of
            # the month whose labels just arrived.
            _require(runner.launch(refresh_job_name(DATASET)))
            performance = runner.metadata(f"{CLASSIFIER}_performance")
            outcome.realized_auc = performance.get("realized_auc")
            if outcome.realized_auc is not None:
                say(
                    f"      {CLASSIFIER}: realized AUC on {MONTH_NAMES[previous - 1]} "
                    f"{outcome.realized_auc:.3f} (model v{performance.get('model_version')}; "
                    f"estimated {performance.get('estimated_auc', float('nan')):.3f} before "
                    "the labels arrived)."
                )
        sensor = data_change_sensor_name("catalog", "30s")
        for request in runner.tick(sensor):
            _require(runner.launch_for_sensor(sensor, request))
        scoring = runner.metadata(SCORING)
        predictions = runner.metadata(f"{MODEL}_predictions")
        drift = runner.metadata(MONITOR)
        scored = runner.metadata(f"{CLASSIFIER}_predictions")
        outcome.scoring_version = scoring.get("version")
        outcome.live_r2 = predictions.get("live_r2")
        outcome.drift_share = drift.get("drift_share")
        outcome.drifted = str(drift.get("drifted_columns", ""))
        outcome.estimated_auc = scored.get("estimated_auc")
        say(
            f"      {SCORING} version {outcome.scoring_version}; {MODEL} v"
            f"{predictions.get('model_version')} scored it (R² against its actuals "
            f"{outcome.live_r2}); drift share {outcome.drift_share:.2f} against "
            f"{drift.get('baseline')} (threshold {drift.get('threshold')}), drifted: "
            f"{outcome.drifted}."
        )
        if outcome.estimated_auc is not None:
            say(
                f"      {CLASSIFIER} v{scored.get('model_version')} scored it: estimated AUC "
                f"{outcome.estimated_auc:.3f} from its calibrated probabilities (no labels yet)."
            )
        _retrain(runner, MODEL, MONITOR, outcome, say)
        _retrain(runner, CLASSIFIER, CLASSIFIER_MONITOR, outcome, say)
        report.months.append(outcome)
        previous = month

    # The last arriving month's actuals have not joined the history yet.
    last_month = previous - 1 if previous else first_months[-1]
    say(
        f"[{total - 1}/{total}] Backfill of {DAILY_MONITOR}: every day of the history, "
        f"January to {calendar.month_name[last_month]}, against January, in one run."
    )
    report.backfill = _backfill(runner, last_month)
    for line in report.backfill:
        say(f"      {line}")
    say(
        f"[{total}/{total}] Backtest of {CLASSIFIER}: its declared policy replayed month by month "
        f"over the history, beside never and always retraining."
    )
    backtest = _backtest(store_root)
    report.backtest = backtest.lines()
    for line in report.backtest:
        say(f"      {line}")
    if backtest.mean("realized") < backtest.mean("always"):
        say(
            "      Where it trails always retraining: the gate can only prove a challenger better "
            "on a labelled month the champion has not learnt from, so a promotion comes a month "
            "after the data that justifies it, and in a year of growth the newest model is "
            "nearly always the best."
        )
    report.runs = runner.runs
    report.seconds = time.monotonic() - started
    return report


def _backfill(runner: DemoRunner, last_month: int) -> list[str]:
    """Backfill the daily monitor over the history's days, as a UI or CLI backfill does."""
    from ingestion_project.catalog.definitions import monitor_job_name

    last_day = f"2011-{last_month:02d}-{calendar.monthrange(2011, last_month)[1]:02d}"
    started = time.monotonic()
    _require(
        runner.launch(
            monitor_job_name(DAILY_MONITOR),
            tags={RANGE_START_TAG: "2011-01-01", RANGE_END_TAG: last_day},
        )
    )
    seconds = time.monotonic() - started
    records = runner.instance.fetch_materializations(dg.AssetKey(DAILY_MONITOR), limit=400).records
    windows = {}
    for record in records:
        event = record.asset_materialization
        if event is None or record.partition_key is None:
            continue
        windows[record.partition_key] = {k: v.value for k, v in event.metadata.items()}
    measured = sorted(key for key, meta in windows.items() if meta.get("rows"))
    alarms = [key for key in measured if windows[key].get("drift_alarm")]
    months: dict[str, list[float]] = {}
    for key in measured:
        months.setdefault(key[:7], []).append(float(windows[key]["drift_magnitude"]))
    by_month = ", ".join(
        f"{MONTH_NAMES[int(month[5:]) - 1]} {sum(values) / len(values):.2f}"
        for month, values in sorted(months.items())
    )
    first = f"; the first alarm on {alarms[0]}" if alarms else ""
    return [
        f"{len(measured)} daily windows measured in {seconds:.1f} s; {len(alarms)} raised an "
        f"alarm (half the features drifted three days in a row){first}.",
        f"Mean drift magnitude by month: {by_month}.",
        "In the web UI, the weather_daily asset plots drift_magnitude and drift_share per day.",
    ]


def _retrain(
    runner: DemoRunner,
    model_name: str,
    monitor: str,
    outcome: MonthOutcome,
    say: Callable[[str], None],
) -> None:
    """Tick the model's retraining sensor and run what it asks for, as the daemon would."""
    requests = runner.tick(retrain_sensor_name(model_name))
    if model_name == MODEL:
        outcome.retrain_requested = bool(requests)
    for request in requests:
        reason = request.tags.get("ingestion/reason", "")
        say(f"      {model_name}: {reason} (run key {request.run_key}).")
        _require(runner.launch(retrain_job_name(model_name), request))
        model = runner.metadata(model_name)
        decision = str(model.get("decision", ""))
        say(f"      {model_name} v{model.get('model_version')}: {decision}.")
        if model_name == MODEL:
            outcome.model_version = model.get("model_version")
            outcome.promoted = model.get("promoted")
            outcome.decision = decision
            after = runner.metadata(monitor)
            say(f"      Drift after retraining: {after.get('drift_share', 0):.2f}.")
        else:
            outcome.classifier_version = model.get("model_version")
            outcome.classifier_decisions.append(decision)
    if not requests:
        say(f"      {model_name}: the policy keeps the champion.")
    # The retraining run re-scored and re-checked the same month: the policy must not ask again.
    again = runner.tick(retrain_sensor_name(model_name))
    outcome.repeated_requests += len(again)
    for request in again:
        say(f"      {model_name}: asked again for the same data (run key {request.run_key}).")


def _backtest(store_root: Path) -> BacktestResult:
    """Replay the classifier's policy over the latest history with the project's own specs."""
    from ingestion_project.datasets.versions import dataset_registry, load_version
    from ingestion_project.datastores.local import LocalDatastore
    from ingestion_project.training.backtest import backtest_model

    store = LocalDatastore(name="workspace_default", root=str(store_root))
    record = dataset_registry(store, "_registry").latest(DATASET)
    assert record is not None
    catalog = demo_catalog()
    frame = load_version(record, {"workspace_default": store}, catalog.datasets[DATASET])
    return backtest_model(catalog, CLASSIFIER, frame, warmup=4)


def _require(result: dg.ExecuteInProcessResult) -> None:
    if not result.success:
        raise RuntimeError(f"run {result.run_id} of {result.job_def.name} failed; see its logs.")


def _months(months: Sequence[int]) -> str:
    names = [MONTH_NAMES[m - 1] for m in months]
    return f"{names[0]}-{names[-1]}" if len(names) > 1 else names[0]
