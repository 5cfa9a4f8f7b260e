"""The training pipeline pieces: preprocessing from the schema, candidates, cleaning, tuning.

Small synthetic frames only; every model here fits in well under a second.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelcycle.config.spec import Budget, ImbalanceSpec, parse_spec
from modelcycle.data.schema import FeatureSchema
from modelcycle.training.candidates import CANDIDATES, DUMMY, Monotonic, make_pipeline
from modelcycle.training.features import build_preprocessor
from modelcycle.training.train import TrainingError, prepare, resolve_candidates
from modelcycle.training.tune import FitContext, TuneData, tune


@pytest.fixture(autouse=True)
def _one_openmp_thread() -> Any:
    """HistGradientBoosting's OpenMP threads spin-wait on a busy 2-core machine: use one."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "openmp"):
        yield


# ------------------------------------------------------------------------------ preprocessing


def mixed_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Numeric (with gaps), low- and high-cardinality categoricals, a date, a constant, text."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "num": rng.normal(50, 10, n),
            "low": rng.choice(["x", "y", "z"], n).astype(object),
            "high": rng.choice([f"code{i:02d}" for i in range(30)], n).astype(object),
            "when": pd.Series(pd.date_range("2021-01-01", periods=n, freq="D")).dt.strftime(
                "%Y-%m-%d"
            ),
            "const": "same",
            "note": [f"free text number {i}" for i in range(n)],
        }
    )
    frame.loc[::10, "num"] = np.nan
    codes = frame["high"].str[4:].astype(int)
    frame["y"] = frame["num"].fillna(50) * 2 + codes * 5 + rng.normal(0, 1, n)
    return frame


@pytest.fixture(scope="module")
def mixed() -> tuple[pd.DataFrame, FeatureSchema]:
    frame = mixed_frame()
    schema = FeatureSchema.infer(frame, target="y")
    kinds = {c.name: (c.kind, c.role, c.constant) for c in schema.columns}
    assert kinds["num"] == ("numeric", "feature", False)
    assert kinds["low"] == ("categorical", "feature", False)
    assert kinds["high"] == ("categorical", "feature", False)
    assert kinds["when"][0] == "datetime"
    assert kinds["const"][2] is True
    assert kinds["note"][:2] == ("text", "ignored")
    return frame, schema


def test_model_inputs_leave_out_constant_text_and_target(mixed) -> None:
    _, schema = mixed
    assert schema.input_names == ["num", "low", "high", "when"]


@pytest.mark.parametrize("scale", [False, True])
def test_preprocessor_columns(mixed, scale: bool) -> None:
    frame, schema = mixed
    pre = build_preprocessor(schema, scale=scale, task="regression", onehot_max_levels=20)
    out = pre.fit_transform(frame[schema.input_names], frame["y"])
    names = list(pre.get_feature_names_out())
    assert out.shape == (len(frame), len(names))
    assert sorted(n for n in names if n.startswith("onehot__")) == [
        "onehot__low_x", "onehot__low_y", "onehot__low_z",
    ]  # fmt: skip
    assert [n for n in names if n.startswith("target_encoded__")] == ["target_encoded__high"]
    assert [n for n in names if n.startswith("dates__")] == [
        "dates__when_year", "dates__when_month", "dates__when_day_of_week", "dates__when_day_of_year",
    ]  # fmt: skip
    assert "numeric__num" in names
    assert "numeric__missingindicator_num" in names  # num has gaps
    assert not [n for n in names if "const" in n or "note" in n]
    assert np.isfinite(out).all()  # imputed
    if scale:
        column = out[:, names.index("numeric__num")]
        assert abs(column.mean()) < 1e-9
        assert column.std() == pytest.approx(1.0)
    else:
        imputed = out[:, names.index("numeric__num")]
        assert imputed[0] == pytest.approx(np.nanmedian(frame["num"]))
        months = out[:, names.index("dates__when_month")]
        assert set(np.unique(months)) == set(range(1, 11))  # 300 days from 1 January
        years = out[:, names.index("dates__when_year")]
        assert set(np.unique(years)) == {2021.0}


