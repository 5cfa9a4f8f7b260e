"""``modelcycle train`` as a user runs it: bad input gives one clear message, good input a model.

Each mistake must end with a non-zero exit code, exactly one ``error:`` line with a ``hint:``, and
no traceback. Trainings are tiny (one candidate, one to four trials).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelcycle.scaffold import init_project

REGRESSION = 'task = "regression"'
CHEAP = ("--candidates", "linear", "--budget", "1 trials", "--no-track", "--no-register")


def rent_rows(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "area": rng.integers(30, 150, n).astype(float),
            "rooms": rng.integers(1, 5, n),
            "city": rng.choice(["north", "south", "east"], n),
        }
    )
    frame["rent"] = (frame["area"] * 12 + rng.normal(0, 50, n)).round(2)
    return frame


def make_project(
    root: Path, frame: pd.DataFrame, top: str = "", tables: str = "", target: str = "rent"
) -> Path:
    """A project folder with ``data.csv`` and a minimal spec (``top`` keys, extra ``tables``)."""
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "data.csv", index=False)
    text = f'name = "proj"\ntarget = "{target}"\n{top}\n[data]\npath = "data.csv"\n\n{tables}'
    (root / "modelcycle.toml").write_text(text, encoding="utf-8")
    return root


def assert_one_clear_error(run, *words: str) -> str:
    """Non-zero exit, one ``error:`` line and a ``hint:``, no traceback; returns the text."""
    text = " ".join(run.text.split())
    assert run.code != 0, text
    assert run.code == 2, text  # a user error, not a crash (1)
    assert "Traceback" not in run.text
    assert "unexpected error" not in text
    assert sum(line.startswith("error:") for line in run.text.splitlines()) == 1, run.text
    assert "hint:" in run.err, run.err
    for word in words:
        assert word in text, text
    return text


# -------------------------------------------------------------------------------- bad input


def test_missing_target_with_missing_target_error(cli, tmp_path: Path) -> None:
    frame = rent_rows(60)
    frame.loc[[3, 17, 40], "rent"] = np.nan
    root = make_project(tmp_path / "p", frame, REGRESSION, '[training]\nmissing_target = "error"\n')
    run = cli("train", *CHEAP, cwd=root)
    text = assert_one_clear_error(run, "target 'rent' is missing on 3 rows", "missing_target")
    assert "baseline_dummy" not in text  # stopped before any fit


def test_missing_target_is_dropped_by_default(cli, tmp_path: Path) -> None:
    frame = rent_rows(60)
    frame.loc[[3, 17, 40], "rent"] = np.nan
    root = make_project(tmp_path / "p", frame, REGRESSION)
    run = cli("train", *CHEAP, cwd=root)
    assert run.code == 0, run.text
    assert "dropped 3 rows without a target" in " ".join(run.out.split())


def test_single_class_target_stops_training(cli, tmp_path: Path) -> None:
    frame = rent_rows(60).drop(columns=["rent"]).assign(late="no")
    root = make_project(tmp_path / "p", frame, target="late")
    run = cli("train", *CHEAP, cwd=root)
    assert_one_clear_error(run, "validation error", "single class", "'no'", "data validate")


def test_too_few_rows_for_the_split(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", rent_rows(8), REGRESSION, "[validation]\nmin_rows = 5\n")
    run = cli("train", *CHEAP, cwd=root)
    assert_one_clear_error(run, "8 rows", "needs at least 10")


def test_too_few_rows_for_validation(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", rent_rows(12), REGRESSION)
    run = cli("train", *CHEAP, cwd=root)
    assert_one_clear_error(run, "12 rows", "at least 30", "data validate")


def test_just_enough_rows_ends_cleanly(cli, tmp_path: Path) -> None:
    """12 rows pass the split's minimum (10): training may run, but must not crash."""
    root = make_project(tmp_path / "p", rent_rows(12), REGRESSION, "[validation]\nmin_rows = 5\n")
    run = cli("train", *CHEAP, cwd=root)
    assert "Traceback" not in run.text
    assert "unexpected error" not in run.text
    if run.code != 0:
        assert_one_clear_error(run)


