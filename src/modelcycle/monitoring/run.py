"""A monitoring run: one window of a model version's prediction log, judged against its reference.

:func:`monitor` streams the window from the store in chunks (memory bounded by the chunk, not the
window) and keeps only summaries: the current profile (the reference's bins, merged chunk by
chunk), OOD and error counts, a latency histogram, per-period counters for the timeline, expected
confusion counts (classification) and the labelled rows' predictions and labels (for realised
metrics). Then it compares the profiles (:func:`~modelcycle.monitoring.drift.compare`), computes
realised and estimated performance against the model's test metrics, evaluates the alert rules
and returns the JSON report with its verdict.

:func:`record` saves the run and applies its findings to the alerts in one transaction, then
notifies. :func:`resolve_window` turns ``--window 1h`` / ``--last 10000`` into a :class:`Window`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from modelcycle.config.spec import MonitoringSpec, parse_duration
from modelcycle.errors import ProjectError
from modelcycle.monitoring.alerts import AlertChanges, Notifier, apply_findings, evaluate_rules
from modelcycle.monitoring.drift import compare
from modelcycle.monitoring.performance import (
    estimated_metrics,
    expected_counts,
    realised_metrics,
    relative_change,
)
from modelcycle.monitoring.profile import (
    NumericProfile,
    Profile,
    current_profile,
    histogram,
    merge,
)
from modelcycle.store.monitoring import save_run
from modelcycle.store.predictions import expand_features, window_chunks, window_span

if TYPE_CHECKING:
    from modelcycle.registry.store import LoadedModel

MONITORED_ARMS = ("stable", "canary", "blue", "green")
"""Arms a run reads: every arm that answered callers (shadow rows repeat stable's requests)."""
TIMELINE_PERIODS = 12
"""Periods of a run's timeline."""
LATENCY_EDGES = np.geomspace(0.01, 100_000.0, 401)
"""Latency histogram edges (ms): 2.3% wide bins, so quantiles are read within about 1%."""
CHUNK_ROWS = 20_000
"""Log rows read and summarised at a time: bounds a run's memory (about 120 MB)."""
DOMAIN_SAMPLE = 20_000
"""Rows of the window kept (uniformly at random) for the domain classifier."""
VANISHED_NULL_RATE = 0.99
"""A feature this often missing in the window, and mostly present in the reference, is broken."""
INVALID_SHARE = 0.5
"""A numeric feature with this share of values that are not numbers is broken."""


@dataclass(frozen=True)
class Window:
    """Which rows a run reads: a time range, or the newest ``last`` rows (up to ``until``)."""

    since: datetime | None
    until: datetime
    last: int | None
    description: str


def resolve_window(window: str | None, last: int | None, now: datetime | None = None) -> Window:
    """The window of ``--window 1h`` or ``--last 10000`` (not both), ending now.

    Raises:
        ValueError: Both or neither are given, or the duration or count is not valid.
    """
    now = now or datetime.now(UTC)
    if (window is None) == (last is None):
        raise ValueError("give either a window ('1h') or a number of newest rows, not both")
    if last is not None:
        if last < 1:
            raise ValueError(f"the newest rows must be a positive number, got {last}")
        return Window(None, now, last, f"the newest {last:,} predictions")
    assert window is not None
    seconds = parse_duration(window)
    if seconds <= 0:
        raise ValueError(f"the window {window!r} is empty; give a duration such as '1h'")
    return Window(now - timedelta(seconds=seconds), now, None, f"the last {window}")


@dataclass
class RunResult:
    """A recorded run: its id, report and what happened to the alerts."""

    run_id: int
    report: dict[str, Any]
    changes: AlertChanges


def monitor(
    engine: Engine,
    model: LoadedModel,
    policy: MonitoringSpec,
    window: Window,
    *,
    reference_frame: pd.DataFrame | None = None,
    chunk_rows: int = CHUNK_ROWS,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Judge one window of ``model``'s prediction log; returns the JSON report (not saved).

    Args:
        engine: The operational store.
        model: The loaded model version: its reference profile, schema and test metrics.
        policy: The ``[monitoring]`` section of the spec.
        window: Which rows to read.
        reference_frame: Training data for the domain classifier (used when the policy turns
            it on).
        chunk_rows: Rows read from the store at a time (bounds the memory).
        now: The run's time (tests).
    """
    try:
        reference = Profile.model_validate(model.profile)
    except ValidationError:
        raise ProjectError(
            f"{model.ref} carries no usable reference profile (it was registered without one)",
            "train it again with `modelcycle train`, or monitor a version trained by modelcycle",
        ) from None
    selection: dict[str, Any] = {
        "version": str(model.version),
        "arm": MONITORED_ARMS,
        "since": window.since,
        "until": window.until,
        "last": window.last,
    }
    with engine.connect() as conn:
        _, first, _ = window_span(conn, model.name, **selection)
        start = window.since or first or window.until
        acc = _Accumulator(model, reference, start, window, policy.domain_classifier)
        for chunk in window_chunks(conn, model.name, **selection, chunk_rows=chunk_rows):
            acc.add(chunk)
    report = acc.report(policy, reference_frame, now or datetime.now(UTC))
    evaluation = evaluate_rules(report, policy.alerts)
    report["alerts"] = [finding.as_dict() for finding in evaluation.findings]
    report["verdict"] = evaluation.verdict
    report["reasons"] = [finding.message for finding in evaluation.findings]
    report["evaluated_rules"] = sorted(evaluation.evaluated)
    return report


def record(
    engine: Engine, report: dict[str, Any], policy: MonitoringSpec, notifier: Notifier
) -> RunResult:
    """Save a report as a monitoring run, open / resolve its alerts, then notify.

    Args:
        engine: The operational store.
        report: A report from :func:`monitor`.
        policy: The ``[monitoring]`` section (the alert thresholds).
        notifier: Where alert changes go.
    """
    evaluation = evaluate_rules(report, policy.alerts)
    row = run_row(report)
    with engine.begin() as conn:
        run_id = save_run(conn, row)
        changes = apply_findings(
            conn, report["model_name"], report["model_version"], evaluation, run_id=run_id
        )
    notifier.send(changes)
    return RunResult(run_id, report, changes)


def run_row(report: dict[str, Any]) -> dict[str, Any]:
    """The ``monitoring_runs`` row of a report: its summary columns and the whole report."""
    drift = report.get("drift") or {}
    window = report["window"]
    performance = report.get("performance") or {}
    return {
        "created_at": datetime.fromisoformat(report["created_at"]),
        "model_name": report["model_name"],
        "model_version": report["model_version"],
        "window_start": _time(window.get("start")),
        "window_end": _time(window.get("end")),
        "n_rows": report["n_rows"],
        "verdict": report["verdict"],
        "dataset_drift_share": drift.get("dataset_drift_share"),
        "ood_rate": (report.get("ood") or {}).get("rate"),
        "metric": performance.get("metric"),
        "metric_value": performance.get("value"),
        "report": report,
    }


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class _Accumulator:
    """Summaries of a window, added up chunk by chunk."""

    def __init__(
        self,
        model: LoadedModel,
        reference: Profile,
        start: datetime,
        window: Window,
        sample: bool,
    ) -> None:
        self.model = model
        self.reference = reference
        self.start = start
        self.window = window
        self.width = max((window.until - start).total_seconds(), 1e-3) / TIMELINE_PERIODS
        self.period = {
            name: np.zeros(TIMELINE_PERIODS)
            for name in ("rows", "failed", "checked", "flagged", "predicted", "prediction_sum")
        }
        self.period_latency = np.zeros((TIMELINE_PERIODS, len(LATENCY_EDGES) + 1))
        self.binary = model.task == "classification" and len(model.classes or []) == 2
        self.rows = 0
        self.errors = 0
        self.ood_checked = 0
        self.ood_flagged = 0
        self.ood_reasons: dict[str, int] = {}
        self.latency = np.zeros(len(LATENCY_EDGES) + 1, dtype=np.int64)
        self.profile: Profile | None = None
        self.target: Profile | None = None
        self.labelled: list[pd.DataFrame] = []
        self.expected = np.zeros(5)
        self.sample: pd.DataFrame | None = pd.DataFrame() if sample else None
        self.rng = np.random.default_rng(0)

    def add(self, chunk: pd.DataFrame) -> None:
        """Add one chunk of :func:`~modelcycle.store.predictions.window_chunks`."""
        self.rows += len(chunk)
        failed = chunk["error"].notna().to_numpy()
        self.errors += int(failed.sum())
        latency_bins = np.searchsorted(LATENCY_EDGES, chunk["latency_ms"].to_numpy("float64"))
        self.latency += np.bincount(latency_bins, minlength=len(self.latency))
        ok = chunk[~failed]
        flags = self._ood(ok["ood"])
        self._add_periods(chunk, failed, flags, latency_bins)
        if ok.empty:
            return
        features = expand_features(ok)
        predictions = self._scores(ok)
        profile = current_profile(features, self.reference, predictions=predictions)
        self.profile = profile if self.profile is None else merge(self.profile, profile)
        labelled = ok["has_label"].to_numpy(dtype=bool)
        if labelled.any():
            keep = ok.loc[labelled, ["created_at", "prediction", "label", "probabilities"]]
            self.labelled.append(keep)
            if self.reference.target is not None:
                target = current_profile(
                    features[labelled], self.reference, target=ok.loc[labelled, "label"]
                )
                self.target = target if self.target is None else merge(self.target, target)
        if self.model.task == "classification":
            self.expected += expected_counts(ok)
        if self.sample is not None:
            self._keep_sample(features)

    def _ood(self, ood: pd.Series) -> np.ndarray:
        """Each row's OOD flag as 1.0 / 0.0, NaN without a check; counts reasons."""
        flags = np.full(len(ood), np.nan)
        for index, value in enumerate(ood.tolist()):
            if isinstance(value, dict) and isinstance(value.get("flag"), bool):
                flags[index] = float(value["flag"])
                if value["flag"]:
                    for reason in value.get("reasons") or ():
                        self.ood_reasons[reason] = self.ood_reasons.get(reason, 0) + 1
        known = ~np.isnan(flags)
        self.ood_checked += int(known.sum())
        self.ood_flagged += int(np.nansum(flags))
        return flags

    def _scores(self, ok: pd.DataFrame) -> Any:
        """The predictions as the reference profiled them (binary: positive-class probability)."""
        if self.reference.prediction is None:
            return None
        if self.model.task == "classification" and self.reference.prediction.kind == "numeric":
            positive = str((self.model.classes or [None, None])[-1])  # JSON keys are text
            return [(p or {}).get(positive) for p in ok["probabilities"].tolist()]
        return ok["prediction"].to_numpy()

    def _add_periods(
        self, chunk: pd.DataFrame, failed: np.ndarray, flags: np.ndarray, latency_bins: np.ndarray
    ) -> None:
        """Add the chunk to the timeline's per-period counters."""
        period = self._period_of(chunk["created_at"])
        answered = period[~failed]
        values = pd.to_numeric(chunk.loc[~failed, "prediction"], errors="coerce").to_numpy(
            dtype="float64"
        )
        known = np.isfinite(values)
        checked = ~np.isnan(flags)
        add = {
            "rows": (period, None),
            "failed": (period[failed], None),
            "checked": (answered[checked], None),
            "flagged": (answered[checked], flags[checked]),
            "predicted": (answered[known], None),
            "prediction_sum": (answered[known], values[known]),
        }
        for name, (where, weights) in add.items():
            self.period[name] += np.bincount(where, weights, minlength=TIMELINE_PERIODS)
        np.add.at(self.period_latency, (period, latency_bins), 1)

    def _period_of(self, times: pd.Series) -> np.ndarray:
        """Each time's period of the timeline (0 .. TIMELINE_PERIODS - 1)."""
        if times.empty:
            return np.array([], dtype=np.int64)
        seconds = (pd.to_datetime(times, utc=True) - pd.Timestamp(self.start)).dt.total_seconds()
        periods = (seconds.to_numpy() // self.width).astype(np.int64)
        return np.clip(periods, 0, TIMELINE_PERIODS - 1)

    def _keep_sample(self, features: pd.DataFrame) -> None:
        assert self.sample is not None
        keys = pd.Series(self.rng.random(len(features)), index=features.index, name="_key")
        both = pd.concat([self.sample, features.assign(_key=keys)], ignore_index=True)
        self.sample = both.nsmallest(DOMAIN_SAMPLE, "_key")

    # ----------------------------------------------------------------------------------------
    # the report

    def report(
        self, policy: MonitoringSpec, reference_frame: pd.DataFrame | None, now: datetime
    ) -> dict[str, Any]:
        model = self.model
        answered = self.rows - self.errors
        drift = None
        skipped = None
        if self.profile is not None and answered >= policy.min_rows:
            profile = self.profile
            if self.target is not None:
                profile = profile.model_copy(update={"target": self.target.target})
            drift = compare(self.reference, profile, policy.drift).as_dict()
        else:
            skipped = f"{answered:,} answered rows, fewer than min_rows = {policy.min_rows:,}"
        return {
            "model_name": model.name,
            "model_version": str(model.version),
            "arms": list(MONITORED_ARMS),
            "created_at": now.isoformat(),
            "window": {
                "start": self.start.isoformat(),
                "end": self.window.until.isoformat(),
                "last": self.window.last,
                "description": self.window.description,
            },
            "n_rows": self.rows,
            "drift": drift,
            "drift_skipped": skipped,
            "domain": self._domain(reference_frame, policy),
            "schema": self._schema(),
            "ood": {
                "rate": self.ood_flagged / self.ood_checked if self.ood_checked else None,
                "flagged": self.ood_flagged,
                "checked": self.ood_checked,
                "by_reason": dict(sorted(self.ood_reasons.items(), key=lambda item: -item[1])[:20]),
            },
            "operations": {
                "requests": self.rows,
                "errors": self.errors,
                "error_rate": self.errors / self.rows if self.rows else None,
                "p50_latency_ms": _histogram_quantile(self.latency, 0.50),
                "p99_latency_ms": _histogram_quantile(self.latency, 0.99),
            },
            "performance": self._performance(),
            "timeline": self._timeline(),
            "histograms": self._histograms(),
            "limits": {
                **policy.alerts.model_dump(),
                "dataset_drift_share": policy.drift.dataset_drift_share,
                "min_rows": policy.min_rows,
            },
        }

    def _schema(self) -> dict[str, dict[str, float]]:
        vanished: dict[str, float] = {}
        invalid: dict[str, float] = {}
        if self.profile is None:
            return {"vanished": vanished, "invalid": invalid}
        for name, current in self.profile.columns.items():
            ref = self.reference.columns[name]
            if not current.n_rows:
                continue
            if current.null_rate >= VANISHED_NULL_RATE and ref.null_rate < 0.5:
                vanished[name] = current.null_rate
            elif isinstance(current, NumericProfile):
                share = current.invalid_count / current.n_rows
                if share >= INVALID_SHARE:
                    invalid[name] = share
        return {"vanished": vanished, "invalid": invalid}

    def _labelled(self) -> pd.DataFrame:
        if not self.labelled:
            return pd.DataFrame(columns=["created_at", "prediction", "label", "probabilities"])
        return pd.concat(self.labelled, ignore_index=True)

    def _performance(self) -> dict[str, Any]:
        model = self.model
        metric = model.metric
        labelled = self._labelled()
        reference = {k: v for k, v in (model.metrics.get("model") or {}).items() if v is not None}
        realised = realised_metrics(labelled, model.task) or None
        estimated = (
            estimated_metrics(self.expected, self.binary) or None
            if model.task == "classification"
            else None
        )
        estimated_metric = next(
            (name for name in (metric, "f1", "accuracy") if estimated and name in estimated),
            None,
        )
        answered = self.rows - self.errors
        realised_value = realised.get(metric) if realised else None
        return {
            "task": model.task,
            "metric": metric,
            "higher_is_better": _higher(metric),
            "labelled": len(labelled),
            "label_coverage": len(labelled) / answered if answered else 0.0,
            "realised": _finite_dict(realised),
            "reference": _finite_dict(reference),
            "estimated": _finite_dict(estimated),
            "estimated_metric": estimated_metric,
            "value": _finite(realised_value),
            "realised_change": relative_change(metric, realised_value, reference.get(metric)),
            "estimated_change": relative_change(
                estimated_metric or metric,
                estimated.get(estimated_metric) if estimated and estimated_metric else None,
                reference.get(estimated_metric or metric),
            ),
        }

    def _timeline(self) -> list[dict[str, Any]]:
        labelled = self._labelled()
        labelled_period = self._period_of(labelled["created_at"])
        origin = pd.Timestamp(self.start)
        counts = self.period
        out = []
        for index in range(TIMELINE_PERIODS):
            marked = labelled[labelled_period == index]
            realised = realised_metrics(marked, self.model.task) if len(marked) else {}
            rows = counts["rows"][index]
            out.append(
                {
                    "start": (origin + pd.Timedelta(seconds=index * self.width)).isoformat(),
                    "end": (origin + pd.Timedelta(seconds=(index + 1) * self.width)).isoformat(),
                    "rows": int(rows),
                    "ood_rate": _ratio(counts["flagged"][index], counts["checked"][index]),
                    "error_rate": _ratio(counts["failed"][index], rows),
                    "p99_latency_ms": _histogram_quantile(self.period_latency[index], 0.99),
                    "labelled": len(marked),
                    "metric": _finite(realised.get(self.model.metric)),
                    "mean_prediction": _ratio(
                        counts["prediction_sum"][index], counts["predicted"][index]
                    ),
                }
            )
        return out

    def _histograms(self) -> dict[str, Any]:
        if self.profile is None:
            return {"features": {}, "prediction": None, "target": None}
        ref, cur = self.reference, self.profile
        return {
            "features": {
                name: histogram(ref.columns[name], column) for name, column in cur.columns.items()
            },
            "prediction": histogram(ref.prediction, cur.prediction)
            if ref.prediction is not None and cur.prediction is not None
            else None,
            "target": histogram(ref.target, self.target.target)
            if ref.target is not None and self.target is not None and self.target.target
            else None,
        }

    def _domain(
        self, reference_frame: pd.DataFrame | None, policy: MonitoringSpec
    ) -> dict[str, Any] | None:
        if not policy.domain_classifier or reference_frame is None or self.sample is None:
            return None
        from modelcycle.monitoring.domain import domain_drift

        current = self.sample.drop(columns="_key", errors="ignore")
        if len(current) < policy.min_rows:
            return None
        result = domain_drift(reference_frame, current, self.model.schema)
        return result.as_dict()


def _histogram_quantile(counts: np.ndarray, q: float) -> float | None:
    total = int(counts.sum())
    if total == 0:
        return None
    index = int(np.searchsorted(np.cumsum(counts), q * total, side="left"))
    edges = np.concatenate([[0.0], LATENCY_EDGES, [LATENCY_EDGES[-1]]])
    return float(round(math.sqrt(max(edges[index], 1e-3) * edges[index + 1]), 3))


def _ratio(part: float, whole: float) -> float | None:
    return float(part / whole) if whole else None


def _higher(metric: str) -> bool:
    from modelcycle.metrics import higher_is_better

    return higher_is_better(metric)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _finite_dict(values: dict[str, float] | None) -> dict[str, float] | None:
    if values is None:
        return None
    return {name: v for name, value in values.items() if (v := _finite(value)) is not None}
