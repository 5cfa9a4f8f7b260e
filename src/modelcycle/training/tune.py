"""Hyper-parameter tuning with Optuna under a budget, with pruning; seeded and reproducible.

Small data (up to ``training.cv_max_rows`` rows) is tuned with k-fold cross-validation on train +
valid, reporting after each fold so the median pruner can stop a hopeless trial early. Larger data
is tuned on the validation part, with a first rung fitted on a 30% sample of the training rows
that the pruner judges before the full fit. The first trial of every search is the candidate's
default parameters, so even a one-trial budget gives a sensible model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelcycle.config.spec import Budget, ImbalanceSpec, Task
from modelcycle.data.schema import FeatureSchema
from modelcycle.metrics import (
    THRESHOLD_METRICS,
    compute_metrics,
    score_for_optimizer,
    tune_threshold,
)
from modelcycle.training.candidates import Candidate, Params, make_pipeline

RUNG_SHARE = 0.3
RUNG_MIN_ROWS = 2000


@dataclass(frozen=True)
class TrialRecord:
    """One finished (or pruned) trial, for progress, tracking and the report."""

    candidate: str
    number: int
    value: float | None
    state: str
    params: Params
    seconds: float
    best: float | None


@dataclass
class TuneResult:
    """The best parameters of one candidate and every trial that led there."""

    candidate: str
    params: Params
    value: float
    trials: list[TrialRecord] = field(default_factory=list)
    seconds: float = 0.0
    fitted: Any = None
    """The best trial's pipeline fitted on the training part (holdout tuning only)."""


@dataclass(frozen=True)
class TuneData:
    """What a trial fits and scores on."""

    X_train: pd.DataFrame
    y_train: pd.Series
    X_valid: pd.DataFrame
    y_valid: pd.Series
    use_cv: bool
    folds: int


@dataclass(frozen=True)
class FitContext:
    """Everything a pipeline needs besides its parameters."""

    schema: FeatureSchema
    task: Task
    metric: str
    imbalance: ImbalanceSpec
    seed: int
    onehot_max_levels: int
    classes: list[Any] | None
    increasing: tuple[str, ...] = ()
    decreasing: tuple[str, ...] = ()

    def pipeline(self, candidate: Candidate, params: Params) -> Any:
        """A fresh pipeline for ``candidate`` with ``params``."""
        return make_pipeline(
            candidate,
            params,
            schema=self.schema,
            task=self.task,
            imbalance=self.imbalance,
            seed=self.seed,
            onehot_max_levels=self.onehot_max_levels,
            increasing=self.increasing,
            decreasing=self.decreasing,
        )


def predict_scores(pipeline: Any, frame: pd.DataFrame, task: Task) -> np.ndarray:
    """Values (regression), positive-class probabilities (binary) or a probability matrix."""
    if task == "regression":
        return np.asarray(pipeline.predict(frame), dtype="float64")
    proba = np.asarray(pipeline.predict_proba(frame), dtype="float64")
    return proba[:, 1] if proba.shape[1] == 2 else proba


def score(pipeline: Any, X: pd.DataFrame, y: pd.Series, ctx: FitContext) -> float:  # noqa: N803
    """The deciding metric of a fitted pipeline on (X, y); threshold metrics at their best cut."""
    scores = predict_scores(pipeline, X, ctx.task)
    if ctx.metric in THRESHOLD_METRICS and scores.ndim == 1 and ctx.classes:
        return tune_threshold(y, scores, ctx.metric, positive=ctx.classes[1])[1]
    return compute_metrics(ctx.task, y, scores, classes=ctx.classes)[ctx.metric]


