"""A new user's first session, through the real CLI: init → examples → validate → eda → split."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from modelcycle import __version__


def test_console_script_and_module_entry_points() -> None:
    # `python -m modelcycle` works and --help lists every stage group
    out = subprocess.run(
        [sys.executable, "-m", "modelcycle", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for group in ("init", "config", "examples", "data", "train", "models", "demo"):
        assert group in out
    version = subprocess.run(
        [sys.executable, "-m", "modelcycle", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert version.returncode == 0
    assert __version__ in version.stdout


def test_new_user_journey(cli, tmp_path: Path) -> None:
    project = tmp_path / "rent"
    run = cli("init", str(project), "--example", "rent", "--rows", "1500")
    assert run.code == 0, run.text
    assert (project / "modelcycle.toml").is_file()
    assert (project / "data" / "rent_apartments.csv").is_file()

    # a scenario batch from the examples command
    run = cli(
        "examples", "rent", "--rows", "800", "--scenario", "new_neighborhood",
        "--out", "data/batch.csv", cwd=project,
    )  # fmt: skip
    assert run.code == 0, run.text
    assert len(pd.read_csv(project / "data" / "batch.csv")) == 800

    # the planted problems are found, but nothing blocks the example
    run = cli("data", "validate", "--json", cwd=project)
    assert run.code == 0, run.text
    report = json.loads(run.out)
    checks = {f["check"] for f in report["findings"]}
    assert {"duplicates", "impossible_value", "outliers", "missing_values"} <= checks

    run = cli("data", "schema", cwd=project)
    assert run.code == 0, run.text
    schema = json.loads((project / "data" / "schema.json").read_text())
    roles = {c["name"]: c["role"] for c in schema["columns"]}
    assert roles["rent"] == "target"
    assert roles["address"] == "ignored"

    # the new-neighborhood batch against the saved schema: an unseen category is reported
    run = cli(
        "data", "validate", "data/batch.csv", "--schema", "data/schema.json", "--json",
        "--report", "reports/batch.html", cwd=project,
    )  # fmt: skip
    batch = json.loads(run.out)
    unseen = [f for f in batch["findings"] if f["check"] == "unseen_category"]
    assert any(f["column"] == "neighborhood" for f in unseen)
    assert (project / "reports" / "batch.html").is_file()

    run = cli("data", "eda", "--out", "reports/eda.html", cwd=project)
    assert run.code == 0, run.text
    assert (project / "reports" / "eda.html").stat().st_size > 100_000  # plotly.js inlined

    run = cli("data", "split", cwd=project)
    assert run.code == 0, run.text
    parts = {
        p: pd.read_parquet(project / "data" / "splits" / f"{p}.parquet")
        for p in ("train", "valid", "test")
    }
    assert sum(len(f) for f in parts.values()) == 1500
    assert (project / "logs" / "modelcycle.log").is_file()


def test_config_show_names_sources_and_masks_secrets(cli, tmp_path: Path) -> None:
    cli("init", str(tmp_path), "--example", "rent", "--rows", "100")
    (tmp_path / ".env").write_text("MODELCYCLE_PORT=9001\nMODELCYCLE_ADMIN_API_KEYS=s3cret-key\n")
    run = cli("config", "show", "--json", cwd=tmp_path)
    assert run.code == 0, run.text
    shown = json.loads(run.out)
    assert shown["MODELCYCLE_PORT"]["value"] == "9001"
    assert shown["MODELCYCLE_PORT"]["source"].startswith(".env")
    assert shown["MODELCYCLE_LOG_LEVEL"]["source"] == "default"
    assert "s3cret-key" not in run.out
    assert shown["MODELCYCLE_DATABASE_URL"]["value"].startswith("sqlite:///")


def test_init_from_user_data(cli, tmp_path: Path) -> None:
    data = tmp_path / "orders.csv"
    pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(60)],
            "created_at": pd.date_range("2024-01-01", periods=60).astype(str),
            "amount": [float(i % 7) for i in range(60)],
            "churned": [i % 2 for i in range(60)],
        }
    ).to_csv(data, index=False)
    project = tmp_path / "churn"
    run = cli("init", str(project), "--data", str(data), "--target", "churned")
    assert run.code == 0, run.text
    spec = (project / "modelcycle.toml").read_text()
    assert 'task = "classification"' in spec
    assert 'id_column = "order_id"' in spec
    assert 'time_column = "created_at"' in spec
    run = cli("data", "validate", cwd=project)
    assert run.code == 0, run.text


def test_demo_fast(cli, tmp_path: Path) -> None:
    started = time.perf_counter()
    run = cli("demo", "--dir", str(tmp_path / "demo"), "--fast")
    seconds = time.perf_counter() - started
    assert run.code == 0, run.text
    root = tmp_path / "demo"
    for made in ("reports/eda.html", "reports/validation.html", "reports/evaluation.html",
                 "reports/monitor.html", "data/schema.json", "data/splits/train.parquet"):  # fmt: skip
        assert (root / made).is_file(), made
    # the story is in the stores, not only in the text
    from modelcycle.deployment.commands import history, status
    from modelcycle.registry.store import load_model, resolve_version
    from modelcycle.store import make_engine, window
    from modelcycle.store.alerts import list_alerts
    from modelcycle.store.monitoring import recent_runs

    uri = f"sqlite:///{root}/.modelcycle/mlflow.db"
    first = load_model("rent/1", tracking_uri=uri)
    assert first.metrics["model"]["mae"] < first.metrics["baseline_dummy"]["mae"]
    engine = make_engine(f"sqlite:///{root}/.modelcycle/modelcycle.db")
    with engine.connect() as conn:
        runs = recent_runs(conn, "rent", with_report=True)
        alerts = list_alerts(conn, "rent", status="all")
        logged = window(conn, "rent", with_features=False)
    # monitoring: the normal market is healthy, the moved one fails with the right alerts
    assert [r["verdict"] for r in runs[:2]] == ["healthy", "failing"]
    raised = {(a["rule"], (a["details"] or {}).get("feature")) for a in alerts}
    assert {("feature_drift", "neighborhood"), ("metric_drop", None), ("ood_rate", None)} <= raised
    # retrain: triggered by the alerts, the challenger won on recent data and was promoted
    events = history(engine, "rent")
    actions = [e.action for e in events]
    assert actions[:3] == ["retrain_started", "retrain_registered", "deploy"]
    assert events[0].reason.startswith("retrain on ")
    comparison = events[1].details["comparison"]
    assert comparison["wins"]
    assert comparison["gains"]["recent"] > 0
    assert actions.index("promote") > actions.index("advance")
    assert resolve_version("rent@previous", tracking_uri=uri) == 1
    # the bad version was rolled back by the server's controller, the retrained one serves
    assert actions[-3:] == ["deploy", "gate_failed", "auto_rollback"]
    assert events[-1].actor != "demo"
    assert events[-1].to_version == "2"
    state = status(engine, "rent")
    assert (state.status, state.stable_version) == ("rolled_back", "2")
    assert resolve_version("rent@champion", tracking_uri=uri) == 2
    # every acknowledged prediction is in the log, once, without errors
    story = json.loads((root / "reports" / "demo.json").read_text())
    answered = logged[logged["arm"] != "shadow"]
    assert len(answered) == story["answered_rows"]
    assert answered["request_id"].astype(str).add(answered["row"].astype(str)).is_unique
    assert logged["error"].isna().all()
    labelled = logged[logged["has_label"]]
    assert len(labelled) == sum(phase["rows"] for phase in story["phases"])
    engine.dispose()
    assert seconds < 90, f"demo --fast took {seconds:.0f} s (target: under 60 s here)"
