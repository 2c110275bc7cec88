"""The drift asset of each monitor: per run, or partitioned by time window with backfills.

Without ``frequency`` a monitor measures the latest target version (with a model: the data it
scored and its predictions) against the baseline, each time the target changes. With
``frequency`` it is partitioned by day, week or month of the target's timestamp column; a range
of windows (a backfill from the UI or `dg launch --partition-range`) runs in one step that
reads the baseline summary once and the target once.
"""

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd

from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.datasets.versions import (
    DatasetRegistry,
    dataset_registry,
    stores_from_resources,
)
from ingestion_project.datasets.windows import partitions_for
from ingestion_project.datastores.base import FileDatastore
from ingestion_project.drift.summaries import CATEGORICAL, BaselineSummary
from ingestion_project.monitoring.alerting import alert_drift
from ingestion_project.monitoring.drift_metadata import window_metadata, windows_table
from ingestion_project.monitoring.history import (
    load_window,
    persisted,
    recent_windows,
    report_path,
    save_window,
)
from ingestion_project.monitoring.measure import (
    WindowDrift,
    baseline_summary,
    engine_settings,
    measure_window,
)
from ingestion_project.monitoring.sources import (
    MonitorDataError,
    RowSource,
    champion_baseline,
    dataset_baseline,
    dataset_target,
    output_column,
    predictions_in_window,
    predictions_target,
)
from ingestion_project.records import DatasetVersionRecord, DriftWindowRecord
from ingestion_project.training.assets import model_registry, predictions_asset_name

RESULT_ID = "drift_result_id"


def monitor_partitions(catalog: ProjectCatalog, name: str) -> dg.TimeWindowPartitionsDefinition:
    """Day, week or month windows from the monitor's ``start`` (to ``end``), in its timezone."""
    spec = catalog.monitors[name]
    assert spec.frequency is not None and spec.start is not None
    return partitions_for(
        spec.frequency,
        spec.start.isoformat(),
        spec.end.isoformat() if spec.end else None,
        spec.timezone,
    )


@dataclass(frozen=True)
class MonitorPlan:
    """What a monitor compares, resolved from the catalog once, when definitions load."""

    name: str
    catalog: ProjectCatalog
    target_dataset: str
    model: str | None
    features: list[str] | None
    categorical: list[str]
    outputs: list[str]

    @classmethod
    def of(cls, catalog: ProjectCatalog, name: str) -> "MonitorPlan":
        monitor = catalog.monitors[name]
        model = catalog.monitor_model(name)
        owner = monitor.model or model
        categorical = list(catalog.models[owner].categorical) if owner else []
        outputs = [output_column(catalog.models[model])] if model else []
        return cls(
            name=name,
            catalog=catalog,
            target_dataset=catalog.monitor_target(name),
            model=model,
            features=catalog.monitor_features(name),
            categorical=categorical,
            outputs=outputs,
        )

    @property
    def spec(self) -> Any:
        return self.catalog.monitors[self.name]

    @property
    def stores(self) -> set[str]:
        catalog = self.catalog
        names = {catalog.datasets[self.target_dataset].datastore, catalog.registry.datastore}
        baseline = self.spec.baseline_spec
        if baseline.dataset is not None:
            names.add(catalog.datasets[baseline.dataset].datastore)
        owner = self.spec.model or self.model
        if owner is not None:
            model = catalog.models[owner]
            names.add(catalog.datasets[model.train_on].datastore)
            if model.scoring is not None:
                names.add(model.scoring.datastore)
        return names

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.spec.timezone)


