"""The server's Prometheus gauges of alerts and the latest monitoring run, read from a real store."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from modelcycle.serving.metrics import ServingMetrics, monitoring_snapshot
from modelcycle.store import make_engine, upgrade
from modelcycle.store.alerts import open_alert
from modelcycle.store.monitoring import save_run
from monitoring_fixtures import monitoring_row, sample_report


def samples(metrics: ServingMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_alert_counts_and_latest_run_are_gauges(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    engine = make_engine(url)
    metrics = ServingMetrics(lambda: None, monitoring=lambda: monitoring_snapshot(engine, "rent"))
    assert ("modelcycle_monitoring_verdict", (("model", "rent"), ("version", "1"))) not in (
        samples(metrics)
    )
    report = sample_report()
    with engine.begin() as conn:
        save_run(conn, monitoring_row(report))
        for key in ("a", "b"):
            open_alert(conn, "feature_drift", "rent", "1", "warning", "drift", None, key)
        open_alert(conn, "ood_rate", "rent", "1", "critical", "ood", None, "c")
        open_alert(conn, "ood_rate", "other", "1", "critical", "ood", None, "d")
    fresh = ServingMetrics(lambda: None, monitoring=lambda: monitoring_snapshot(engine, "rent"))
    got = samples(fresh)
    version = report["model_version"]
    labels = (("model", "rent"), ("version", version))
    assert got[("modelcycle_monitoring_verdict", labels)] == 1  # degraded
    drift = report["drift"]["dataset_drift_share"]
    assert got[("modelcycle_monitoring_drift_share", labels)] == drift
    rule = (("model", "rent"), ("rule", "feature_drift"), ("severity", "warning"))
    assert got[("modelcycle_open_alerts", rule)] == 2
    ood = (("model", "rent"), ("rule", "ood_rate"), ("severity", "critical"))
    assert got[("modelcycle_open_alerts", ood)] == 1  # the other model's alert is not counted
    engine.dispose()


def test_a_store_that_fails_leaves_the_other_metrics_alone() -> None:
    def broken() -> dict[str, object]:
        raise OSError("database is away")

    metrics = ServingMetrics(lambda: None, monitoring=broken)
    assert not any(name.startswith("modelcycle_monitoring") for name, _ in samples(metrics))
