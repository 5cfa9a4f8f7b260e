"""Monitoring runs over a real prediction log: drift named, alerts opened and resolved, verdicts.

The model is the served project's registered LightGBM rent model; traffic is logged as the
server logs it (the model's own predictions and OOD flags), from the rent generator's scenarios.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from modelcycle.config.spec import MonitoringSpec, load_project
from modelcycle.data.examples import rent_apartments
from modelcycle.monitoring.alerts import Notifier
from modelcycle.monitoring.run import Window, monitor, record, resolve_window
from modelcycle.registry.store import LoadedModel, load_model
from modelcycle.store.alerts import list_alerts
from modelcycle.store.monitoring import recent_runs

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HOUR = Window(NOW - timedelta(hours=1), NOW, None, "the last 1h")


@pytest.fixture(autouse=True)
def _logger(logs_traffic: Any) -> None:
    global log_traffic  # noqa: PLW0603 - the conftest helper, as a module-level name
    log_traffic = logs_traffic


log_traffic: Any = None


@pytest.fixture
def setup(project_store: Any) -> tuple[sa.Engine, LoadedModel, MonitoringSpec]:
    model = load_model("rent/1", tracking_uri=project_store.uri)
    return project_store.engine, model, load_project(project_store.root).spec.monitoring


def run(
    engine: sa.Engine, model: LoadedModel, policy: MonitoringSpec, window: Window = HOUR
) -> dict[str, Any]:
    report = monitor(engine, model, policy, window, now=window.until, chunk_rows=700)
    return record(engine, report, policy, Notifier()).report


def traffic(engine: sa.Engine, model: LoadedModel, scenario: str, rows: int, **kw: Any) -> None:
    seed = kw.pop("seed", 5)
    frame = rent_apartments(rows, seed=seed, scenario=scenario, messy=False)
    log_traffic(engine, model, frame, start=kw.pop("start", HOUR.since), seed=seed, **kw)


def active_rules(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {alert["rule"] for alert in list_alerts(conn, "rent")}


def test_unchanged_traffic_is_healthy_and_the_run_is_stored(setup: Any) -> None:
    engine, model, policy = setup
    traffic(engine, model, "baseline", 3_000, labelled=0.5)
    report = run(engine, model, policy)
    assert report["verdict"] == "healthy", report["reasons"]
    assert report["n_rows"] == 3_000
    assert report["drift"]["drifted"] == []
    assert 0.4 < report["performance"]["label_coverage"] < 0.6
    realised = report["performance"]["realised"]["mae"]
    assert realised == pytest.approx(report["performance"]["reference"]["mae"], rel=0.35)
    assert sum(period["rows"] for period in report["timeline"]) == 3_000
    assert report["ood"]["rate"] < policy.alerts.ood_rate
    assert active_rules(engine) == set()
    with engine.connect() as conn:
        (stored,) = recent_runs(conn, "rent", with_report=True)
    assert stored["verdict"] == "healthy"
    assert stored["report"]["n_rows"] == 3_000


@pytest.mark.parametrize(
    ("scenario", "rule", "feature"),
    [
        ("new_neighborhood", "feature_drift", "neighborhood"),
        ("bigger_apartments", "feature_drift", "area"),
        ("missing_spike", "feature_drift", "area"),
        ("schema_break", "schema_break", "area"),
    ],
)
def test_scenarios_open_alerts_naming_the_feature(
    setup: Any, scenario: str, rule: str, feature: str
) -> None:
    engine, model, policy = setup
    frame = rent_apartments(5_000, seed=9, scenario=scenario, messy=False)
    if scenario == "schema_break":  # area renamed, rooms sent as text: the model cannot answer
        _log_broken(engine, model, frame)
    else:
        log_traffic(engine, model, frame, start=HOUR.since)
    report = run(engine, model, policy)
    named = {(a["rule"], a["feature"]) for a in report["alerts"]}
    assert (rule, feature) in named, report["reasons"]
    assert report["verdict"] in ("degraded", "failing")
    assert rule in active_rules(engine)
    if scenario == "schema_break":
        assert report["verdict"] == "failing"


def _log_broken(engine: sa.Engine, model: LoadedModel, frame: Any) -> None:
    """Log rows whose ``area`` vanished and ``rooms`` became text, as a batch log would."""
    from modelcycle.store.predictions import insert_prediction_rows

    records = frame.drop(columns=["rent", "address", "zip"], errors="ignore").to_dict("records")
    rows = [
        {
            "request_id": f"broken-{i}",
            "created_at": HOUR.since + timedelta(seconds=i * 0.5),
            "model_name": "rent",
            "model_version": str(model.version),
            "features": {k: (None if pd.isna(v) else v) for k, v in record.items()},
            "prediction": 1500.0,
            "record_id": f"broken-{i}",
        }
        for i, record in enumerate(records)
    ]
    with engine.begin() as conn:
        insert_prediction_rows(conn, rows)


def test_inflation_is_seen_through_labels_and_the_alert_resolves_later(setup: Any) -> None:
    engine, model, policy = setup
    traffic(engine, model, "inflation", 5_000, labelled=0.6)
    report = run(engine, model, policy)
    perf = report["performance"]
    assert perf["realised_change"] > policy.alerts.metric_drop
    assert "metric_drop" in {a["rule"] for a in report["alerts"]}
    assert report["drift"]["target"]["verdict"] == "drift"
    assert report["drift"]["drifted"] == []  # the features did not move: only the rents did
    assert "metric_drop" in active_rules(engine)

    later = Window(NOW + timedelta(hours=1), NOW + timedelta(hours=2), None, "the next hour")
    traffic(engine, model, "baseline", 3_000, labelled=0.6, start=later.since, seed=6)
    calm = run(engine, model, policy, later)
    assert calm["verdict"] == "healthy", calm["reasons"]
    with engine.connect() as conn:
        resolved = list_alerts(conn, "rent", status="resolved")
    assert "metric_drop" in {alert["rule"] for alert in resolved}
    assert active_rules(engine) == set()


def test_too_few_rows_judge_operations_but_not_drift_and_keep_drift_alerts(setup: Any) -> None:
    engine, model, policy = setup
    traffic(engine, model, "bigger_apartments", 3_000)
    assert "feature_drift" in {a["rule"] for a in run(engine, model, policy)["alerts"]}
    later = Window(NOW + timedelta(hours=1), NOW + timedelta(hours=2), None, "the next hour")
    traffic(engine, model, "baseline", 50, start=later.since, seed=3)
    report = run(engine, model, policy, later)
    assert report["drift"] is None
    assert "fewer than min_rows" in report["drift_skipped"]
    assert "feature_drift" not in report["evaluated_rules"]
    assert "feature_drift" in active_rules(engine)  # not judged, so not resolved


def test_no_traffic_and_last_n_windows(setup: Any) -> None:
    engine, model, policy = setup
    report = run(engine, model, policy)
    assert report["verdict"] == "degraded"
    assert [a["rule"] for a in report["alerts"]] == ["no_traffic"]
    traffic(engine, model, "baseline", 1_000)
    newest = resolve_window(None, 400, now=NOW)
    report = run(engine, model, policy, newest)
    assert report["n_rows"] == 400
    assert report["window"]["last"] == 400
    assert "no_traffic" not in active_rules(engine)


def test_resolve_window_refuses_unclear_requests() -> None:
    with pytest.raises(ValueError, match="not both"):
        resolve_window("1h", 10)
    with pytest.raises(ValueError, match="not both"):
        resolve_window(None, None)
    with pytest.raises(ValueError, match="duration"):
        resolve_window("soon", None)
    with pytest.raises(ValueError, match="empty"):
        resolve_window("0s", None)
    assert resolve_window("2h", None, now=NOW).since == NOW - timedelta(hours=2)


def test_watch_runs_on_a_schedule_until_stopped(project_store: Any) -> None:
    import threading

    from modelcycle.monitoring import jobs

    engine, root = project_store.engine, project_store.root
    job = jobs.MonitorJob(engine, project_store.settings, load_project(root), "rent")
    stop = threading.Event()
    seen: list[int] = []

    def on_result(result: Any) -> None:
        seen.append(result.run_id)
        if len(seen) == 2:
            stop.set()

    report = root / "reports" / "watched.html"
    runs = jobs.watch(
        job, lambda: resolve_window("1h", None), 0.1, stop, report_path=report, on_result=on_result
    )
    assert runs == 2
    assert seen == sorted(seen)
    assert report.is_file()
    with engine.connect() as conn:
        assert [r["id"] for r in recent_runs(conn, "rent")] == seen


def test_rows_without_ood_or_probabilities_mix_with_served_ones(setup: Any) -> None:
    # batch-logged rows have no OOD check: a column of text and NULLs (pandas may read NaN)
    from modelcycle.store.predictions import insert_prediction_rows

    engine, model, policy = setup
    traffic(engine, model, "baseline", 600)
    frame = rent_apartments(300, seed=8, messy=False)[model.feature_names]
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    with engine.begin() as conn:
        insert_prediction_rows(
            conn,
            [
                {
                    "request_id": f"batch-{i}",
                    "created_at": HOUR.since + timedelta(seconds=10 + i),
                    "model_name": "rent",
                    "model_version": str(model.version),
                    "features": record,
                    "prediction": 1500.0,
                    "record_id": f"batch-{i}",
                }
                for i, record in enumerate(records)
            ],
        )
    report = run(engine, model, policy)
    assert report["n_rows"] == 900
    assert report["ood"]["checked"] == 600  # only the served rows were checked


def test_a_firing_alert_follows_the_promoted_version(
    setup: Any, project_store: Any, registers: Any
) -> None:
    engine, model, policy = setup
    traffic(engine, model, "bigger_apartments", 2_000)
    first = {a["feature"]: a for a in run(engine, model, policy)["alerts"]}
    assert "area" in first
    newer = load_model(f"rent/{registers(project_store.root)}", tracking_uri=project_store.uri)
    later = Window(NOW + timedelta(hours=1), NOW + timedelta(hours=2), None, "the next hour")
    traffic(engine, newer, "bigger_apartments", 2_000, start=later.since, seed=7)
    run(engine, newer, policy, later)
    with engine.connect() as conn:
        (area,) = [
            a for a in list_alerts(conn, "rent") if (a["details"] or {}).get("feature") == "area"
        ]
    assert area["model_version"] == str(newer.version)  # same alert, now about the new version
    assert area["opened_at"] < later.since