class _Run:
    """Registries, stores and the champion, opened once per run."""

    def __init__(self, context: dg.AssetExecutionContext, plan: MonitorPlan) -> None:
        catalog = plan.catalog
        self.context = context
        self.plan = plan
        self.prefix = catalog.registry.prefix
        self.registry_store: FileDatastore = getattr(context.resources, catalog.registry.datastore)
        self.datasets: DatasetRegistry = dataset_registry(self.registry_store, self.prefix)
        self.stores = stores_from_resources(context.resources, plan.stores)
        self.models = model_registry(context, catalog)
        owner = plan.spec.model or plan.model
        self.champion = self.models.require_champion(owner) if owner else None
        self.pipeline = self.models.load_artifact(self.champion) if self.champion else None

    def baseline(self) -> RowSource:
        plan, catalog = self.plan, self.plan.catalog
        declared = plan.spec.baseline_spec
        scorer = None
        if plan.model is not None:
            assert self.champion is not None
            scorer = (self.pipeline, catalog.models[self.champion.model])
        if declared.is_champion:
            assert self.champion is not None, "validated: a champion baseline has a model"
            model_spec = catalog.models[self.champion.model]
            return champion_baseline(
                self.champion,
                self.pipeline,
                model_spec,
                self.datasets,
                self.stores,
                catalog.datasets[model_spec.train_on],
                with_predictions=plan.model is not None,
            )
        assert declared.dataset is not None
        if declared.version is not None:
            record = self.datasets.get(declared.dataset, declared.version)
        else:
            record = self.datasets.require_latest(declared.dataset)
        zone = plan.zone()
        window = (
            _midnight(declared.start, zone) if declared.start else None,
            _midnight(declared.end, zone) if declared.end else None,
        )
        return dataset_baseline(
            record,
            self.stores,
            catalog.datasets[declared.dataset],
            window,
            model=scorer,
            model_version=self.champion.version if self.champion and scorer else None,
        )

    def columns(self, baseline: RowSource, target_record: DatasetVersionRecord) -> list[str]:
        """The monitored input features: declared, the model's, or every shared column."""
        if self.plan.features is not None:
            return list(self.plan.features)
        timestamp = self.plan.catalog.datasets[self.plan.target_dataset].timestamp_column
        present = {column.name for column in target_record.table_schema or []}
        shared = [c for c in baseline.columns if c in present and c != timestamp]
        if not shared:
            raise MonitorDataError(
                f"the baseline ({baseline.label}) and the target ({target_record.dataset} "
                f"v{target_record.version}) share no column. List the monitor's 'features'."
            )
        return shared

    def summary(self, baseline: RowSource, inputs: list[str]) -> BaselineSummary:
        summary, reused = baseline_summary(
            baseline,
            [*inputs, *self.plan.outputs],
            self.plan.categorical,
            self.registry_store,
            self.prefix,
            self.plan.name,
        )
        self.context.log.info(
            f"Baseline {baseline.label}: summary {'reused' if reused else 'computed and kept'}."
        )
        return summary

    def record(
        self,
        window: str,
        order: str,
        drift: WindowDrift,
        baseline: RowSource,
        target: RowSource,
        earlier: Sequence[DriftWindowRecord | None],
    ) -> DriftWindowRecord:
        spec = self.plan.spec
        detected = drift.drift_share >= spec.threshold
        path = report_path(self.prefix, self.plan.name, window)
        payload = {
            "monitor": self.plan.name,
            "window": window,
            "baseline": baseline.label,
            "target": target.label,
            "run_id": self.context.run.run_id,
            "report": drift.report.to_dict(),
        }
        self.registry_store.write_bytes(path, json.dumps(payload, default=str).encode())
        record = DriftWindowRecord(
            monitor=self.plan.name,
            window=window,
            order=order,
            baseline=baseline.label,
            target=target.label,
            rows=drift.report.target_rows,
            drift_share=drift.drift_share,
            magnitude=drift.magnitude,
            detected=detected,
            alarm=persisted(detected, earlier, spec.persist),
            drifted=drift.drifted,
            prediction_drift=(
                round(drift.prediction.distance, 4) if drift.prediction is not None else None
            ),
            report=path,
            run_id=self.context.run.run_id,
        )
        save_window(self.registry_store, self.prefix, record)
        return record


