"""The model zoo: baselines (dummy, linear) and tunable candidates (linear, rf, hgb, lgbm).

Each candidate knows how to build its estimator for a task, its default hyper-parameters (the
first trial of every search) and its Optuna search space. ``make_pipeline`` joins the schema's
preprocessing, an optional resampler (training folds only) and the estimator into one pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn.base import BaseEstimator

from modelcycle.config.spec import ImbalanceSpec, Task
from modelcycle.data.schema import FeatureSchema
from modelcycle.training.features import build_preprocessor

Params = dict[str, Any]
N_JOBS = 2
MONOTONIC = frozenset({"rf", "hgb", "lgbm"})


class Monotonic(BaseEstimator):  # type: ignore[misc]
    """Fit ``estimator`` with monotonic constraints on named input features.

    The preprocessing emits pandas columns named ``numeric__<feature>``; on ``fit`` each such
    column gets +1 (``increasing``) or -1 (``decreasing``), every other column 0, in the
    estimator's own parameter (``monotonic_cst`` for scikit-learn, ``monotone_constraints`` for
    LightGBM).
    """

    def __init__(
        self, estimator: Any, increasing: tuple[str, ...] = (), decreasing: tuple[str, ...] = ()
    ) -> None:
        self.estimator = estimator
        self.increasing = increasing
        self.decreasing = decreasing

    def fit(self, X: Any, y: Any, **fit_params: Any) -> Monotonic:  # noqa: N803
        """Set the constraints for X's columns, then fit a clone of the estimator."""
        from sklearn.base import clone

        names = [str(c) for c in X.columns]
        up = {f"numeric__{n}" for n in self.increasing}
        down = {f"numeric__{n}" for n in self.decreasing}
        constraints = [1 if n in up else -1 if n in down else 0 for n in names]
        estimator = clone(self.estimator)
        key = (
            "monotone_constraints"
            if "monotone_constraints" in estimator.get_params()
            else ("monotonic_cst")
        )
        estimator.set_params(**{key: constraints})
        self.estimator_ = estimator.fit(X, y, **fit_params)
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X: Any) -> Any:  # noqa: N803
        """The estimator's predictions."""
        return self.estimator_.predict(X)

    def predict_proba(self, X: Any) -> Any:  # noqa: N803
        """The estimator's class probabilities."""
        return self.estimator_.predict_proba(X)

    def __sklearn_tags__(self) -> Any:
        """The wrapped estimator's tags (regressor or classifier)."""
        return self.estimator.__sklearn_tags__()


def supports_monotonic(candidate_name: str) -> bool:
    """Whether a candidate's estimator takes monotonic constraints."""
    return candidate_name in MONOTONIC


@dataclass(frozen=True)
class Candidate:
    """A model family: how to build it, where to start, and what to search."""

    name: str
    label: str
    scaled: bool
    build: Callable[[Task, Params, int, bool], Any]
    defaults: Params
    space: Callable[[Any], Params]


def _dummy(task: Task, params: Params, seed: int, balanced: bool) -> Any:  # noqa: ARG001
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if task == "regression":
        return DummyRegressor(strategy="median")
    return DummyClassifier(strategy="prior")


def _linear(task: Task, params: Params, seed: int, balanced: bool) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "regression":
        return Ridge(alpha=params.get("alpha", 1.0))
    return LogisticRegression(
        C=params.get("C", 1.0),
        max_iter=2000,
        class_weight="balanced" if balanced else None,
        random_state=seed,
    )


def _linear_space(trial: Any) -> Params:
    return {
        "alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True),
        "C": trial.suggest_float("C", 1e-3, 1e2, log=True),
    }


def _rf(task: Task, params: Params, seed: int, balanced: bool) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    common = {"random_state": seed, "n_jobs": N_JOBS, **params}
    if task == "regression":
        return RandomForestRegressor(**common)
    return RandomForestClassifier(class_weight="balanced" if balanced else None, **common)


def _rf_space(trial: Any) -> Params:
    # bootstrap samples of half to all rows, a third to half of the features: forests that fit
    # 50,000 rows in seconds, not minutes, and lose little accuracy doing so
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 200, step=50),
        "max_depth": trial.suggest_categorical("max_depth", [None, 12, 20]),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        "max_features": trial.suggest_categorical("max_features", ["sqrt", 0.33, 0.5]),
        "max_samples": trial.suggest_categorical("max_samples", [0.5, 0.8, None]),
    }


