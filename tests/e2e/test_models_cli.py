"""``modelcycle models``: list, show, compare, card and alias set, as a user runs them.

The project is the rent example; its two versions are registered directly from the project's data
(a linear model, then a LightGBM model), so these tests do not depend on ``modelcycle train``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcycle.config.settings import Settings
from modelcycle.config.spec import load_project
from modelcycle.data.io import read_source
from modelcycle.data.schema import schema_for_spec
from modelcycle.data.split import split
from modelcycle.metrics import compute_metrics
from modelcycle.registry.bundle import ModelBundle
from modelcycle.registry.store import register
from modelcycle.scaffold import init_project
from modelcycle.training.train import prepare


def _bundle(project_dir: Path, estimator: Any, candidate: str) -> ModelBundle:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    project = load_project(project_dir)
    spec = project.spec
    dataset = read_source(spec.data, project.root)
    frame = prepare(dataset.frame, spec, notes=[])  # cleaned as `modelcycle train` does
    schema = schema_for_spec(frame, spec, source=dataset.source, data_digest=dataset.digest)
    parts = split(frame, spec.split, target=spec.target, task="regression")
    features = schema.feature_names
    numeric = [c.name for c in schema.features if c.kind == "numeric"]
    categorical = [c for c in features if c not in numeric]
    train, test = parts.train, parts.test
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    pipeline = Pipeline([("pre", pre), ("model", estimator)]).fit(
        train[features], train[spec.target]
    )
    y = test[spec.target].to_numpy()
    metrics = {
        "model": compute_metrics("regression", y, pipeline.predict(test[features])),
        "dummy": compute_metrics("regression", y, np.full(len(y), train[spec.target].median())),
    }
    return ModelBundle(
        name=spec.name,
        pipeline=pipeline,
        schema=schema,
        task="regression",
        metric="mae",
        metrics=metrics,
        baseline="dummy",
        profile={},
        candidate=candidate,
        params={},
        data_digest=dataset.digest,
        spec_hash=project.spec_hash,
        training_rows=len(train),
        input_example=train[features].head(5),
    )


def _bundle_test_rows(project_dir: Path) -> int:
    project = load_project(project_dir)
    frame = prepare(read_source(project.spec.data, project.root).frame, project.spec, notes=[])
    return len(split(frame, project.spec.split, target="rent", task="regression").test)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rent project with rent/1 (linear, champion) and rent/2 (LightGBM, challenger)."""
    from lightgbm import LGBMRegressor
    from sklearn.linear_model import Ridge

    root = init_project(tmp_path_factory.mktemp("models") / "rent", example="rent", rows=600).root
    settings = Settings.load(root)
    assert settings.mlflow_tracking_uri is not None
    assert settings.artifact_dir is not None
    for estimator, candidate in ((Ridge(), "linear"), (LGBMRegressor(verbose=-1), "lgbm")):
        register(
            _bundle(root, estimator, candidate),
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_dir=settings.artifact_dir,
        )
    return root


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