def test_unknown_metric_in_the_spec(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", rent_rows(60), 'metric = "accuracy"\n')
    run = cli("train", *CHEAP, cwd=root)
    assert_one_clear_error(run, "unknown metric 'accuracy'", "mae")


def test_metric_that_does_not_fit_the_inferred_task(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", rent_rows(60), 'metric = "roc_auc"\n')
    run = cli("train", *CHEAP, cwd=root)
    assert_one_clear_error(run, "metric 'roc_auc' does not fit task regression")


def test_unknown_candidate_on_the_command_line(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", rent_rows(60), REGRESSION)
    run = cli("train", "--candidates", "rf,xgb", "--no-track", "--no-register", cwd=root)
    assert_one_clear_error(run, "unknown candidate 'xgb'", "did you mean `hgb`", "linear, rf")


def test_unknown_candidate_in_the_spec(cli, tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p", rent_rows(60), tables='[training]\ncandidates = ["lgbm", "xgb"]\n'
    )
    run = cli("train", "--no-track", "--no-register", cwd=root)
    assert_one_clear_error(run, "training.candidates", "xgb")


@pytest.mark.parametrize("budget", ["0", "0 trials", "0s", "-1", "lots"])
def test_bad_budget_on_the_command_line(cli, tmp_path: Path, budget: str) -> None:
    root = make_project(tmp_path / "p", rent_rows(60), REGRESSION)
    run = cli("train", "--budget", budget, "--no-track", "--no-register", cwd=root)
    assert_one_clear_error(run, f"budget {budget!r}", "--budget")


def test_zero_budget_in_the_spec(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", rent_rows(60), tables='[training]\nbudget = "0"\n')
    run = cli("train", "--no-track", "--no-register", cwd=root)
    assert_one_clear_error(run, "training.budget", "must be positive")


def test_unreachable_registry_fails_fast(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELCYCLE_MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    root = make_project(tmp_path / "p", rent_rows(60), REGRESSION)
    start = time.perf_counter()
    run = cli("train", "--candidates", "linear", "--budget", "1 trials", cwd=root)
    elapsed = time.perf_counter() - start
    text = assert_one_clear_error(run, "cannot reach the MLflow store at http://127.0.0.1:1")
    assert "MODELCYCLE_MLFLOW_TRACKING_URI" in text
    assert elapsed < 20, elapsed
    assert "test metrics" not in text  # failed before training
    assert not (root / ".modelcycle" / "mlflow.db").exists()


# ------------------------------------------------------------------- high-cardinality columns


@pytest.mark.slow
def test_fifty_thousand_levels_is_not_an_error(cli, tmp_path: Path) -> None:
    """50,000 distinct codes over 60,000 rows read as free text: ignored, and training goes on."""
    from modelcycle.data.schema import FeatureSchema

    rng = np.random.default_rng(0)
    n = 60_000
    codes = np.concatenate([np.arange(50_000), rng.integers(0, 50_000, n - 50_000)])
    rng.shuffle(codes)
    frame = pd.DataFrame({"code": [f"C{c:05d}" for c in codes], "x": rng.normal(0, 1, n)})
    frame["y"] = 3 * frame["x"] + rng.normal(0, 1, n)
    root = make_project(tmp_path / "p", frame, REGRESSION, target="y")
    run = cli("train", *CHEAP, cwd=root)
    assert run.code == 0, run.text
    assert "Traceback" not in run.text
    text = " ".join(run.out.split())
    assert "12,000 rows" in text  # evaluated on the 20% test part
    assert "code:" not in text  # not target-encoded: the column is free text ...
    column = FeatureSchema.infer(frame, target="y").column("code")
    assert column.n_unique == 50_000
    assert (column.kind, column.role) == ("text", "ignored")  # ... and never a feature
    assert not (root / ".modelcycle" / "mlflow.db").exists()


def test_many_repeated_levels_are_target_encoded(cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 3000
    frame = pd.DataFrame(
        {
            "code": [f"C{c:04d}" for c in rng.permutation(np.tile(np.arange(600), n // 600))],
            "x": rng.normal(0, 1, n),
        }
    )
    frame["y"] = 3 * frame["x"] + frame["code"].str[1:].astype(int) / 100 + rng.normal(0, 1, n)
    root = make_project(tmp_path / "p", frame, REGRESSION, target="y")
    run = cli("train", *CHEAP, cwd=root)
    assert run.code == 0, run.text
    assert "code: 600 levels, target-encoded" in " ".join(run.out.split())


# ---------------------------------------------------------------------------- good input


@pytest.mark.slow
def test_no_track_no_register_leaves_no_store(cli, tmp_path: Path) -> None:
    root = tmp_path / "rent"
    init_project(root, example="rent", rows=400)
    run = cli("train", *CHEAP, cwd=root)
    assert run.code == 0, run.text
    assert "baseline_linear" in run.out
    assert "registered rent" not in run.out
    assert not (root / ".modelcycle" / "mlflow.db").exists()
    assert not (root / "mlruns").exists()
    assert (root / "reports" / "evaluation.html").is_file()


@pytest.mark.slow
def test_happy_path_prints_the_comparison_and_registers(cli, tmp_path: Path) -> None:
    root = tmp_path / "rent"
    init_project(root, example="rent", rows=800)
    run = cli("train", "--candidates", "lgbm", "--budget", "4 trials", cwd=root)
    assert run.code == 0, run.text
    out = " ".join(run.out.split())
    assert "test metrics (mae decides" in out
    for row in ("baseline_dummy", "baseline_linear", "lgbm"):
        assert row in out
    assert "lgbm beats baseline_linear on test mae" in out
    assert "registered rent version 1 (champion)" in out
    assert "report:" in out
    assert "mlflow ui --backend-store-uri" in out
    assert (root / ".modelcycle" / "mlflow.db").is_file()
    assert "Traceback" not in run.text
    listed = cli("models", "list", cwd=root)
    assert listed.code == 0, listed.text
    assert "rent" in listed.out


@pytest.mark.slow
def test_two_trains_at_once_make_two_intact_versions(tmp_path: Path) -> None:
    # two processes train and register on the same new store at the same time
    import subprocess
    import sys

    from modelcycle.registry.store import load_model

    # margin 0: the tuned linear candidate ties the linear baseline, and a tie registers
    root = make_project(
        tmp_path / "p", rent_rows(400), top=REGRESSION, tables="[training]\nmargin = 0.0\n"
    )
    command = [sys.executable, "-m", "modelcycle", "train", "--candidates", "linear",
               "--budget", "1 trials"]  # fmt: skip
    procs = [
        subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    uri = f"sqlite:///{root / '.modelcycle' / 'mlflow.db'}"
    versions = {load_model(f"proj/{v}", tracking_uri=uri).version for v in (1, 2)}
    assert versions == {1, 2}  # both load: digests verified, pipelines intact
    assert load_model("proj@champion", tracking_uri=uri).version == 1
