"""A new user's first session, through the real CLI: init → examples → validate → eda → split."""

from __future__ import annotations

import json
import subprocess
import sys
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
    run = cli("demo", "--dir", str(tmp_path / "demo"), "--fast")
    assert run.code == 0, run.text
    root = tmp_path / "demo"
    for made in ("reports/eda.html", "reports/validation.html", "reports/evaluation.html",
                 "data/schema.json", "data/splits/train.parquet", "data/splits/test.parquet"):  # fmt: skip
        assert (root / made).is_file(), made
    # the story is in the stores, not only in the text: v1 was registered and served, v2 was
    # ramped up through its gates by the server's controller and promoted
    from modelcycle.deployment.commands import history, status
    from modelcycle.registry.store import load_model, resolve_version
    from modelcycle.store import make_engine, window

    uri = f"sqlite:///{root}/.modelcycle/mlflow.db"
    first = load_model("rent/1", tracking_uri=uri)
    assert first.metrics["model"]["mae"] < first.metrics["baseline_dummy"]["mae"]
    assert resolve_version("rent@champion", tracking_uri=uri) == 2
    assert resolve_version("rent@previous", tracking_uri=uri) == 1

    engine = make_engine(f"sqlite:///{root}/.modelcycle/modelcycle.db")
    state = status(engine, "rent")
    assert (state.status, state.stable_version) == ("promoted", "2")
    actions = [event.action for event in history(engine, "rent")]
    assert actions[0] == "deploy"
    assert actions[-1] == "promote"
    assert actions.count("advance") == 2  # 20% → 50% → 100%, then promoted
    with engine.connect() as conn:
        logged = window(conn, "rent")
    engine.dispose()
    # the serving step: 20 listings in 16 requests, each labelled with its true rent
    labelled = logged[logged["has_label"]]
    assert len(labelled) == 20
    assert labelled["request_id"].nunique() == 16
    assert set(labelled["model_version"]) == {"1"}
    # the rollout: both versions answered, the candidate as the canary arm
    served = logged.groupby(["model_version", "arm"]).size()
    assert served[("2", "canary")] > 0
    assert served[("1", "stable")] > 20
    assert logged["error"].isna().all()