def _midnight(day: Any, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def _describe(plan: MonitorPlan) -> str:
    spec = plan.spec
    watched = (
        f"the data '{plan.model}' scores and its predictions"
        if plan.model
        else f"'{plan.target_dataset}'"
    )
    per = f" per {spec.frequency}" if spec.frequency else ""
    return spec.description or (
        f"Drift of {watched}{per} against {spec.baseline_spec.describe()}; alarms when "
        f"{spec.threshold:.0%} of the features drift"
        + (f" for {spec.persist} windows in a row." if spec.persist > 1 else ".")
    )


def build_drift_asset(name: str, catalog: ProjectCatalog, code_version: str) -> dg.AssetsDefinition:
    """The monitor's asset: per target version, or per time window when it has a frequency."""
    plan = MonitorPlan.of(catalog, name)
    if plan.spec.frequency is not None:
        return _windowed_asset(plan, code_version)
    return _latest_asset(plan, code_version)


def _deps(plan: MonitorPlan) -> list[str]:
    deps = [plan.target_dataset]
    if plan.model is not None:
        deps.append(predictions_asset_name(plan.model))
    baseline = plan.spec.baseline_spec.dataset
    if baseline is not None and baseline not in deps:
        deps.append(baseline)
    return deps


def _latest_asset(plan: MonitorPlan, code_version: str) -> dg.AssetsDefinition:
    spec = plan.spec

    @dg.asset(
        name=plan.name,
        group_name="monitoring",
        deps=_deps(plan),
        description=_describe(plan),
        code_version=code_version,
        required_resource_keys=plan.stores,
        kinds={"drift"},
        tags=dict(spec.tags),
        owners=list(spec.owners),
    )
    def drift_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        run = _Run(context, plan)
        target_record = run.datasets.require_latest(plan.target_dataset)
        if plan.model is not None:
            assert run.champion is not None
            scoring = plan.catalog.models[plan.model].scoring
            assert scoring is not None
            target = predictions_target(
                run.stores[scoring.datastore], scoring.path, run.champion, target_record
            )
        else:
            target = dataset_target(
                target_record, run.stores, plan.catalog.datasets[plan.target_dataset]
            )
        baseline = run.baseline()
        inputs = run.columns(baseline, target_record)
        summary = run.summary(baseline, inputs)
        drift = measure_window(summary, target, inputs, plan.outputs, engine_settings(spec))
        if drift is None:
            raise MonitorDataError(
                f"{target.label} has no rows to compare. Check the dataset's latest version."
            )
        window = f"{target_record.dataset} v{target_record.version}"
        earlier = [
            load_window(run.registry_store, run.prefix, plan.name, f"{target_record.dataset} v{n}")
            for n in range(
                target_record.version - 1, max(0, target_record.version - spec.persist), -1
            )
        ]
        record = run.record(
            window, f"{target_record.version:09d}", drift, baseline, target, earlier
        )
        extra: dict[str, Any] = {
            RESULT_ID: target.key(baseline.identity, inputs, spec.model_dump(mode="json")),
            "recent_windows": windows_table(
                recent_windows(run.registry_store, run.prefix, plan.name)
            ),
        }
        if run.champion is not None:
            extra["model_version"] = run.champion.version
        if spec.report:
            extra["report_path"] = dg.MetadataValue.path(
                _html_report(run, baseline, target, summary, inputs, window)
            )
        _log(context, record)
        if record.alarm:
            alert_drift(context, plan.catalog, plan.name, record)
        return dg.MaterializeResult(
            metadata=window_metadata(
                record,
                drift,
                threshold=spec.threshold,
                evidence_key=f"data:{target_record.dataset}:v{target_record.version}",
                extra=extra,
            ),
            data_version=dg.DataVersion(str(extra[RESULT_ID])),
        )

    return drift_asset


def _windowed_asset(plan: MonitorPlan, code_version: str) -> dg.AssetsDefinition:
    spec = plan.spec
    partitions = monitor_partitions(plan.catalog, plan.name)

    @dg.asset(
        name=plan.name,
        group_name="monitoring",
        deps=_deps(plan),
        description=_describe(plan),
        code_version=code_version,
        required_resource_keys=plan.stores,
        kinds={"drift"},
        tags=dict(spec.tags),
        owners=list(spec.owners),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def windowed_drift_asset(context: dg.AssetExecutionContext) -> None:
        run = _Run(context, plan)
        target_record = run.datasets.require_latest(plan.target_dataset)
        baseline = run.baseline()
        inputs = run.columns(baseline, target_record)
        summary = run.summary(baseline, inputs)
        settings = engine_settings(spec)
        keys = list(context.partition_keys)
        before = _keys_before(partitions, keys[0], spec.persist - 1)
        history: list[DriftWindowRecord | None] = [
            load_window(run.registry_store, run.prefix, plan.name, key) for key in before
        ]
        windows = [partitions.time_window_for_partition_key(key) for key in keys]
        source = _window_target(run, plan, target_record, (windows[0].start, windows[-1].end))
        timestamp = plan.catalog.datasets[plan.target_dataset].timestamp_column
        rows = _rows_by_window(
            source, timestamp, [*inputs, *plan.outputs], [(w.start, w.end) for w in windows]
        )
        measured = 0
        for key, window_rows in zip(keys, rows, strict=True):
            target = RowSource(
                label=f"{source.label}, {key}",
                identity={**source.identity, "window": key},
                frames=_frames_of(window_rows),
            )
            drift = measure_window(summary, target, inputs, plan.outputs, settings)
            if drift is None:
                history.append(None)
                context.add_asset_metadata(
                    {"window": key, "rows": 0, "note": "no rows in this window"},
                    partition_key=key,
                )
                continue
            earlier = list(reversed(history[-(spec.persist - 1) :])) if spec.persist > 1 else []
            record = run.record(key, key, drift, baseline, target, earlier)
            history.append(record)
            measured += 1
            context.add_asset_metadata(
                window_metadata(
                    record,
                    drift,
                    threshold=spec.threshold,
                    evidence_key=f"window:{plan.name}:{key}",
                ),
                partition_key=key,
            )
            if record.alarm:
                alert_drift(context, plan.catalog, plan.name, record)
        context.log.info(
            f"{plan.name}: {measured} of {len(keys)} window(s) measured against {baseline.label}."
        )

    return windowed_drift_asset


def _keys_before(
    partitions: dg.TimeWindowPartitionsDefinition, first: str, count: int
) -> list[str]:
    """The ``count`` partition keys just before ``first``, oldest first."""
    keys: list[str] = []
    start = partitions.time_window_for_partition_key(first).start
    for _ in range(count):
        previous = partitions.get_prev_partition_window(start)
        if previous is None:
            break
        start = previous.start
        keys.append(start.strftime(partitions.fmt))
    return list(reversed(keys))


def _frames_of(frame: pd.DataFrame) -> Callable[[], Iterator[pd.DataFrame]]:
    def frames() -> Iterator[pd.DataFrame]:
        if len(frame):
            yield frame

    return frames


def _rows_by_window(
    source: RowSource,
    timestamp: str | None,
    columns: Sequence[str],
    windows: Sequence[tuple[datetime, datetime]],
) -> list[pd.DataFrame]:
    """The range's rows read once, then cut into its windows (in order)."""
    if timestamp is None:
        raise MonitorDataError("time windows need the target's timestamp_column; declare it.")
    wanted = list(dict.fromkeys([*columns, timestamp]))
    parts = [frame[[c for c in wanted if c in frame.columns]] for frame in source.frames()]
    if not parts:
        return [pd.DataFrame({column: [] for column in wanted}) for _ in windows]
    rows = pd.concat(parts, ignore_index=True)
    zone = windows[0][0].tzinfo
    stamps = pd.Series(pd.to_datetime(rows[timestamp], errors="coerce"), index=rows.index)
    if stamps.dt.tz is None:
        stamps = stamps.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    else:
        stamps = stamps.dt.tz_convert(zone)
    valid = stamps.notna().to_numpy()
    rows, stamps = rows.loc[valid], stamps.loc[valid]
    order = stamps.to_numpy().argsort(kind="stable")
    ordered, sorted_stamps = rows.iloc[order], stamps.iloc[order]
    edges = pd.DatetimeIndex([start for start, _ in windows] + [windows[-1][1]])
    cuts = sorted_stamps.searchsorted(edges, side="left")
    return [ordered.iloc[cuts[index] : cuts[index + 1]] for index in range(len(windows))]


def _window_target(
    run: _Run,
    plan: MonitorPlan,
    target_record: DatasetVersionRecord,
    window: tuple[datetime, datetime],
) -> RowSource:
    if plan.model is not None:
        scoring = plan.catalog.models[plan.model].scoring
        assert scoring is not None
        timestamp = plan.catalog.datasets[plan.target_dataset].timestamp_column
        return predictions_in_window(
            run.stores[scoring.datastore], scoring.path, plan.model, timestamp, window
        )
    return dataset_target(
        target_record, run.stores, plan.catalog.datasets[plan.target_dataset], window
    )


def _html_report(
    run: _Run,
    baseline: RowSource,
    target: RowSource,
    summary: BaselineSummary,
    inputs: list[str],
    window: str,
) -> str:
    """Evidently's HTML report on a bounded sample of each side, kept beside the result."""
    from ingestion_project.monitoring.drift import compute_drift
    from ingestion_project.monitoring.history import report_path as path_of

    rows = run.plan.spec.report_rows
    columns = [*inputs, *run.plan.outputs]
    sides = []
    for source in (baseline, target):
        frames, taken = [], 0
        for frame in source.frames():
            frames.append(frame[columns].head(rows - taken))
            taken += len(frames[-1])
            if taken >= rows:
                break
        sides.append(pd.concat(frames, ignore_index=True))
    categorical = [c for c in columns if summary.kind(c) == CATEGORICAL]
    _, html = compute_drift(sides[0], sides[1], columns, categorical=categorical)
    path = path_of(run.prefix, run.plan.name, window, "html")
    run.registry_store.write_bytes(path, html.encode())
    return path


def _log(context: dg.AssetExecutionContext, record: DriftWindowRecord) -> None:
    context.log.info(
        f"{record.window}: drift share {record.drift_share:.2f}, magnitude "
        f"{record.magnitude:.3f}; drifted: {', '.join(record.drifted) or 'none'}"
        + ("; ALARM" if record.alarm else "")
    )