def test_onehot_max_levels_decides_the_encoding(mixed) -> None:
    frame, schema = mixed
    pre = build_preprocessor(schema, scale=False, task="regression", onehot_max_levels=2)
    pre.fit(frame[schema.input_names], frame["y"])
    names = list(pre.get_feature_names_out())
    assert "target_encoded__low" in names  # 3 levels > 2
    assert not [n for n in names if n.startswith("onehot__")]


def test_unseen_categories_and_dates_do_not_fail(mixed) -> None:
    frame, schema = mixed
    inputs = schema.input_names
    pre = build_preprocessor(schema, scale=False, task="regression")
    pre.fit(frame[inputs], frame["y"])
    names = list(pre.get_feature_names_out())
    new = pd.DataFrame(
        {
            "num": [np.nan, 1e6],
            "low": ["never seen", None],
            "high": ["brand-new code", None],
            "when": ["not a date", None],
        }
    )
    out = pre.transform(new)
    assert out.shape == (2, len(names))
    onehot = [names.index(n) for n in names if n.startswith("onehot__")]
    assert (out[0, onehot] == 0).all()  # an unseen level lights no column
    encoded = out[:, names.index("target_encoded__high")]
    assert np.isfinite(encoded).all()  # the unseen level gets the target mean
    assert encoded[0] == pytest.approx(frame["y"].mean(), rel=1e-6)
    assert np.isfinite(out).all()


def test_target_encoding_for_classification(mixed) -> None:
    frame, schema = mixed
    labels = np.where(frame["y"] > frame["y"].median(), "high", "low")
    pre = build_preprocessor(schema, scale=False, task="classification")
    out = pre.fit_transform(frame[schema.input_names], labels)
    names = list(pre.get_feature_names_out())
    assert [n for n in names if n.startswith("target_encoded__")] == ["target_encoded__high"]
    assert out.shape[1] == len(names)


# ------------------------------------------------------------------------------ candidates


def imbalanced_frame(n: int = 600, seed: int = 0, share: float = 0.08) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(0, 1, n),
            "b": rng.normal(0, 1, n),
            "c": rng.choice(["p", "q", "r"], n).astype(object),
        }
    )
    logit = np.log(share / (1 - share)) + 1.5 * frame["a"]
    frame["y"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "late", "on_time")
    return frame


@pytest.fixture(scope="module")
def late() -> tuple[pd.DataFrame, FeatureSchema]:
    frame = imbalanced_frame()
    return frame, FeatureSchema.infer(frame, target="y")


SMALL = {"linear": {}, "hgb": {"max_iter": 30}, "lgbm": {"n_estimators": 30}, "rf": {}}


@pytest.mark.parametrize("name", ["linear", "hgb", "lgbm"])
def test_random_over_resamples_in_fit_only(late, name: str) -> None:
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.pipeline import Pipeline as ImbPipeline

    frame, schema = late
    train, test = frame.iloc[:450], frame.iloc[450:]
    features = schema.feature_names
    pipeline = make_pipeline(
        CANDIDATES[name],
        {**CANDIDATES[name].defaults, **SMALL[name]},
        schema=schema,
        task="classification",
        imbalance=ImbalanceSpec(strategy="random_over"),
        seed=0,
    )
    assert isinstance(pipeline, ImbPipeline)
    assert [step for step, _ in pipeline.steps] == ["preprocess", "resample", "model"]
    sampler = pipeline.named_steps["resample"]
    assert isinstance(sampler, RandomOverSampler)
    pipeline.fit(train[features], train["y"])
    drawn = train["y"].to_numpy()[sampler.sample_indices_]
    counts = pd.Series(drawn).value_counts()
    assert len(drawn) > len(train)  # the minority was over-sampled for the fit ...
    assert counts["late"] == counts["on_time"]
    assert (train["y"] == "late").sum() < (train["y"] == "on_time").sum() / 4
    proba = pipeline.predict_proba(test[features])
    labels = pipeline.predict(test[features])
    assert proba.shape == (len(test), 2)  # ... never at prediction time
    assert len(labels) == len(test)
    if name == "linear":  # a balanced fit moves the probabilities up from the 8% prior
        assert proba[:, list(pipeline.classes_).index("late")].mean() > 0.2


def test_dummy_is_never_resampled(late) -> None:
    from sklearn.pipeline import Pipeline

    _, schema = late
    pipeline = make_pipeline(
        DUMMY, {}, schema=schema, task="classification",
        imbalance=ImbalanceSpec(strategy="random_over"), seed=0,
    )  # fmt: skip
    assert type(pipeline) is Pipeline
    assert "resample" not in pipeline.named_steps


