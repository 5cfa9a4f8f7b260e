"""``modelcycle models``: list, show, compare, card and alias set, as a user runs them.

The project is the rent example; its two versions are registered directly from the project's data
(a linear model, then a LightGBM model), so these tests do not depend on ``modelcycle train``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelcycle.config.spec import load_project
from modelcycle.data.io import read_source
from modelcycle.data.split import split
from modelcycle.scaffold import init_project
from modelcycle.training.train import prepare


def _bundle_test_rows(project_dir: Path) -> int:
    project = load_project(project_dir)
    frame = prepare(read_source(project.spec.data, project.root).frame, project.spec, notes=[])
    return len(split(frame, project.spec.split, target="rent", task="regression").test)


@pytest.fixture(scope="module")
def project(registered_rent: Path) -> Path:
    """A rent project with rent/1 (linear, champion) and rent/2 (LightGBM, challenger)."""
    return registered_rent


def test_models_list(cli, project: Path) -> None:
    run = cli("models", "list", cwd=project)
    assert run.code == 0, run.text
    assert "rent" in run.out
    assert "champion → 1" in run.out
    assert "challenger → 2" in run.out
    assert "mae" in run.out

    run = cli("models", "list", "--json", cwd=project)
    assert run.code == 0, run.text
    listed = json.loads(run.out)
    assert listed[0]["versions"] == [1, 2]
    assert listed[0]["aliases"] == {"champion": 1, "challenger": 2}


def test_models_show(cli, project: Path) -> None:
    run = cli("models", "show", "rent@champion", cwd=project)
    assert run.code == 0, run.text
    for text in ("rent/1", "champion", "linear (this model)", "dummy (baseline)", "manifest sha256",
                 "area", "neighborhood", "scikit-learn", "models card rent/1"):  # fmt: skip
        assert text in run.out, text

    run = cli("models", "show", "models:/rent/2", "--json", cwd=project)
    assert run.code == 0, run.text
    shown = json.loads(run.out)
    assert shown["version"] == 2
    assert shown["aliases"] == ["challenger"]
    assert shown["info"]["candidate"] == "lgbm"
    assert "manifest_sha256" in shown["tags"]


def test_models_compare_on_the_test_split(cli, project: Path) -> None:
    run = cli("models", "compare", "rent/1", "rent@challenger", cwd=project)
    assert run.code == 0, run.text
    assert "rent/1 vs rent/2" in run.out
    assert "test rows" in run.out
    assert "mae" in run.out
    assert "(deciding)" in run.out

    run = cli("models", "compare", "rent/1", "rent/2", "--json", cwd=project)
    assert run.code == 0, run.text
    outcome = json.loads(run.out)
    assert outcome["refs"] == ["rent/1", "rent/2"]
    # the test part of training's split: the rent spec's 20 % of the cleaned rows
    expected = _bundle_test_rows(project)
    assert outcome["rows"] == expected
    assert 100 < expected <= 120
    assert set(outcome["metrics"]["rent/1"]) == {"mae", "rmse", "r2", "mape"}
    assert outcome["better"]["mae"] in ("rent/1", "rent/2")


def test_models_card(cli, project: Path) -> None:
    run = cli("models", "card", "rent/2", cwd=project)
    assert run.code == 0, run.text
    for text in ("Model card: rent", "Intended use", "Metrics vs baseline", "Limitations",
                 "Library versions", "lgbm"):  # fmt: skip
        assert text in run.out, text


def test_models_alias_set(cli, project: Path) -> None:
    run = cli("models", "alias", "set", "rent", "2", "staging", cwd=project)
    assert run.code == 0, run.text
    assert "rent@staging → version 2" in run.out
    run = cli("models", "show", "rent@staging", "--json", cwd=project)
    assert json.loads(run.out)["version"] == 2

    run = cli("models", "alias", "set", "rent", "9", "staging", cwd=project)
    assert run.code == 2
    assert "has no version 9 (versions: 1, 2)" in run.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "rent/7"), "model 'rent' has no version 7 (versions: 1, 2)"),
        (("show", "nope"), "there is no registered model 'nope' (registered models: rent)"),
        (("card", "rent@prod"), "model 'rent' has no alias 'prod'"),
        (("show", "rent/two"), "is not a positive whole number"),
        (("compare", "rent/1", "rent/5"), "has no version 5"),
        (("alias", "set", "rent", "1", "latest"), "'latest' is not a valid alias"),
    ],
)
def test_bad_references_give_one_message(
    cli, project: Path, args: tuple[str, ...], message: str
) -> None:
    run = cli("models", *args, cwd=project)
    assert run.code == 2, run.text
    assert message in run.err
    assert "Traceback" not in run.text


def test_unreachable_store(cli, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCYCLE_MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    run = cli("models", "list", cwd=project)
    assert run.code == 2, run.text
    assert "cannot reach the MLflow store at http://127.0.0.1:1" in run.err
    assert "hint:" in run.err


def test_a_project_without_models(cli, tmp_path: Path) -> None:
    root = init_project(tmp_path / "fresh", example="rent", rows=60).root
    run = cli("models", "list", cwd=root)
    assert run.code == 0, run.text
    assert "No registered models" in run.out
    run = cli("models", "show", "fresh", cwd=root)
    assert run.code == 2
    assert "there is no MLflow store" in run.err
    assert not (root / ".modelcycle" / "mlflow.db").exists()  # reading never creates a store
