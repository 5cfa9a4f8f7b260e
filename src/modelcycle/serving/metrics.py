"""Prometheus metrics of a model server, in a registry of its own (one per app).

Requests by route, status, model, version and arm; latency histograms; a histogram of predicted
values (buckets from the training target's quantiles, or probabilities for classifiers); and
the prediction log's queue depth, spooled and dropped records, read when scraped; and the
monitoring state from the store (open alerts by rule and severity, the latest run's verdict,
drift share, OOD rate and realised metric), read at most every :data:`MONITORING_TTL` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelcycle.store.writer import LogStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PROBABILITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class _LogCollector(Collector):
    """Reads the prediction log's counters at scrape time."""

    def __init__(self, stats: Callable[[], LogStats | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        if stats is None:
            return
        yield GaugeMetricFamily(
            "modelcycle_log_queue_depth",
            "Prediction records in memory waiting for the database.",
            value=stats.queue_depth,
        )
        yield GaugeMetricFamily(
            "modelcycle_log_spooled_records",
            "Prediction records in the local spool not yet in the database.",
            value=stats.spooled,
        )
        yield CounterMetricFamily(
            "modelcycle_log_written_records",
            "Prediction records committed to the database.",
            value=stats.written,
        )
        yield CounterMetricFamily(
            "modelcycle_log_dropped_records",
            "Prediction records lost (could be neither spooled nor queued).",
            value=stats.dropped,
        )
        yield GaugeMetricFamily(
            "modelcycle_log_database_up",
            "1 if the last write to the operational database succeeded.",
            value=1 if stats.database_ok else 0,
        )


MONITORING_TTL = 10.0
"""Seconds a monitoring snapshot read from the store is reused across scrapes."""
VERDICT_LEVEL = {"healthy": 0, "degraded": 1, "failing": 2}


class _MonitoringCollector(Collector):
    """Alerts and the latest monitoring run, read from the store at scrape time (cached)."""

    def __init__(self, snapshot: Callable[[], dict[str, Any] | None]) -> None:
        self._snapshot = snapshot
        self._cached: tuple[float, dict[str, Any] | None] = (0.0, None)

    def _read(self) -> dict[str, Any] | None:
        taken, value = self._cached
        if time.monotonic() - taken > MONITORING_TTL:
            try:
                value = self._snapshot()
            except Exception:  # the store is away: scrape what the server itself knows
                value = None
            self._cached = (time.monotonic(), value)
        return value

    def collect(self) -> Iterator[Metric]:
        snapshot = self._read()
        if snapshot is None:
            return
        model = snapshot["model"]
        alerts = GaugeMetricFamily(
            "modelcycle_open_alerts",
            "Active (open or acknowledged) alerts by rule and severity.",
            labels=("model", "rule", "severity"),
        )
        for (rule, severity), count in sorted(snapshot["alerts"].items()):
            alerts.add_metric((model, rule, severity), count)
        yield alerts
        run = snapshot.get("run")
        if run is None:
            return
        version = str(run["model_version"])
        for name, what, value in (
            (
                "verdict",
                "Latest monitoring verdict: 0 healthy, 1 degraded, 2 failing.",
                VERDICT_LEVEL.get(run["verdict"]),
            ),
            (
                "drift_share",
                "Share of drifted features in the latest monitoring run.",
                run["dataset_drift_share"],
            ),
            (
                "ood_rate",
                "Share of out-of-distribution rows in the latest monitoring run.",
                run["ood_rate"],
            ),
            (
                "metric",
                "Realised metric of the latest monitoring run (with labels).",
                run["metric_value"],
            ),
        ):
            if value is None:
                continue
            gauge = GaugeMetricFamily(
                f"modelcycle_monitoring_{name}", what, labels=("model", "version")
            )
            gauge.add_metric((model, version), float(value))
            yield gauge


def monitoring_snapshot(engine: Any, model_name: str) -> dict[str, Any]:
    """Active alert counts and the latest run's summary, for :class:`ServingMetrics`."""
    from modelcycle.store.alerts import list_alerts
    from modelcycle.store.monitoring import recent_runs

    with engine.connect() as conn:
        active = list_alerts(conn, model_name)
        runs = recent_runs(conn, model_name, limit=1)
    counts: dict[tuple[str, str], int] = {}
    for alert in active:
        key = (alert["rule"], alert["severity"])
        counts[key] = counts.get(key, 0) + 1
    return {"model": model_name, "alerts": counts, "run": runs[0] if runs else None}


class ServingMetrics:
    """The server's metrics.

    Args:
        log_stats: Returns the prediction log's counters (``None`` before it starts).
        value_buckets: Histogram buckets for predicted values.
        monitoring: Returns the monitoring snapshot (:func:`monitoring_snapshot`), or ``None``
            when there is no store.
    """

    def __init__(
        self,
        log_stats: Callable[[], LogStats | None],
        value_buckets: tuple[float, ...] = PROBABILITY_BUCKETS,
        monitoring: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("route", "status", "model", "version", "arm")
        self.requests = Counter(
            "modelcycle_requests", "HTTP requests served.", labels, registry=self.registry
        )
        self.latency = Histogram(
            "modelcycle_request_latency_seconds",
            "Time to answer a request, in seconds.",
            ("route", "model", "version", "arm"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "modelcycle_predicted_rows",
            "Rows predicted.",
            ("model", "version", "arm"),
            registry=self.registry,
        )
        self.values: Histogram | None = None
        self.value_buckets = value_buckets
        self.failures = Counter(
            "modelcycle_prediction_failures",
            "Predictions a model version raised on (a failing candidate falls back to stable).",
            ("model", "version", "arm"),
            registry=self.registry,
        )
        self.model_info = Gauge(
            "modelcycle_model_loaded",
            "1 for each model version the server has loaded, by arm.",
            ("model", "version", "arm"),
            registry=self.registry,
        )
        self.registry.register(_LogCollector(log_stats))
        if monitoring is not None:
            self.registry.register(_MonitoringCollector(monitoring))
        self._children: dict[tuple[str, int, str, str, str], tuple[Any, Any]] = {}

    def observe(
        self, route: str, status: int, seconds: float, model: str, version: str, arm: str
    ) -> None:
        """Count one request and its latency."""
        key = (route, status, model, version, arm)
        children = self._children.get(key)
        if children is None:  # label lookups cost more than the counting itself
            children = (
                self.requests.labels(route, str(status), model, version, arm),
                self.latency.labels(route, model, version, arm),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def predicted(self, values: list[float], model: str, version: str, arm: str) -> None:
        """Count predicted rows and record their values."""
        self.rows.labels(model, version, arm).inc(len(values))
        if self.values is None:
            self.use_value_buckets(self.value_buckets)
        assert self.values is not None
        histogram = self.values.labels(model, version, arm)
        for value in values:
            histogram.observe(value)

    def failed(self, model: str, version: str, arm: str) -> None:
        """Count a prediction a model version failed on."""
        self.failures.labels(model, version, arm).inc()

    def use_value_buckets(self, buckets: tuple[float, ...]) -> None:
        """Create the predicted-value histogram with these buckets (the first call wins)."""
        if self.values is None:
            self.values = Histogram(
                "modelcycle_prediction_value",
                "Predicted values (regression) or positive-class probabilities (classification).",
                ("model", "version", "arm"),
                buckets=buckets,
                registry=self.registry,
            )

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


def value_buckets(quantiles: dict[str, float]) -> tuple[float, ...]:
    """Histogram buckets for predicted values from the training target's quantiles."""
    edges = sorted({round(v, 6) for v in quantiles.values()})
    return tuple(edges) if len(edges) >= 2 else PROBABILITY_BUCKETS
