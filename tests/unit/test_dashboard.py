"""The dashboard's data: traffic split, weight history and the JSON read from a real store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.engine import Engine

from modelcycle.deployment import state as st
from modelcycle.deployment.state import DeploymentState, RolloutPlan
from modelcycle.serving.dashboard import dashboard_data, plotly_js_path, traffic, weights
from modelcycle.store import make_engine, upgrade
from modelcycle.store.alerts import open_alert
from modelcycle.store.monitoring import save_run

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'state' / 'modelcycle.db'}"
    upgrade(url)
    made = make_engine(url)
    yield made
    made.dispose()


def test_traffic_split_by_strategy() -> None:
    idle = DeploymentState("rent")
    assert traffic(idle) == []
    stable = replace(idle, stable_version="1", status="promoted")
    assert traffic(stable) == [{"arm": "stable", "version": "1", "weight": 100.0}]
    canary = replace(stable, candidate_version="2", status="canary", weight=10.0)
    assert traffic(canary) == [
        {"arm": "stable", "version": "1", "weight": 90.0},
        {"arm": "canary", "version": "2", "weight": 10.0},
    ]
    green = replace(canary, status="blue_green", weight=100.0)
    assert [(t["arm"], t["weight"]) for t in traffic(green)] == [("blue", 0.0), ("green", 100.0)]
    shadow = replace(canary, status="shadow", weight=0.0)
    assert [(t["arm"], t["weight"]) for t in traffic(shadow)] == [
        ("stable", 100.0),
        ("shadow", 0.0),
    ]


def test_weights_follow_the_history() -> None:
    plan = RolloutPlan(steps=(5.0, 25.0, 100.0))
    state, first = st.start(DeploymentState("rent"), "1", "direct", plan, actor="t", now=NOW)
    state, ramp = st.start(state, "2", "ramp", plan, actor="t", now=NOW)
    state, held = st.hold(state, actor="controller", reason="too few", failed=False, gates={})
    state, step = st.advance(state, actor="controller", now=NOW, reason="ok", gates={})
    state, back = st.rollback(state, actor="t", now=NOW)
    points = weights([first, ramp, held, step, back], state)
    assert [p["weight"] for p in points] == [0.0, 5.0, 5.0, 25.0, 0.0, 0.0]
    assert [p["action"] for p in points] == [
        "deploy",
        "deploy",
        "hold",
        "advance",
        "rollback",
        "now",
    ]


def test_plotly_js_is_the_packaged_bundle() -> None:
    path = plotly_js_path()
    assert path.name == "plotly.min.js"
    assert path.stat().st_size > 1_000_000


def test_data_of_an_empty_store(engine: Engine) -> None:
    data = dashboard_data(engine, "rent")
    assert data["model"] == "rent"
    assert (data["deployment"], data["latest"]) == (None, None)
    assert data["traffic"] == data["weights"] == data["events"] == data["runs"] == []
    assert data["alerts"] == []
    orjson.dumps(data)


def report(verdict: str, psi: float) -> dict[str, Any]:
    features = [
        {"name": "rooms", "verdict": "ok", "statistics": {"psi": 0.01}},
        {"name": "area", "verdict": verdict, "statistics": {"psi": psi}},
    ]
    return {"verdict": verdict, "drift": {"features": features, "dataset_drift_share": 0.5}}


def test_data_of_a_monitored_deployment(engine: Engine) -> None:
    plan = RolloutPlan(canary_weight=10.0)
    with engine.begin() as conn:
        for hours, verdict in ((2, "healthy"), (1, "failing")):
            save_run(
                conn,
                {
                    "created_at": NOW - timedelta(hours=hours),
                    "model_name": "rent",
                    "model_version": "1",
                    "window_start": None,
                    "window_end": None,
                    "n_rows": 100,
                    "verdict": verdict,
                    "dataset_drift_share": 0.5 if verdict == "failing" else 0.0,
                    "ood_rate": 0.01,
                    "metric": "mae",
                    "metric_value": 150.0,
                    "report": report("drift" if verdict == "failing" else "ok", 0.4),
                },
            )
        open_alert(conn, "feature_drift", "rent", "1", "critical", "area drifted", None, "k1")
        open_alert(conn, "feature_drift", "other", "1", "critical", "not this model", None, "k2")
        state = st.load(conn, "rent")
        for version, strategy in (("1", "direct"), ("2", "canary")):
            new, event = st.start(state, version, strategy, plan, actor="t", now=NOW)  # type: ignore[arg-type]
            state = st.commit(conn, state, new, event)

    data = dashboard_data(engine, "rent")
    assert data["deployment"]["status"] == "canary"
    assert data["deployment"]["candidate_version"] == "2"
    assert [t["weight"] for t in data["traffic"]] == [90.0, 10.0]
    assert [p["weight"] for p in data["weights"]] == [0.0, 10.0, 10.0]
    assert [e["action"] for e in data["events"]] == ["deploy", "deploy"]
    assert [r["verdict"] for r in data["runs"]] == ["healthy", "failing"]  # oldest first
    assert "report" not in data["runs"][0]
    assert data["latest"]["verdict"] == "failing"
    assert data["latest"]["drift_order"] == ["area", "rooms"]  # the drifted feature first
    assert [a["message"] for a in data["alerts"]] == ["area drifted"]
    assert len(dashboard_data(engine, "rent", runs=1)["runs"]) == 1
    orjson.dumps(data)
