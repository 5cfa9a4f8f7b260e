"""The model registry against a real MLflow SQLite store: register, alias, load, verify, compare.

One store per module (creating it migrates a SQLite database, a few seconds); tests that change a
model's artifacts or aliases register their own model name, so no test depends on another.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelcycle.data.schema import FeatureSchema
from modelcycle.metrics import compute_metrics
from modelcycle.registry.bundle import ModelBundle
from modelcycle.registry.manifest import (
    MANIFEST_FILE,
    PIPELINE_FILE,
    RegistryError,
    json_ready,
    sha256_bytes,
)
from modelcycle.registry.store import (
    CHALLENGER,
    CHAMPION,
    TAG_CANDIDATE,
    TAG_DATA,
    TAG_MANIFEST,
    TAG_METRIC_VALUE,
    TAG_SPEC,
    compare,
    describe,
    ensure_experiment,
    list_models,
    load_model,
    parse_ref,
    register,
    set_alias,
)

# ------------------------------------------------------------------------------- bundle makers


def rent_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Apartments: an int column, a float column with NaN, a category with None, a rent."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "area": rng.integers(20, 200, n),
            "rooms": rng.integers(1, 6, n).astype(float),
            "city": rng.choice(["north", "south", "east"], n).astype(object),
            "address": [f"street {i}" for i in range(n)],
        }
    )
    frame.loc[::17, "rooms"] = np.nan
    frame.loc[::13, "city"] = None
    level = frame["city"].map({"north": 300, "south": 100, "east": 0}).fillna(150)
    frame["rent"] = frame["area"] * 12 + level + rng.normal(0, 40, n)
    return frame


def late_frame(n: int = 400, seed: int = 1) -> pd.DataFrame:
    """Tenants: will they pay late (``yes`` / ``no``)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(3000, 800, n).round(0),
            "age": rng.integers(18, 80, n),
            "job": rng.choice(["employee", "freelance", "none"], n).astype(object),
        }
    )
    frame.loc[::19, "income"] = np.nan
    risk = -0.001 * frame["income"].fillna(3000) + (frame["job"] == "none") * 1.5 + 1.5
    frame["late"] = np.where(rng.random(n) < 1 / (1 + np.exp(-risk)), "yes", "no")
    return frame


