"""``modelcycle monitor run`` and ``modelcycle alerts``, as a user runs them.

The project is the rent example with two registered versions (``registered_rent``); traffic is
logged straight into the project's store as the server would log it: the champion's own
predictions on rows of a rent scenario.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelcycle.config.settings import Settings
from modelcycle.data.examples import rent_apartments
from modelcycle.registry.store import load_model
from modelcycle.store import make_engine, upgrade
from modelcycle.store.predictions import insert_prediction_rows


@pytest.fixture
def project(registered_rent: Path, tmp_path: Path) -> Path:
    """A private copy of the registered project."""
    return Path(shutil.copytree(registered_rent, tmp_path / "rent"))


def log(project: Path, scenario: str, rows: int, seed: int) -> None:
    """Log the champion's predictions on ``rows`` rows of ``scenario`` in the last half hour."""
    settings = Settings.load(project)
    assert settings.database_url is not None
    assert settings.mlflow_tracking_uri is not None
    upgrade(settings.database_url)
    model = load_model("rent@champion", tracking_uri=settings.mlflow_tracking_uri)
    frame = rent_apartments(rows, seed=seed, scenario=scenario, messy=False)
    features = frame.drop(columns=["rent", "address", "zip"], errors="ignore")
    records = json.loads(features.to_json(orient="records"))
    known = [name for name in model.feature_names if name in features]
    predicted = (
        model.predict(features)["prediction"].tolist()
        if len(known) == len(model.feature_names)
        else [1500.0] * rows
    )
    start = datetime.now(UTC) - timedelta(minutes=30)
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        insert_prediction_rows(
            conn,
            [
                {
                    "request_id": f"{scenario}-{seed}-{i}",
                    "created_at": start + timedelta(seconds=i * 0.5),
                    "model_name": "rent",
                    "model_version": str(model.version),
                    "arm": "stable",
                    "features": records[i],
                    "prediction": float(predicted[i]),
                    "latency_ms": 2.0,
                    "record_id": f"{scenario}-{seed}-{i}",
                }
                for i in range(rows)
            ],
        )
    engine.dispose()


def test_a_healthy_window_then_alerts_listed_and_acknowledged(cli, project: Path) -> None:
    log(project, "baseline", 600, seed=3)
    run = cli("monitor", "run", "--last", "600", cwd=project)
    assert run.code == 0, run.text
    assert "healthy" in run.out, run.out
    assert "alerts:" not in run.out, run.out
    assert (project / "reports" / "monitor.html").is_file()

    log(project, "missing_spike", 600, seed=4)
    run = cli("monitor", "run", "--last", "600", "--json", cwd=project)
    assert run.code == 0, run.text  # degraded is not failing
    report = json.loads(run.out)
    assert report["verdict"] == "degraded"
    assert ("feature_drift", "area") in {(a["rule"], a["feature"]) for a in report["alerts"]}

    listed = cli("alerts", "list", "--json", cwd=project)
    assert listed.code == 0, listed.text
    (alert,) = json.loads(listed.out)
    assert (alert["rule"], alert["status"]) == ("feature_drift", "open")
    acked = cli("alerts", "ack", str(alert["id"]), cwd=project)
    assert acked.code == 0, acked.text
    assert "acknowledged" in acked.out
    still = json.loads(cli("alerts", "list", "--json", cwd=project).out)
    assert [a["status"] for a in still] == ["acknowledged"]  # active until a run resolves it

    log(project, "baseline", 600, seed=5)
    assert cli("monitor", "run", "--last", "600", cwd=project).code == 0
    assert json.loads(cli("alerts", "list", "--json", cwd=project).out) == []
    resolved = json.loads(cli("alerts", "list", "--status", "resolved", "--json", cwd=project).out)
    assert [a["rule"] for a in resolved] == ["feature_drift"], resolved


def test_a_failing_window_exits_1_for_schedulers(cli, project: Path) -> None:
    log(project, "schema_break", 400, seed=6)
    run = cli("monitor", "run", "--window", "1h", cwd=project)
    assert run.code == 1, run.text
    assert "failing" in run.out
    assert "schema" in run.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("monitor", "run", "--window", "1h", "--last", "10"), "not both"),
        (("monitor", "run", "--window", "soon"), "duration"),
        (("alerts", "ack", "999"), "no alert with id 999"),
        (("monitor", "watch", "--every", "0s"), "longer than 0"),
        (("monitor", "run", "--version", "7"), "7"),
    ],
)
def test_mistakes_get_one_clear_message(
    cli, project: Path, args: tuple[str, ...], message: str
) -> None:
    run = cli(*args, cwd=project)
    assert run.code != 0
    assert message in run.text
    assert "Traceback" not in run.text