def _hgb(task: Task, params: Params, seed: int, balanced: bool) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    common = {"random_state": seed, **params}
    if task == "regression":
        return HistGradientBoostingRegressor(**common)
    return HistGradientBoostingClassifier(class_weight="balanced" if balanced else None, **common)


def _hgb_space(trial: Any) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "max_iter": trial.suggest_int("max_iter", 100, 500, step=50),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 15, 127, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 1.0, log=True),
    }


def _lgbm(task: Task, params: Params, seed: int, balanced: bool) -> Any:
    from lightgbm import LGBMClassifier, LGBMRegressor

    # one thread: LightGBM's OpenMP threads spin-wait and collapse on a busy 2-core machine
    common = {"random_state": seed, "n_jobs": 1, "verbose": -1, **params}
    if task == "regression":
        return LGBMRegressor(**common)
    return LGBMClassifier(class_weight="balanced" if balanced else None, **common)


def _lgbm_space(trial: Any) -> Params:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 600, step=50),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 15, 127, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "subsample_freq": 1,
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.6, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-6, 10.0, log=True),
    }


DUMMY = Candidate("dummy", "dummy (median / prior)", False, _dummy, {}, lambda _t: {})
CANDIDATES: dict[str, Candidate] = {
    "linear": Candidate(
        "linear",
        "linear (Ridge / Logistic)",
        True,
        _linear,
        {"alpha": 1.0, "C": 1.0},
        _linear_space,
    ),
    "rf": Candidate(
        "rf",
        "random forest",
        False,
        _rf,
        {"n_estimators": 100, "min_samples_leaf": 2, "max_features": 0.5, "max_samples": 0.8},
        _rf_space,
    ),
    "hgb": Candidate(
        "hgb", "histogram gradient boosting", False, _hgb, {"max_iter": 200}, _hgb_space
    ),
    "lgbm": Candidate(
        "lgbm",
        "LightGBM",
        False,
        _lgbm,
        {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31},
        _lgbm_space,
    ),
}
BASELINES: tuple[Candidate, ...] = (DUMMY, CANDIDATES["linear"])


def relevant(params: Params, task: Task, candidate: Candidate) -> Params:
    """Drop the parameters a task does not use (the linear space covers Ridge and Logistic)."""
    if candidate.name != "linear":
        return params
    keep = "alpha" if task == "regression" else "C"
    return {k: v for k, v in params.items() if k == keep}


def make_pipeline(
    candidate: Candidate,
    params: Params,
    *,
    schema: FeatureSchema,
    task: Task,
    imbalance: ImbalanceSpec,
    seed: int,
    onehot_max_levels: int = 20,
    increasing: tuple[str, ...] = (),
    decreasing: tuple[str, ...] = (),
) -> Any:
    """Preprocessing + (resampler, training folds only) + estimator, as one pipeline.

    With a resampling strategy the pipeline is imbalanced-learn's, whose samplers run in ``fit``
    only; ``predict`` never resamples, so validation and test data are untouched. Monotonic
    constraints (``increasing`` / ``decreasing`` feature names) apply to the candidates that
    support them (rf, hgb, lgbm); linear models and the dummy are left unconstrained.
    """
    from sklearn.pipeline import Pipeline

    from modelcycle.data.balance import make_sampler

    preprocess = build_preprocessor(
        schema,
        scale=candidate.scaled,
        task=task,
        onehot_max_levels=onehot_max_levels,
        seed=seed,
    )
    balanced = task == "classification" and imbalance.strategy == "class_weight"
    estimator = candidate.build(task, relevant(params, task, candidate), seed, balanced)
    if (increasing or decreasing) and supports_monotonic(candidate.name):
        preprocess.set_output(transform="pandas")
        estimator = Monotonic(estimator, tuple(increasing), tuple(decreasing))
    sampler = make_sampler(imbalance, seed) if task == "classification" else None
    if sampler is None or candidate is DUMMY:
        return Pipeline([("preprocess", preprocess), ("model", estimator)])
    from imblearn.pipeline import Pipeline as ImbPipeline

    return ImbPipeline([("preprocess", preprocess), ("resample", sampler), ("model", estimator)])