def _pipeline(numeric: list[str], categorical: list[str], estimator: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    return Pipeline([("pre", pre), ("model", estimator)])


def make_regression_bundle(name: str = "rent", seed: int = 0, trees: int = 30) -> ModelBundle:
    """A LightGBM rent model with metrics vs a median baseline."""
    from lightgbm import LGBMRegressor

    frame = rent_frame(seed=seed)
    schema = FeatureSchema.infer(frame, target="rent", drop=["address"], source="synthetic")
    features = schema.feature_names
    pipeline = _pipeline(
        ["area", "rooms"],
        ["city"],
        LGBMRegressor(n_estimators=trees, random_state=seed, verbose=-1),
    ).fit(frame[features], frame["rent"])
    y = frame["rent"].to_numpy()
    model = compute_metrics("regression", y, pipeline.predict(frame[features]))
    dummy = compute_metrics("regression", y, np.full(len(y), np.median(y)))
    slices = [
        {"feature": "city", "value": value, "count": int((frame["city"] == value).sum()), **model}
        for value in ("north", "south", "east")
    ]
    slices[1]["mae"] = 999.0  # the worst slice
    return ModelBundle(
        name=name,
        pipeline=pipeline,
        schema=schema,
        task="regression",
        metric="mae",
        metrics={"model": model, "dummy": dummy},
        baseline="dummy",
        profile={"area": {"bins": [20, 100, 200], "counts": [150, 150]}},
        candidate="lgbm",
        params={"n_estimators": trees, "random_state": np.int64(seed)},
        data_digest=f"digest-{seed}",
        spec_hash="spec-hash",
        training_rows=len(frame),
        input_example=frame[features].head(5),
        slices=slices,
        extra={"budget": "5 trials"},
    )


def make_classification_bundle(name: str = "late", threshold: float = 0.3) -> ModelBundle:
    """A logistic-regression late-payment model with a tuned threshold."""
    from sklearn.linear_model import LogisticRegression

    frame = late_frame()
    schema = FeatureSchema.infer(frame, target="late")
    features = schema.feature_names
    pipeline = _pipeline(["income", "age"], ["job"], LogisticRegression(max_iter=500)).fit(
        frame[features], frame["late"]
    )
    classes = list(pipeline.classes_)
    proba = pipeline.predict_proba(frame[features])[:, 1]
    y = frame["late"].to_numpy()
    model = compute_metrics("classification", y, proba, threshold=threshold, classes=classes)
    prior = compute_metrics(
        "classification", y, np.full(len(y), (y == "yes").mean()), classes=classes
    )
    return ModelBundle(
        name=name,
        pipeline=pipeline,
        schema=schema,
        task="classification",
        metric="f1",
        metrics={"model": model, "prior": prior},
        baseline="prior",
        profile={},
        candidate="linear",
        params={"C": 1.0},
        data_digest="late-digest",
        spec_hash="late-spec",
        training_rows=len(frame),
        input_example=frame[features].head(5),
        threshold=threshold,
        classes=classes,
    )


# ------------------------------------------------------------------------------------ fixtures


@dataclass
class Store:
    uri: str
    artifact_dir: Path
    cwd: Path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A store holding rent v1 (champion), rent v2 (challenger) and late v1 (champion)."""
    root = tmp_path_factory.mktemp("registry")
    cwd = root / "elsewhere"
    cwd.mkdir()
    before = Path.cwd()
    os.chdir(cwd)  # registering must not write ./mlruns into the current folder
    try:
        found = Store(
            f"sqlite:///{root / 'project' / '.modelcycle' / 'mlflow.db'}", root / "art", cwd
        )
        (root / "project").mkdir()
        register(
            make_regression_bundle(seed=0), tracking_uri=found.uri, artifact_dir=found.artifact_dir
        )
        register(
            make_regression_bundle(seed=1, trees=60),
            tracking_uri=found.uri,
            artifact_dir=found.artifact_dir,
        )
        register(
            make_classification_bundle(), tracking_uri=found.uri, artifact_dir=found.artifact_dir
        )
    finally:
        os.chdir(before)
    return found


@pytest.fixture
def mlflow_uri(store: Store, monkeypatch: pytest.MonkeyPatch) -> str:
    """The process-global MLflow URI pointed at the store, as a plain MLflow user would."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils

    monkeypatch.setattr(utils, "_tracking_uri", store.uri)
    monkeypatch.setattr(registry_utils, "_registry_uri", store.uri)  # not left from earlier tests
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    return store.uri


def stored_files(store: Store, name: str, version: int, file: str) -> Path:
    """The bundle file ``file`` of ``name/version`` inside the artifact store."""
    source = describe(f"{name}/{version}", tracking_uri=store.uri).source
    model_id = source.rsplit("/", 1)[-1]
    matches = list((store.artifact_dir / "mlflow").rglob(f"{model_id}/artifacts/artifacts/{file}"))
    assert len(matches) == 1, matches
    return matches[0]


# ----------------------------------------------------------------------------------- register


def test_versions_aliases_and_tags(store: Store) -> None:
    models = {m.name: m for m in list_models(store.uri)}
    assert set(models) == {"rent", "late"}
    assert models["rent"].versions == [1, 2]
    assert models["rent"].aliases == {CHAMPION: 1, CHALLENGER: 2}
    assert models["late"].aliases == {CHAMPION: 1}
    assert models["rent"].metric == "mae"
    assert models["rent"].metric_value is not None

    first = describe("rent/1", tracking_uri=store.uri)
    assert first.aliases == [CHAMPION]
    assert first.tags[TAG_MANIFEST] == first.bundle.manifest_sha256
    assert first.tags[TAG_DATA] == "digest-0"
    assert first.tags[TAG_SPEC] == "spec-hash"
    assert first.tags[TAG_CANDIDATE] == "lgbm"
    assert float(first.tags[TAG_METRIC_VALUE]) == pytest.approx(
        first.info["metrics"]["model"]["mae"]
    )
    assert describe("rent/2", tracking_uri=store.uri).aliases == [CHALLENGER]


def test_artifacts_live_in_the_artifact_dir(store: Store) -> None:
    assert not (store.cwd / "mlruns").exists()
    pipelines = list((store.artifact_dir / "mlflow").rglob(PIPELINE_FILE))
    assert len(pipelines) == 3


def test_manifest_records_digests_libraries_and_trusted_types(store: Store) -> None:
    model = load_model("rent/1", tracking_uri=store.uri)
    manifest = model.manifest
    assert manifest["format"] == 1
    assert set(manifest["files"]) == {
        "pipeline.skops", "schema.json", "profile.json", "metrics.json", "card.md",
        "input_example.json",
    }  # fmt: skip
    for lib in ("python", "modelcycle", "scikit-learn", "lightgbm", "numpy", "pandas", "mlflow",
                "skops", "imbalanced-learn"):  # fmt: skip
        assert manifest["libraries"][lib] not in ("", None)
    assert "lightgbm.sklearn.LGBMRegressor" in manifest["skops_trusted_types"]
    assert manifest["data_digest"] == "digest-0"
    assert manifest["spec_hash"] == "spec-hash"
    assert model.params == {"n_estimators": 30, "random_state": 0}  # numpy ints made JSON-ready
    assert model.profile["area"]["counts"] == [150, 150]


def test_card_has_metrics_vs_baseline_and_worst_slices(store: Store) -> None:
    model = load_model("rent/1", tracking_uri=store.uri)
    card = model.card
    for section in ("## Intended use", "## Data", "## Metrics vs baseline", "## Slices",
                    "## Decision threshold", "## Limitations", "## Library versions"):  # fmt: skip
        assert section in card
    assert "lgbm (this model)" in card
    assert "dummy (baseline)" in card
    assert f"{model.metrics['model']['mae']:,.4g}" in card
    assert "better" in card  # the improvement column
    assert "| city | south | " in card.split("## Slices")[1]  # the worst slice is listed
    assert "digest-0" in card
    assert "| area | numeric |" in card
    late = load_model("late/1", tracking_uri=store.uri)
    assert "**0.3**" in late.card


# -------------------------------------------------------------------------------- predictions


def test_pyfunc_and_loader_agree_on_regression(store: Store, mlflow_uri: str) -> None:
    import mlflow

    frame = rent_frame(n=120, seed=7).drop(columns=["rent"])
    frame.loc[::11, "area"] = np.nan  # an int column with a missing value: float now
    ours = load_model("rent/2", tracking_uri=store.uri).predict(frame)
    theirs = mlflow.pyfunc.load_model("models:/rent/2").predict(frame)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    assert list(ours.columns) == ["prediction"]
    ints = rent_frame(n=30, seed=8).drop(columns=["rent"])  # int64 area, as read from a CSV
    ints["city"] = ints["city"].astype("str")  # pandas' string dtype, as read_table gives
    pd.testing.assert_frame_equal(
        load_model("rent/2", tracking_uri=store.uri).predict(ints),
        mlflow.pyfunc.load_model("models:/rent/2").predict(ints),
        check_exact=True,
    )


def test_pyfunc_and_loader_agree_on_binary_with_threshold(store: Store, mlflow_uri: str) -> None:
    import mlflow

    frame = late_frame(n=200, seed=5).drop(columns=["late"])
    model = load_model("late@champion", tracking_uri=store.uri)
    ours = model.predict(frame)
    theirs = mlflow.pyfunc.load_model("models:/late/1").predict(frame)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    assert list(ours.columns) == ["prediction", "proba_no", "proba_yes"]
    assert model.threshold == 0.3
    expected = np.where(ours["proba_yes"] >= 0.3, "yes", "no")
    assert (ours["prediction"].to_numpy() == expected).all()
    # the threshold, not argmax, decided: more rows are "yes" than have a probability >= 0.5
    assert (ours["prediction"] == "yes").sum() > (ours["proba_yes"] >= 0.5).sum()


def test_missing_features_are_named(store: Store) -> None:
    from modelcycle.errors import DataError

    model = load_model("rent/1", tracking_uri=store.uri)
    with pytest.raises(DataError, match="rooms"):
        model.predict(rent_frame(n=5).drop(columns=["rooms"]))


# ----------------------------------------------------------------------------------- tampering


def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("file", ["pipeline.skops", "schema.json"])
def test_tampered_artifact_is_refused_by_both_loaders(
    store: Store, mlflow_uri: str, file: str
) -> None:
    import mlflow

    name = f"tamper-{file.split('.', maxsplit=1)[0]}"
    register(make_regression_bundle(name), tracking_uri=store.uri, artifact_dir=store.artifact_dir)
    load_model(f"{name}/1", tracking_uri=store.uri)  # intact: loads
    _tamper(stored_files(store, name, 1, file))
    with pytest.raises(RegistryError, match=rf"{file} of {name}/1 does not match its recorded"):
        load_model(f"{name}/1", tracking_uri=store.uri)
    with pytest.raises(RegistryError, match=file):
        describe(f"{name}@champion", tracking_uri=store.uri)
    with pytest.raises(Exception, match=file):  # MLflow may wrap it
        mlflow.pyfunc.load_model(f"models:/{name}/1")


def test_rewritten_manifest_is_refused(store: Store, mlflow_uri: str) -> None:
    """An attacker who swaps the pipeline and rewrites the manifest's digests is still caught."""
    import mlflow

    name = "tamper-manifest"
    register(make_regression_bundle(name), tracking_uri=store.uri, artifact_dir=store.artifact_dir)
    pipeline = stored_files(store, name, 1, PIPELINE_FILE)
    manifest_path = stored_files(store, name, 1, MANIFEST_FILE)
    _tamper(pipeline)
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][PIPELINE_FILE]["sha256"] = sha256_bytes(pipeline.read_bytes())
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(RegistryError, match=r"manifest\.json of tamper-manifest/1 does not match"):
        load_model(f"{name}/1", tracking_uri=store.uri)
    with pytest.raises(Exception, match=r"manifest\.json"):  # MLflow may wrap it
        mlflow.pyfunc.load_model(f"models:/{name}/1")


