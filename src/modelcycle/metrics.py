"""Metrics for regression and classification, their direction, and decision-threshold tuning.

Pure functions on arrays, below every stage that scores a model (training, the registry's
``compare`` and model cards, later monitoring of realised performance), so the numbers agree
everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from modelcycle.config.spec import CLASSIFICATION_METRICS, REGRESSION_METRICS, Task

LOWER_IS_BETTER = frozenset({"mae", "rmse", "mape", "log_loss", "brier"})
THRESHOLD_METRICS = frozenset({"f1", "precision", "recall", "balanced_accuracy"})
"""Metrics that depend on the decision threshold (tuned on validation data)."""


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better."""
    return metric not in LOWER_IS_BETTER


def score_for_optimizer(metric: str, value: float) -> float:
    """``value`` turned into a quantity to maximise."""
    return value if higher_is_better(metric) else -value


def improvement(metric: str, candidate: float, reference: float) -> float:
    """Relative improvement of ``candidate`` over ``reference`` (positive is better).

    For lower-is-better metrics it is ``(reference - candidate) / |reference|``; for the others
    ``(candidate - reference) / |reference|``. A zero reference gives the absolute difference.
    """
    diff = candidate - reference if higher_is_better(metric) else reference - candidate
    scale = abs(reference)
    return float(diff / scale) if scale > 1e-12 else float(diff)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """MAE, RMSE, R² and MAPE (rows with a true value of 0 are left out of MAPE)."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    truth = np.asarray(y_true, dtype="float64")
    pred = np.asarray(y_pred, dtype="float64")
    nonzero = np.abs(truth) > 1e-12
    mape = (
        float(np.mean(np.abs((truth[nonzero] - pred[nonzero]) / truth[nonzero])))
        if nonzero.any()
        else float("nan")
    )
    return {
        "mae": float(mean_absolute_error(truth, pred)),
        "rmse": float(np.sqrt(mean_squared_error(truth, pred))),
        "r2": float(r2_score(truth, pred)) if len(truth) > 1 else float("nan"),
        "mape": mape,
    }


def classification_metrics(
    y_true: Any, proba: Any, threshold: float = 0.5, classes: Sequence[Any] | None = None
) -> dict[str, float]:
    """ROC AUC, PR AUC, F1, precision, recall, balanced accuracy, log loss and Brier score.

    Args:
        y_true: True labels.
        proba: For binary tasks the probability of the positive class (``classes[1]``), or a
            2-D array of class probabilities (columns in ``classes`` order).
        threshold: Decision threshold on the positive-class probability (binary tasks).
        classes: Class labels in probability-column order; inferred (sorted) when ``None``.
    """
    from sklearn import metrics as m

    truth = np.asarray(y_true)
    labels = list(classes) if classes is not None else sorted(pd.unique(truth).tolist())
    probs = np.asarray(proba, dtype="float64")
    if probs.ndim == 2 and probs.shape[1] == 2:
        probs = probs[:, 1]
    nan = float("nan")
    if probs.ndim == 1:  # binary
        positive = labels[1] if len(labels) > 1 else labels[0]
        y = (truth == positive).astype(int)
        pred = (probs >= threshold).astype(int)
        both = len(np.unique(y)) == 2
        clipped = np.clip(probs, 1e-15, 1 - 1e-15)
        return {
            "roc_auc": float(m.roc_auc_score(y, probs)) if both else nan,
            "pr_auc": float(m.average_precision_score(y, probs)) if both else nan,
            "f1": float(m.f1_score(y, pred, zero_division=0)),
            "precision": float(m.precision_score(y, pred, zero_division=0)),
            "recall": float(m.recall_score(y, pred, zero_division=0)),
            "balanced_accuracy": float(m.balanced_accuracy_score(y, pred)) if both else nan,
            "log_loss": float(m.log_loss(y, clipped, labels=[0, 1])),
            "brier": float(np.mean((probs - y) ** 2)),
        }
    pred_labels = np.asarray(labels)[probs.argmax(axis=1)]
    onehot = (truth[:, None] == np.asarray(labels)[None, :]).astype(float)
    present = len(np.unique(truth)) > 1
    return {
        "roc_auc": float(m.roc_auc_score(truth, probs, multi_class="ovr", labels=labels))
        if present
        else nan,
        "pr_auc": float(m.average_precision_score(onehot, probs, average="macro")),
        "f1": float(m.f1_score(truth, pred_labels, average="macro", zero_division=0)),
        "precision": float(m.precision_score(truth, pred_labels, average="macro", zero_division=0)),
        "recall": float(m.recall_score(truth, pred_labels, average="macro", zero_division=0)),
        "balanced_accuracy": float(m.balanced_accuracy_score(truth, pred_labels)),
        "log_loss": float(m.log_loss(truth, np.clip(probs, 1e-15, 1), labels=labels)),
        "brier": float(np.mean(np.sum((probs - onehot) ** 2, axis=1))),
    }


def compute_metrics(
    task: Task,
    y_true: Any,
    prediction: Any,
    *,
    threshold: float = 0.5,
    classes: Sequence[Any] | None = None,
) -> dict[str, float]:
    """All metrics of ``task``: ``prediction`` is values (regression) or probabilities."""
    if task == "regression":
        return regression_metrics(y_true, prediction)
    return classification_metrics(y_true, prediction, threshold, classes)


def tune_threshold(
    y_true: Any, positive_proba: Any, metric: str, positive: Any = 1
) -> tuple[float, float]:
    """The decision threshold that maximises ``metric`` on validation data.

    Threshold-free metrics (ROC AUC, ...) are optimised for F1 instead, so the stored threshold
    is still a sensible decision point. Returns ``(threshold, metric value at it)``.
    """
    y = (np.asarray(y_true) == positive).astype("int64")
    probs = np.asarray(positive_proba, dtype="float64")
    target = metric if metric in THRESHOLD_METRICS else "f1"
    thresholds = np.unique(np.quantile(probs, np.linspace(0.0, 1.0, 201)))
    order = np.argsort(-probs, kind="stable")
    cum_tp = np.concatenate([[0], np.cumsum(y[order])])
    # rows predicted positive at each threshold: probs >= t
    flagged = len(probs) - np.searchsorted(np.sort(probs), thresholds, side="left")
    tp = cum_tp[flagged].astype("float64")
    fp = flagged - tp
    pos, neg = float(y.sum()), float(len(y) - y.sum())
    fn, tn = pos - tp, neg - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        values: np.ndarray = {
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
            # precision on a handful of flagged rows is noise: require 1% of rows flagged
            "precision": np.where(
                flagged >= max(1, 0.01 * len(y)), tp / np.maximum(flagged, 1), 0.0
            ),
            "recall": tp / pos if pos else np.zeros_like(tp),
            "balanced_accuracy": 0.5 * ((tp / pos if pos else 0.0) + (tn / neg if neg else 0.0)),
        }[target] * np.ones_like(tp)
    best = int(np.argmax(values))
    return float(thresholds[best]), float(values[best])


def metric_names(task: Task) -> tuple[str, ...]:
    """The metrics reported for ``task``."""
    return REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
