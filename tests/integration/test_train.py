"""``train`` end to end against a real MLflow SQLite store inside the project.

Real data from the examples, real fits, real tracking and registration; every training is tiny
(hundreds to a few thousand rows, a handful of trials, one or two candidates).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelcycle.config.settings import Settings
from modelcycle.config.spec import Project, load_project, parse_budget
from modelcycle.data.io import read_source
from modelcycle.data.schema import schema_for_spec
from modelcycle.data.split import split
from modelcycle.metrics import compute_metrics
from modelcycle.registry.store import CHALLENGER, CHAMPION, list_models, load_model
from modelcycle.scaffold import init_project
from modelcycle.training.train import TrainOptions, TrainOutcome, prepare, train

pytestmark = pytest.mark.slow

PARENT_TAG = "mlflow.parentRunId"


def _edit_spec(root: Path, old: str, new: str) -> None:
    path = root / "modelcycle.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def _options(budget: str, candidates: list[str], **kw: bool) -> TrainOptions:
    return TrainOptions(budget=parse_budget(budget), candidates=candidates, **kw)


def _test_part(project: Project) -> tuple[pd.DataFrame, pd.Series]:
    """The test rows ``train`` evaluated on: same reading, cleaning and split."""
    spec = project.spec
    dataset = read_source(spec.data, project.root, None)
    frame = prepare(dataset.frame, spec, [])
    schema = schema_for_spec(frame, spec)
    task = schema.task or "regression"
    parts = split(
        frame, spec.split, target=spec.target, task=task,
        time_column=spec.time_column, id_column=spec.id_column,
    )  # fmt: skip
    return parts.test[schema.input_names], parts.test[spec.target]


# ------------------------------------------------------------------------------- rent, tracked


@dataclass
class Trained:
    root: Path
    project: Project
    uri: str
    first: TrainOutcome
    second: TrainOutcome


@pytest.fixture(scope="module")
def rent(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The rent example trained twice (linear + lgbm, 4 trials), tracked and registered."""
    root = tmp_path_factory.mktemp("rent")
    init_project(root, example="rent", rows=800, seed=1)
    project = load_project(root)
    settings = Settings.load(root)
    options = _options("4 trials", ["linear", "lgbm"])
    import mlflow

    before = (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
    first = train(project, settings, options)
    second = train(project, settings, options)
    # training leaves MLflow's process-wide state as it found it (notebooks, tests, the demo)
    assert (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == before
    assert settings.mlflow_tracking_uri == f"sqlite:///{root / '.modelcycle' / 'mlflow.db'}"
    return Trained(root, project, settings.mlflow_tracking_uri, first, second)


@pytest.fixture
def client(rent: Trained) -> object:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=rent.uri, registry_uri=rent.uri)


def test_first_train_registers_version_1_as_champion(rent: Trained) -> None:
    outcome = rent.first
    assert outcome.evaluation.passed, outcome.evaluation.reason
    assert outcome.registered is not None
    assert outcome.registered.name == "rent"
    assert outcome.registered.version == 1
    assert outcome.registered.aliases == [CHAMPION]
    assert outcome.registered.model_uri == "models:/rent/1"
    assert outcome.registered.run_id == outcome.run_id  # logged inside the train's parent run
    assert outcome.report.is_file()
    assert (rent.root / ".modelcycle" / "mlflow.db").is_file()
    assert not (rent.root / "mlruns").exists()


def test_second_train_is_the_challenger(rent: Trained) -> None:
    assert rent.second.registered is not None
    assert rent.second.registered.version == 2
    assert rent.second.registered.aliases == [CHALLENGER]
    [summary] = list_models(rent.uri)
    assert summary.name == "rent"
    assert summary.versions == [1, 2]
    assert summary.aliases == {CHAMPION: 1, CHALLENGER: 2}
    assert load_model("rent@champion", tracking_uri=rent.uri).version == 1
    # same data, spec and seed: the same numbers
    assert rent.second.evaluation.winner_metrics == pytest.approx(
        rent.first.evaluation.winner_metrics
    )


def test_one_parent_run_per_train_with_nested_runs(rent: Trained, client) -> None:
    experiment = client.get_experiment_by_name("rent")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = {r.info.run_id for r in runs if PARENT_TAG not in r.data.tags}
    assert parents == {rent.first.run_id, rent.second.run_id}  # registering adds no run

    by_parent: dict[str, list[object]] = {}
    for run in runs:
        by_parent.setdefault(run.data.tags.get(PARENT_TAG, ""), []).append(run)
    children = {r.info.run_name: r for r in by_parent[rent.first.run_id]}
    assert set(children) == {"baseline_dummy", "baseline_linear", "linear", "lgbm"}
    assert children["baseline_dummy"].data.tags["kind"] == "baseline"
    assert children["lgbm"].data.tags["kind"] == "candidate"

    trials = rent.first.evaluation.trials
    assert len(trials) == 4  # 4 trials shared by 2 candidates
    for name in ("linear", "lgbm"):
        nested = by_parent.get(children[name].info.run_id, [])
        expected = {f"{name}-trial-{n}" for n in trials[trials["candidate"] == name]["number"]}
        assert {r.info.run_name for r in nested} == expected
        assert len(expected) == 2
        for trial_run in nested:
            assert trial_run.data.tags["state"] in {"complete", "pruned"}
            if trial_run.data.tags["state"] == "complete":
                assert "valid_mae" in trial_run.data.metrics
        assert "valid_mae" in children[name].data.metrics
    for name in ("baseline_dummy", "baseline_linear"):
        assert by_parent.get(children[name].info.run_id, []) == []  # baselines are not tuned
        assert "valid_mae" in children[name].data.metrics
    assert children["lgbm"].data.params["n_estimators"]  # the chosen params are logged


def test_parent_run_has_dataset_spec_report_and_tags(rent: Trained, client, tmp_path) -> None:
    run = client.get_run(rent.first.run_id)
    tags = run.data.tags
    assert tags["modelcycle.spec_hash"] == rent.project.spec_hash
    assert tags["modelcycle.task"] == "regression"
    assert tags["modelcycle.winner"] == rent.first.evaluation.winner
    assert tags["modelcycle.passed"] == "True"
    assert run.data.params["metric"] == "mae"
    assert run.data.params["budget"] == "4 trials"
    assert run.data.params["candidates"] == "linear,lgbm"

    [dataset_input] = run.inputs.dataset_inputs
    input_tags = {t.key: t.value for t in dataset_input.tags}
    assert input_tags["modelcycle_digest"] == rent.first.schema.data_digest
    assert rent.first.schema.data_digest
    assert dataset_input.dataset.name == "rent"
    assert "rent_apartments.csv" in dataset_input.dataset.source

    top = {a.path for a in client.list_artifacts(rent.first.run_id)}
    assert "modelcycle.toml" in top
    reports = {a.path for a in client.list_artifacts(rent.first.run_id, "reports")}
    assert "reports/evaluation.html" in reports
    spec = client.download_artifacts(rent.first.run_id, "modelcycle.toml", str(tmp_path))
    assert Path(spec).read_text(encoding="utf-8") == rent.project.spec_path.read_text(
        encoding="utf-8"
    )
    report = client.download_artifacts(rent.first.run_id, "reports/evaluation.html", str(tmp_path))
    assert "<html" in Path(report).read_text(encoding="utf-8").lower()


def test_both_loaders_predict_the_same_and_reproduce_the_test_metrics(
    rent: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils

    monkeypatch.setattr(utils, "_tracking_uri", rent.uri)
    monkeypatch.setattr(registry_utils, "_registry_uri", rent.uri)  # not left from earlier tests
    monkeypatch.setenv("MLFLOW_TRACKING_URI", rent.uri)
    X_test, y_test = _test_part(rent.project)  # noqa: N806
    assert len(X_test) == len(rent.first.evaluation.y_test)
    ours = load_model("rent@champion", tracking_uri=rent.uri)
    assert ours.version == 1
    assert ours.candidate == rent.first.evaluation.winner
    theirs = mlflow.pyfunc.load_model("models:/rent/1")
    mine = ours.predict(X_test)
    pd.testing.assert_frame_equal(mine, theirs.predict(X_test), check_exact=True)
    np.testing.assert_allclose(
        mine["prediction"].to_numpy(), rent.first.pipeline.predict(X_test), rtol=1e-12
    )
    metrics = compute_metrics("regression", y_test, mine["prediction"])
    assert metrics == pytest.approx(rent.first.evaluation.winner_metrics)
    assert ours.metrics["model"]["mae"] == pytest.approx(metrics["mae"])


# ---------------------------------------------------------------------------- classification


def test_classification_registers_a_tuned_threshold(tmp_path: Path) -> None:
    """The imbalanced late-payment example: class weights, PR AUC, a tuned threshold.

    One linear candidate with one trial is the logistic baseline itself; with ``margin = 0``
    "at least as good as the best baseline" holds exactly, so registration does not depend on
    how a few dozen test positives fall.
    """
    root = tmp_path / "late"
    init_project(root, example="rent-default", rows=3000)
    with (root / "modelcycle.toml").open("a", encoding="utf-8") as spec:
        spec.write("\n[training]\nmargin = 0.0\n")
    project = load_project(root)
    assert project.spec.imbalance.strategy == "class_weight"
    assert project.spec.metric == "pr_auc"
    settings = Settings.load(root)
    outcome = train(project, settings, _options("1 trials", ["linear"], track=False))
    ev = outcome.evaluation
    assert ev.task == "classification"
    assert ev.classes == [0, 1]
    assert ev.metric == "pr_auc"
    assert ev.winner_metrics["pr_auc"] > ev.result("baseline_dummy").test_metrics["pr_auc"]
    assert isinstance(ev.threshold, float)
    assert 0.0 < ev.threshold < 1.0
    assert outcome.registered is not None, ev.reason
    assert settings.mlflow_tracking_uri is not None
    model = load_model("rent_default/1", tracking_uri=settings.mlflow_tracking_uri)
    assert model.threshold == pytest.approx(ev.threshold)
    assert model.classes == [0, 1]
    X_test, _ = _test_part(project)  # noqa: N806
    out = model.predict(X_test)
    assert ((out["proba_1"] >= model.threshold) == (out["prediction"] == 1)).all()


# ------------------------------------------------------------------------------ not registered


def test_a_candidate_below_the_margin_is_not_registered(tmp_path: Path) -> None:
    root = tmp_path / "strict"
    init_project(root, example="rent", rows=800, seed=1)
    _edit_spec(root, "margin = 0.02", "margin = 0.99")
    project = load_project(root)
    settings = Settings.load(root)
    outcome = train(project, settings, _options("1 trials", ["lgbm"]))
    ev = outcome.evaluation
    assert not ev.passed
    assert outcome.registered is None
    winner, baseline = ev.winner_metrics["mae"], ev.baseline_metrics["mae"]
    for word in ("does not beat", ev.winner, ev.baseline, "mae", f"{winner:.4g}",
                 f"{baseline:.4g}", "+99.0%"):  # fmt: skip
        assert word in ev.reason, ev.reason
    assert settings.mlflow_tracking_uri is not None
    assert (root / ".modelcycle" / "mlflow.db").is_file()  # the store exists (tracking) ...
    assert list_models(settings.mlflow_tracking_uri) == []  # ... and holds no model
    from mlflow import MlflowClient

    run = MlflowClient(settings.mlflow_tracking_uri).get_run(outcome.run_id)
    assert run.data.tags["modelcycle.passed"] == "False"