def test_foreign_types_are_refused_before_registering(store: Store) -> None:
    from sklearn.preprocessing import FunctionTransformer

    bundle = make_regression_bundle("foreign")
    bundle.pipeline.steps.insert(0, ("path", FunctionTransformer(os.path.basename)))
    with pytest.raises(RegistryError, match="does not load"):
        register(bundle, tracking_uri=store.uri, artifact_dir=store.artifact_dir)


# ------------------------------------------------------------------------------ references


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope", r"no registered model 'nope' \(registered models: .*late.*rent"),
        ("rent/9", r"model 'rent' has no version 9 \(versions: 1, 2\)"),
        ("rent@prod", r"model 'rent' has no alias 'prod' \(aliases: challenger → 2, champion → 1"),
        ("rent/x", "not a positive whole number"),
        ("a/b/c", "is not a model reference"),
        ("", "is not a model reference"),
    ],
)
def test_unknown_references_list_what_exists(store: Store, ref: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        load_model(ref, tracking_uri=store.uri)


def test_reference_forms(store: Store) -> None:
    assert parse_ref("models:/rent/2") == parse_ref("rent/2")
    assert parse_ref("models:/rent@champion").alias == "champion"
    assert load_model("rent", tracking_uri=store.uri).version == 1  # bare name: the champion
    assert load_model("models:/rent/2", tracking_uri=store.uri).version == 2
    assert load_model("rent@challenger", tracking_uri=store.uri).version == 2


@pytest.mark.parametrize(
    "uri",
    ["http://127.0.0.1:1", "sqlite:////nonexistent-folder/deeper/mlflow.db", "no-scheme-here"],
)
def test_unreachable_store_fails_fast(uri: str) -> None:
    start = time.perf_counter()
    with pytest.raises(RegistryError) as caught:
        load_model("rent/1", tracking_uri=uri)
    assert time.perf_counter() - start < 10
    assert "Traceback" not in str(caught.value)
    if uri.startswith("http"):
        assert "cannot reach the MLflow store at http://127.0.0.1:1" in str(caught.value)


def test_register_into_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="does not exist"):
        register(
            make_regression_bundle("x"),
            tracking_uri=f"sqlite:///{tmp_path / 'a' / 'b' / 'mlflow.db'}",
            artifact_dir=tmp_path,
        )