def tune(
    candidate: Candidate,
    data: TuneData,
    ctx: FitContext,
    budget: Budget,
    *,
    fixed: Params | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None,
) -> TuneResult:
    """Search ``candidate``'s space within ``budget``.

    Args:
        candidate: The model family.
        data: Training and validation data (or CV data).
        ctx: Schema, task, metric, imbalance strategy and seed.
        budget: Trials or seconds for this candidate.
        fixed: Parameters the spec fixes; they override every suggestion.
        on_trial: Called after every trial (progress bars, tracking).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fixed = fixed or {}
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=ctx.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    records: list[TrialRecord] = []
    start = time.perf_counter()
    best_fit: dict[str, Any] = {}  # the best holdout pipeline so far, kept to avoid a refit

    def objective(trial: optuna.Trial) -> float:
        params = {**candidate.space(trial), **fixed}
        if trial.number == 0:  # start from the candidate's defaults
            params = {**params, **candidate.defaults, **fixed}
        trial.set_user_attr("params", params)
        value, pipeline = _evaluate(candidate, params, data, ctx, trial)
        if pipeline is not None and value > best_fit.get("value", -math.inf):
            best_fit.update(value=value, pipeline=pipeline)
        return value

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        value = None if trial.value is None else _from_optimizer(ctx.metric, trial.value)
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = _from_optimizer(ctx.metric, study.best_value) if completed else None
        duration = trial.duration.total_seconds() if trial.duration else 0.0
        record = TrialRecord(
            candidate.name,
            trial.number,
            value,
            trial.state.name.lower(),
            trial.user_attrs.get("params", trial.params),
            duration,
            best,
        )
        records.append(record)
        if on_trial is not None:
            on_trial(record)

    study.optimize(
        objective,
        n_trials=budget.trials,
        timeout=budget.seconds,
        callbacks=[callback],
        catch=(ValueError, ArithmeticError),
    )
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        failed = next((t for t in study.trials if t.state.name == "FAIL"), None)
        reason = failed.system_attrs.get("fail_reason", "") if failed else "no trial finished"
        raise RuntimeError(f"every trial of {candidate.name} failed: {reason}")
    return TuneResult(
        candidate.name,
        study.best_trial.user_attrs["params"],
        _from_optimizer(ctx.metric, study.best_value),
        records,
        time.perf_counter() - start,
        best_fit.get("pipeline"),
    )


def _from_optimizer(metric: str, value: float) -> float:
    return score_for_optimizer(metric, value)  # the transform is its own inverse


def _evaluate(
    candidate: Candidate, params: Params, data: TuneData, ctx: FitContext, trial: Any
) -> tuple[float, Any]:
    """The trial's score to maximise, and its pipeline fitted on train (holdout only)."""
    import optuna

    if data.use_cv:
        X = pd.concat([data.X_train, data.X_valid])  # noqa: N806
        y = pd.concat([data.y_train, data.y_valid])
        scores = []
        for step, (fit_idx, eval_idx) in enumerate(_folds(X, y, ctx, data.folds)):
            pipeline = ctx.pipeline(candidate, params)
            pipeline.fit(X.iloc[fit_idx], y.iloc[fit_idx])
            scores.append(score(pipeline, X.iloc[eval_idx], y.iloc[eval_idx], ctx))
            trial.report(score_for_optimizer(ctx.metric, float(np.mean(scores))), step)
            if trial.should_prune():
                raise optuna.TrialPruned
        return score_for_optimizer(ctx.metric, float(np.mean(scores))), None
    if len(data.X_train) >= RUNG_MIN_ROWS:
        rung = data.X_train.sample(frac=RUNG_SHARE, random_state=ctx.seed).index
        pipeline = ctx.pipeline(candidate, params)
        pipeline.fit(data.X_train.loc[rung], data.y_train.loc[rung])
        trial.report(
            score_for_optimizer(ctx.metric, score(pipeline, data.X_valid, data.y_valid, ctx)), 0
        )
        if trial.should_prune():
            raise optuna.TrialPruned
    pipeline = ctx.pipeline(candidate, params)
    pipeline.fit(data.X_train, data.y_train)
    value = score(pipeline, data.X_valid, data.y_valid, ctx)
    if math.isnan(value):
        raise ValueError(f"{ctx.metric} is undefined on the validation data")
    return score_for_optimizer(ctx.metric, value), pipeline


def _folds(X: pd.DataFrame, y: pd.Series, ctx: FitContext, folds: int) -> Any:  # noqa: N803
    from sklearn.model_selection import KFold, StratifiedKFold

    if ctx.task == "classification":
        smallest = int(y.value_counts().min())
        splitter: Any = StratifiedKFold(
            n_splits=max(2, min(folds, smallest)), shuffle=True, random_state=ctx.seed
        )
    else:
        splitter = KFold(n_splits=folds, shuffle=True, random_state=ctx.seed)
    return splitter.split(X, y)


def split_budget(budget: Budget, n_candidates: int) -> Budget:
    """Each candidate's share of the budget (at least one trial each)."""
    if budget.trials is not None:
        return Budget(trials=max(1, math.ceil(budget.trials / n_candidates)))
    assert budget.seconds is not None
    return Budget(seconds=budget.seconds / n_candidates)
