"""Training metrics agree with scikit-learn's own functions; thresholds and budgets parse right.

Every metric modelcycle reports is checked against the scikit-learn function of the same name on
random data; the tuned decision threshold is checked against a brute-force search over the same
candidate thresholds.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from modelcycle.config.spec import Budget, parse_budget
from modelcycle.metrics import (
    LOWER_IS_BETTER,
    classification_metrics,
    compute_metrics,
    higher_is_better,
    improvement,
    regression_metrics,
    score_for_optimizer,
    tune_threshold,
)

SEEDS = [0, 1, 2]


def _binary(seed: int, n: int = 400, positives: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Labels and informative, tie-free positive-class probabilities."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positives).astype(int)
    logits = rng.normal(0, 1, n) + 1.5 * y
    return y, 1 / (1 + np.exp(-logits))


# ---------------------------------------------------------------------------------- regression


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.normal(1000, 300, 250)
    pred = truth + rng.normal(0, 80, 250)
    got = regression_metrics(truth, pred)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(truth, pred), rel=1e-12)
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, pred)), rel=1e-12)
    assert got["r2"] == pytest.approx(skm.r2_score(truth, pred), rel=1e-12)
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(truth, pred), rel=1e-12)
    assert compute_metrics("regression", truth, pred) == got


def test_mape_leaves_out_zero_targets() -> None:
    truth = np.array([0.0, 100.0, 200.0])
    pred = np.array([5.0, 110.0, 180.0])
    assert regression_metrics(truth, pred)["mape"] == pytest.approx((0.1 + 0.1) / 2)


# ------------------------------------------------------------------------------ classification


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.72])
def test_binary_metrics_equal_sklearn(seed: int, threshold: float) -> None:
    y, proba = _binary(seed)
    got = classification_metrics(y, proba, threshold=threshold, classes=[0, 1])
    pred = (proba >= threshold).astype(int)
    expected = {
        "roc_auc": skm.roc_auc_score(y, proba),
        "pr_auc": skm.average_precision_score(y, proba),
        "f1": skm.f1_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "log_loss": skm.log_loss(y, proba),
        "brier": skm.brier_score_loss(y, proba),
    }
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_binary_metrics_with_string_labels_and_a_probability_matrix() -> None:
    y, proba = _binary(4)
    labels = np.where(y == 1, "yes", "no")
    matrix = np.column_stack([1 - proba, proba])
    got = classification_metrics(labels, matrix, threshold=0.4, classes=["no", "yes"])
    assert got == pytest.approx(classification_metrics(y, proba, threshold=0.4, classes=[0, 1]))
    inferred = classification_metrics(labels, proba, threshold=0.4)  # classes sorted: no, yes
    assert inferred == pytest.approx(got)


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = ["a", "b", "c", "d"]
    n = 500
    truth = rng.choice(labels, n)
    scores = rng.normal(0, 1, (n, 4)) + 1.2 * (truth[:, None] == np.array(labels)[None, :])
    proba = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    got = classification_metrics(truth, proba, classes=labels)
    pred = np.array(labels)[proba.argmax(axis=1)]
    onehot = (truth[:, None] == np.array(labels)[None, :]).astype(float)
    expected = {
        "roc_auc": skm.roc_auc_score(truth, proba, multi_class="ovr", labels=labels),
        "pr_auc": skm.average_precision_score(onehot, proba, average="macro"),
        "f1": skm.f1_score(truth, pred, average="macro"),
        "precision": skm.precision_score(truth, pred, average="macro"),
        "recall": skm.recall_score(truth, pred, average="macro"),
        "balanced_accuracy": skm.balanced_accuracy_score(truth, pred),
        "log_loss": skm.log_loss(truth, proba, labels=labels),
        "brier": float(np.mean(np.sum((proba - onehot) ** 2, axis=1))),
    }
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert compute_metrics("classification", truth, proba, classes=labels) == got


def test_single_class_truth_gives_nan_for_ranking_metrics() -> None:
    got = classification_metrics(np.zeros(20, dtype=int), np.linspace(0.1, 0.9, 20), classes=[0, 1])
    assert np.isnan(got["roc_auc"])
    assert np.isnan(got["pr_auc"])
    assert np.isfinite(got["log_loss"])


# --------------------------------------------------------------------------------- improvement


@pytest.mark.parametrize(
    ("metric", "candidate", "reference", "expected"),
    [
        ("mae", 80.0, 100.0, 0.2),  # lower MAE: better
        ("mae", 120.0, 100.0, -0.2),
        ("rmse", 50.0, 50.0, 0.0),
        ("log_loss", 0.3, 0.6, 0.5),
        ("brier", 0.2, 0.1, -1.0),
        ("mape", 0.1, 0.2, 0.5),
        ("r2", 0.9, 0.6, 0.5),  # higher R²: better
        ("roc_auc", 0.6, 0.8, -0.25),
        ("pr_auc", 0.3, 0.06, 4.0),
        ("f1", 0.5, 0.0, 0.5),  # zero reference: the absolute difference
        ("mae", 3.0, 0.0, -3.0),
        ("r2", 0.5, -0.5, 2.0),  # a negative reference: scaled by its magnitude
    ],
)
def test_improvement_sign_and_scale(
    metric: str, candidate: float, reference: float, expected: float
) -> None:
    assert improvement(metric, candidate, reference) == pytest.approx(expected)


def test_direction_of_every_metric() -> None:
    for metric in ("mae", "rmse", "mape", "log_loss", "brier"):
        assert metric in LOWER_IS_BETTER
        assert not higher_is_better(metric)
        assert score_for_optimizer(metric, 2.0) == -2.0
    for metric in ("r2", "roc_auc", "pr_auc", "f1", "precision", "recall", "balanced_accuracy"):
        assert higher_is_better(metric)
        assert score_for_optimizer(metric, 2.0) == 2.0


# ---------------------------------------------------------------------------------- threshold


def _candidates(proba: np.ndarray) -> np.ndarray:
    """The thresholds tune_threshold considers (its documented search grid)."""
    return np.unique(np.quantile(proba, np.linspace(0.0, 1.0, 201)))


def _brute_force(y: np.ndarray, proba: np.ndarray, value_at: object) -> tuple[float, float]:
    best_t, best_v = float("nan"), -np.inf
    for t in _candidates(proba):
        v = value_at(y, (proba >= t).astype(int))  # type: ignore[operator]
        if v > best_v:  # the first (lowest) threshold wins a tie
            best_t, best_v = float(t), float(v)
    return best_t, best_v


@pytest.mark.parametrize("seed", [*SEEDS, 11, 12])
def test_threshold_maximises_f1(seed: int) -> None:
    y, proba = _binary(seed, n=300, positives=0.15)
    threshold, value = tune_threshold(y, proba, "f1")
    best_t, best_v = _brute_force(y, proba, lambda yy, pp: skm.f1_score(yy, pp, zero_division=0))
    assert value == pytest.approx(best_v, abs=1e-12)
    assert threshold == pytest.approx(best_t)
    assert skm.f1_score(y, (proba >= threshold).astype(int)) == pytest.approx(value)
    assert 0.0 < threshold < 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_threshold_maximises_balanced_accuracy(seed: int) -> None:
    y, proba = _binary(seed, n=300, positives=0.1)
    threshold, value = tune_threshold(y, proba, "balanced_accuracy")
    best_t, best_v = _brute_force(y, proba, skm.balanced_accuracy_score)
    assert value == pytest.approx(best_v, abs=1e-12)
    assert threshold == pytest.approx(best_t)


@pytest.mark.parametrize("seed", SEEDS)
def test_threshold_maximises_precision_with_enough_flagged_rows(seed: int) -> None:
    y, proba = _binary(seed, n=500, positives=0.2)
    threshold, value = tune_threshold(y, proba, "precision")
    minimum = max(1, 0.01 * len(y))  # precision on a handful of flagged rows is noise

    def precision(yy: np.ndarray, pp: np.ndarray) -> float:
        return skm.precision_score(yy, pp, zero_division=0) if pp.sum() >= minimum else 0.0

    best_t, best_v = _brute_force(y, proba, precision)
    assert value == pytest.approx(best_v, abs=1e-12)
    assert threshold == pytest.approx(best_t)
    assert (proba >= threshold).sum() >= minimum


def test_threshold_for_recall_flags_every_positive() -> None:
    y, proba = _binary(5)
    threshold, value = tune_threshold(y, proba, "recall")
    assert value == 1.0
    assert skm.recall_score(y, (proba >= threshold).astype(int)) == 1.0
    assert threshold == pytest.approx(_brute_force(y, proba, skm.recall_score)[0])


def test_threshold_free_metric_is_tuned_for_f1() -> None:
    y, proba = _binary(6)
    assert tune_threshold(y, proba, "roc_auc") == tune_threshold(y, proba, "f1")
    assert tune_threshold(y, proba, "pr_auc") == tune_threshold(y, proba, "f1")


def test_threshold_with_string_labels_uses_the_positive_class() -> None:
    y, proba = _binary(7)
    labels = np.where(y == 1, "late", "on_time")
    assert tune_threshold(labels, proba, "f1", positive="late") == tune_threshold(y, proba, "f1")


# ------------------------------------------------------------------------------------- budget


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20 trials", Budget(trials=20)),
        ("20", Budget(trials=20)),
        (20, Budget(trials=20)),
        ("1 trial", Budget(trials=1)),
        ("  3 trials ", Budget(trials=3)),
        ("120s", Budget(seconds=120)),
        ("45 seconds", Budget(seconds=45)),
        ("2m", Budget(seconds=120)),
        ("5 min", Budget(seconds=300)),
        ("1h", Budget(seconds=3600)),
    ],
)
def test_parse_budget_accepts(text: str | int, expected: Budget) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize(
    "text", ["0", "0 trials", "0s", "-3", "abc", "5 apples", "", "trials", "3 days", "1e3"]
)
def test_parse_budget_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="budget"):
        parse_budget(text)


@pytest.mark.parametrize("text", ["0.5 trials", "0.4"])
def test_parse_budget_never_gives_zero_trials(text: str) -> None:
    """A fraction of a trial is either refused or at least one trial, never a budget of 0."""
    try:
        budget = parse_budget(text)
    except ValueError:
        return
    assert budget.trials is not None
    assert budget.trials >= 1, f"{text!r} parsed as {budget}"