def test_list_on_a_store_not_created_yet_is_empty(tmp_path: Path) -> None:
    assert list_models(f"sqlite:///{tmp_path / 'mlflow.db'}") == []


# ------------------------------------------------------------------------- aliases and runs


def test_set_alias_moves_it_and_validates(store: Store) -> None:
    assert set_alias("rent", 1, "staging", tracking_uri=store.uri) is None
    assert set_alias("rent", 2, "staging", tracking_uri=store.uri) == 1
    assert load_model("rent@staging", tracking_uri=store.uri).version == 2
    with pytest.raises(RegistryError, match=r"no version 7 \(versions: 1, 2\)"):
        set_alias("rent", 7, "staging", tracking_uri=store.uri)
    with pytest.raises(RegistryError, match="not a valid alias"):
        set_alias("rent", 1, "latest", tracking_uri=store.uri)
    with pytest.raises(RegistryError, match="no registered model 'ghost'"):
        set_alias("ghost", 1, "staging", tracking_uri=store.uri)


def test_register_inside_the_active_run(store: Store, mlflow_uri: str) -> None:
    """``train`` registers inside its parent run: the version points at that run."""
    import mlflow

    experiment = ensure_experiment(
        "in-run", tracking_uri=store.uri, artifact_dir=store.artifact_dir
    )
    with mlflow.start_run(experiment_id=experiment) as run:
        made = register(
            make_regression_bundle("in-run"),
            tracking_uri=store.uri,
            artifact_dir=store.artifact_dir,
        )
        assert mlflow.active_run() is not None  # the caller's run is left running
    assert made.run_id == run.info.run_id
    assert describe("in-run/1", tracking_uri=store.uri).run_id == run.info.run_id
    assert made.aliases == [CHAMPION]
    assert made.model_uri == "models:/in-run/1"