@pytest.mark.parametrize("name", ["linear", "rf", "hgb", "lgbm"])
def test_class_weight_sets_balanced_weights(late, name: str) -> None:
    from sklearn.pipeline import Pipeline

    _, schema = late
    pipeline = make_pipeline(
        CANDIDATES[name],
        dict(CANDIDATES[name].defaults),
        schema=schema,
        task="classification",
        imbalance=ImbalanceSpec(strategy="class_weight"),
        seed=0,
    )
    assert type(pipeline) is Pipeline
    assert "resample" not in pipeline.named_steps
    assert pipeline.named_steps["model"].class_weight == "balanced"
    none = make_pipeline(
        CANDIDATES[name], {}, schema=schema, task="classification",
        imbalance=ImbalanceSpec(strategy="none"), seed=0,
    )  # fmt: skip
    assert none.named_steps["model"].class_weight is None


def wavy_frame(n: int = 800, seed: int = 0) -> pd.DataFrame:
    """A target that rises with ``a`` overall but wiggles down locally."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 10, n)
    frame = pd.DataFrame(
        {"a": a, "b": rng.normal(0, 1, n), "c": rng.choice(["p", "q"], n).astype(object)}
    )
    frame["y"] = a + 3 * np.sin(2 * a) + frame["b"] + rng.normal(0, 0.2, n)
    return frame


def _grid_predictions(pipeline: Any, frame: pd.DataFrame) -> np.ndarray:
    """Predictions for 5 rows, each with ``a`` swept over a grid: shape (rows, grid)."""
    grid = np.linspace(-1, 11, 61)
    rows = frame.iloc[:5]
    sweep = pd.concat([rows.assign(a=value) for value in grid])
    return np.asarray(pipeline.predict(sweep[["a", "b", "c"]])).reshape(len(grid), 5).T


@pytest.mark.parametrize("name", ["hgb", "lgbm"])
def test_monotonic_constraint_makes_predictions_non_decreasing(name: str) -> None:
    frame = wavy_frame()
    schema = FeatureSchema.infer(frame, target="y")
    candidate = CANDIDATES[name]

    def fitted(increasing: tuple[str, ...]) -> Any:
        pipeline = make_pipeline(
            candidate, {**candidate.defaults, **SMALL[name]}, schema=schema, task="regression",
            imbalance=ImbalanceSpec(), seed=0, increasing=increasing,
        )  # fmt: skip
        return pipeline.fit(frame[["a", "b", "c"]], frame["y"])

    constrained = fitted(("a",))
    assert isinstance(constrained.named_steps["model"], Monotonic)
    steps = np.diff(_grid_predictions(constrained, frame), axis=1)
    assert (steps >= -1e-9).all(), steps.min()
    assert (steps > 0).any()  # a still matters
    free = np.diff(_grid_predictions(fitted(()), frame), axis=1)
    assert (free < -1e-6).any()  # without the constraint the wiggles show: the test has teeth


def test_monotonic_is_ignored_by_linear_models() -> None:
    frame = wavy_frame(n=100)
    schema = FeatureSchema.infer(frame, target="y")
    pipeline = make_pipeline(
        CANDIDATES["linear"], {}, schema=schema, task="regression",
        imbalance=ImbalanceSpec(), seed=0, increasing=("a",),
    )  # fmt: skip
    assert not isinstance(pipeline.named_steps["model"], Monotonic)


# ----------------------------------------------------------------------------------- cleaning

SPEC = """
name = "clean"
target = "rent"
[data]
path = "data.csv"
[validation.columns.area]
min = 10
max = 1000
[validation.columns.energy]
allowed = ["A", "B", "C"]
[validation.columns.rent]
min = 100
{training}
"""


def dirty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "area": [50.0, 50.0, 5.0, 2000.0, 70.0, 80.0, 90.0, 60.0, np.nan],
            "energy": ["A", "A", "B", "C", "Z", "B", "A", "C", "B"],
            "rent": [900.0, 900.0, 800.0, 1500.0, 1200.0, np.nan, 20.0, 1000.0, 1100.0],
        },
        index=[10, 11, 12, 13, 14, 15, 16, 17, 18],
    )


def test_prepare_cleans_duplicates_impossible_values_and_missing_targets() -> None:
    spec = parse_spec(SPEC.format(training=""))
    notes: list[str] = []
    out = prepare(dirty_frame(), spec, notes)
    # row 11 duplicates 10; 15 has no rent; 16's rent is impossible
    assert list(out.index) == [10, 12, 13, 14, 17, 18]
    assert out.loc[[12, 13], "area"].isna().all()  # impossible areas become missing
    assert out.loc[[10, 14, 17], "area"].tolist() == [50.0, 70.0, 60.0]
    assert pd.isna(out.loc[14, "energy"])  # "Z" is not an allowed level
    assert out.loc[12, "energy"] == "B"
    assert out.loc[18, "area"] != out.loc[18, "area"]  # already missing: stays missing
    assert out["rent"].notna().all()
    assert (out["rent"] >= 100).all()
    text = " | ".join(notes)
    assert "1 duplicate row" in text
    assert "area: 2 impossible values set to missing" in text
    assert "energy: 1 impossible value set to missing" in text
    assert "1 row with an impossible target" in text
    assert "1 row without a target" in text


def test_prepare_does_not_touch_its_input() -> None:
    frame = dirty_frame()
    before = frame.copy()
    prepare(frame, parse_spec(SPEC.format(training="")), [])
    pd.testing.assert_frame_equal(frame, before)


def test_prepare_stops_on_missing_target_when_the_spec_says_so() -> None:
    spec = parse_spec(SPEC.format(training='[training]\nmissing_target = "error"'))
    with pytest.raises(TrainingError, match=r"target 'rent' is missing on 1 row") as caught:
        prepare(dirty_frame(), spec, [])
    assert "missing_target" in (caught.value.hint or "")
    clean = dirty_frame().dropna(subset=["rent"])
    assert len(prepare(clean, spec, [])) == 6  # nothing missing: no error


# --------------------------------------------------------------------------------- candidates


def test_resolve_candidates() -> None:
    spec = parse_spec(SPEC.format(training='[training]\ncandidates = ["lgbm", "linear"]'))
    assert [c.name for c in resolve_candidates(spec, None)] == ["lgbm", "linear"]
    assert [c.name for c in resolve_candidates(spec, ["rf", "hgb", "rf"])] == ["rf", "hgb"]


@pytest.mark.parametrize(("name", "close"), [("lgb", "lgbm"), ("xgb", "hgb"), ("liner", "linear")])
def test_resolve_candidates_rejects_unknown_names(name: str, close: str) -> None:
    spec = parse_spec(SPEC.format(training=""))
    with pytest.raises(TrainingError) as caught:
        resolve_candidates(spec, ["rf", name])
    assert f"unknown candidate {name!r}" in caught.value.message
    assert f"did you mean `{close}`" in caught.value.message
    assert "linear, rf, hgb, lgbm" in (caught.value.hint or "")


# ------------------------------------------------------------------------------------- tuning


def _tuning(
    n: int, *, use_cv: bool, metric: str = "mae", seed: int = 7
) -> tuple[TuneData, FitContext]:
    frame = wavy_frame(n=n, seed=1)
    schema = FeatureSchema.infer(frame, target="y")
    cut = int(n * 0.7)
    data = TuneData(
        frame.iloc[:cut][["a", "b", "c"]],
        frame.iloc[:cut]["y"],
        frame.iloc[cut:][["a", "b", "c"]],
        frame.iloc[cut:]["y"],
        use_cv=use_cv,
        folds=3,
    )
    ctx = FitContext(
        schema=schema, task="regression", metric=metric, imbalance=ImbalanceSpec(),
        seed=seed, onehot_max_levels=20, classes=None,
    )  # fmt: skip
    return data, ctx


@pytest.mark.parametrize("name", ["linear", "hgb"])
def test_tune_runs_the_budget_starting_from_defaults(name: str) -> None:
    data, ctx = _tuning(300, use_cv=False)
    seen: list[Any] = []
    candidate = CANDIDATES[name]
    # keep the fits tiny; fixed params override every suggestion
    fixed: dict[str, Any] = {"max_iter": 20} if name == "hgb" else {}
    result = tune(candidate, data, ctx, Budget(trials=3), fixed=fixed, on_trial=seen.append)
    assert [t.number for t in result.trials] == [0, 1, 2]
    assert seen == result.trials
    assert {t.state for t in result.trials} == {"complete"}
    first = result.trials[0].params
    for key, value in {**candidate.defaults, **fixed}.items():
        assert first[key] == value
    assert result.trials[1].params != first  # the search moved on
    assert all(fixed.items() <= t.params.items() for t in result.trials)
    values = [t.value for t in result.trials]
    assert result.value == pytest.approx(min(values))  # MAE: lower is better
    assert result.trials[-1].best == pytest.approx(min(values))
    assert result.params == result.trials[int(np.argmin(values))].params


def test_tune_with_cv_reports_every_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    import optuna

    reports: dict[int, list[int]] = {}
    real_report = optuna.trial.Trial.report

    def spy(self: Any, value: float, step: int) -> None:
        reports.setdefault(self.number, []).append(step)
        real_report(self, value, step)

    monkeypatch.setattr(optuna.trial.Trial, "report", spy)
    data, ctx = _tuning(240, use_cv=True)
    result = tune(CANDIDATES["linear"], data, ctx, Budget(trials=3))
    assert len(result.trials) == 3
    # the pruner's two start-up trials always finish; the third may be stopped after any fold
    assert [t.state for t in result.trials[:2]] == ["complete", "complete"]
    for trial in result.trials:
        folds = reports[trial.number]
        if trial.state == "complete":
            assert folds == [0, 1, 2]  # one report after each of 3 folds
        else:
            assert trial.state == "pruned"
            assert folds == list(range(len(folds)))
            assert 1 <= len(folds) <= 3


def test_tune_with_a_larger_budget_may_prune() -> None:
    data, ctx = _tuning(240, use_cv=True)
    result = tune(CANDIDATES["linear"], data, ctx, Budget(trials=8))
    assert len(result.trials) == 8
    assert {t.state for t in result.trials} <= {"complete", "pruned"}
    completed = [t.value for t in result.trials if t.state == "complete"]
    assert result.value == pytest.approx(min(completed))


def test_tune_with_a_time_budget_stops() -> None:
    data, ctx = _tuning(200, use_cv=False)
    result = tune(CANDIDATES["linear"], data, ctx, Budget(seconds=0.5))
    assert len(result.trials) >= 1
    assert result.seconds < 10


def test_same_seed_same_best_params() -> None:
    data, ctx = _tuning(240, use_cv=True, seed=3)
    first = tune(CANDIDATES["linear"], data, ctx, Budget(trials=4))
    again = tune(CANDIDATES["linear"], data, ctx, Budget(trials=4))
    assert again.params == first.params
    assert [t.params for t in again.trials] == [t.params for t in first.trials]
    assert again.value == first.value


def test_tune_fails_clearly_when_every_trial_fails() -> None:
    data, ctx = _tuning(100, use_cv=False)
    with pytest.raises(RuntimeError, match="every trial of hgb failed"):
        tune(CANDIDATES["hgb"], data, ctx, Budget(trials=2), fixed={"learning_rate": -1.0})


@pytest.mark.parametrize("name", ["linear", "hgb"])
def test_holdout_tuning_keeps_the_best_trials_fitted_pipeline(name: str) -> None:
    data, ctx = _tuning(300, use_cv=False)
    fixed: dict[str, Any] = {"max_iter": 20} if name == "hgb" else {}
    result = tune(CANDIDATES[name], data, ctx, Budget(trials=4), fixed=fixed)
    assert result.fitted is not None
    refit = ctx.pipeline(CANDIDATES[name], result.params).fit(data.X_train, data.y_train)
    np.testing.assert_allclose(
        result.fitted.predict(data.X_valid), refit.predict(data.X_valid), rtol=1e-12
    )
    from modelcycle.metrics import compute_metrics

    kept = compute_metrics("regression", data.y_valid, result.fitted.predict(data.X_valid))
    assert kept["mae"] == pytest.approx(result.value)  # the kept pipeline is the best trial's


def test_cv_tuning_keeps_no_pipeline() -> None:
    data, ctx = _tuning(240, use_cv=True)
    assert tune(CANDIDATES["linear"], data, ctx, Budget(trials=2)).fitted is None