def test_compare_scores_both_on_the_same_rows(store: Store) -> None:
    frame = rent_frame(n=200, seed=3)
    frame.loc[::10, "rent"] = np.nan  # rows without a target are left out
    outcome = compare("rent/1", "rent@challenger", frame, frame["rent"], tracking_uri=store.uri)
    assert outcome.refs == ("rent/1", "rent/2")
    assert outcome.rows == 180
    kept = frame[frame["rent"].notna()]
    for ref in outcome.refs:
        expected = compute_metrics(
            "regression",
            kept["rent"],
            load_model(ref, tracking_uri=store.uri).predict(kept)["prediction"],
        )
        assert outcome.metrics[ref] == pytest.approx(expected)
    assert outcome.better("mae") in outcome.refs
    with pytest.raises(RegistryError, match="regression model and late/1 a classification"):
        compare("rent/1", "late/1", frame, frame["rent"], tracking_uri=store.uri)


def test_json_ready_makes_strict_json() -> None:
    value = {"a": np.float64("nan"), "b": [np.int32(3), np.inf], "c": np.array([1.5, 2.0])}
    assert (
        json.dumps(json_ready(value), allow_nan=False)
        == '{"a": null, "b": [3, null], "c": [1.5, 2.0]}'
    )


# ---------------------------------------------------------------------------------- concurrency

_WORKER = textwrap.dedent(
    """
    import importlib.util, sys, time
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("registry_tests", sys.argv[1])
    tests = sys.modules["registry_tests"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)
    from modelcycle.registry.store import register
    bundle = tests.make_regression_bundle("race", seed=int(sys.argv[4]))
    ready, go = Path(sys.argv[5] + ".ready"), Path(sys.argv[5] + ".go")
    ready.touch()
    while not go.exists():
        time.sleep(0.01)
    made = register(bundle, tracking_uri=sys.argv[2], artifact_dir=Path(sys.argv[3]))
    print(made.version)
    """
)


@pytest.mark.slow
def test_concurrent_registrations_make_two_intact_versions(tmp_path: Path) -> None:
    """Two processes register the same new model on a new store at the same moment."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    art = str(tmp_path / "art")
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                __file__,
                uri,
                art,
                str(seed),
                str(tmp_path / f"w{seed}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for seed in (0, 1)
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"w{s}.ready").exists() for s in (0, 1)):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
        time.sleep(0.05)
    for seed in (0, 1):
        (tmp_path / f"w{seed}.go").touch()
    results = [w.communicate(timeout=120) for w in workers]
    for worker, (_, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err[-3000:]
    assert sorted(int(out.split()[-1]) for out, _ in results) == [1, 2]
    summary = list_models(uri)[0]
    assert summary.versions == [1, 2]
    assert summary.aliases == {CHAMPION: 1, CHALLENGER: 2}
    digests = {load_model(f"race/{v}", tracking_uri=uri).manifest["data_digest"] for v in (1, 2)}
    assert digests == {"digest-0", "digest-1"}  # both intact, and distinct
    frame = rent_frame(n=10)
    for version in (1, 2):
        assert (
            load_model(f"race/{version}", tracking_uri=uri)
            .predict(frame)["prediction"]
            .notna()
            .all()
        )


# ----------------------------------------------------------------------------- the OOD detector


def test_ood_detector_round_trips_and_is_digested(store: Store) -> None:
    """A bundle with a detector registers and loads it; scores are identical; tampering fails."""
    from modelcycle.monitoring.ood import OODDetector
    from modelcycle.registry.manifest import OOD_FILE

    bundle = make_regression_bundle("rent-ood")
    frame = rent_frame(seed=0)[bundle.schema.input_names]
    bundle.ood = OODDetector(n_estimators=20).fit(frame)
    register(bundle, tracking_uri=store.uri, artifact_dir=store.artifact_dir)
    loaded = load_model("rent-ood/1", tracking_uri=store.uri)
    assert loaded.ood is not None
    assert OOD_FILE in loaded.manifest["files"]
    live = rent_frame(seed=5)[bundle.schema.input_names]
    live.loc[0, "area"] = 10_000
    before, after = bundle.ood.score(live), loaded.ood.score(live)
    np.testing.assert_array_equal(before.score, after.score)
    np.testing.assert_array_equal(before.flag, after.flag)
    assert after.flag[0]
    assert load_model("rent/1", tracking_uri=store.uri).ood is None  # bundles without one

    _tamper(stored_files(store, "rent-ood", 1, OOD_FILE))
    with pytest.raises(RegistryError, match=rf"{OOD_FILE} of rent-ood/1 does not match"):
        load_model("rent-ood/1", tracking_uri=store.uri)
