"""Model performance in production: realised metrics from labels, estimated ones without.

- **Realised** (:func:`realised_metrics`): the logged predictions of the labelled rows against
  their labels. Regression: MAE, RMSE, R² and MAPE. Classification: the accuracy of the logged
  classes, and the threshold-free ROC AUC, PR AUC, log loss and Brier score when every row
  logged its probabilities.
- **Estimated** (:func:`estimated_metrics`, classification only): before labels arrive, the
  logged probabilities give the *expected* confusion matrix — a row predicted positive with
  probability ``p`` is a true positive with probability ``p`` and a false positive with ``1 - p``
  — and from it the expected accuracy, precision, recall and F1 (the idea of NannyML's CBPE).
  It is only as good as the model's calibration, and it cannot see concept drift (a changed
  relation between features and target with unchanged probabilities): labels remain the truth.
- :func:`relative_change`: how much worse a metric got against the model's test metric, signed
  so that a positive change is always a worsening.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelcycle.config.spec import Task
from modelcycle.metrics import higher_is_better

PROBABILITY_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier")
"""Classification metrics computed from logged probabilities (threshold-free)."""
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1")
"""What :func:`estimated_metrics` estimates (binary; multiclass: accuracy only)."""


def class_keys(values: pd.Series) -> np.ndarray:
    """Class values as text keys: ``1``, ``1.0`` and ``"1"`` all become ``"1"``."""
    keys = values.astype(str).to_numpy(dtype=object)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    whole = np.isfinite(numbers) & (np.floor(numbers) == numbers)
    if whole.any():
        keys[whole] = numbers[whole].astype("int64").astype(str)
    return keys


def class_names(values: pd.Series[Any]) -> pd.Series[Any]:
    """:func:`class_keys` as a Series with the same index."""
    return pd.Series(class_keys(values), index=values.index, dtype=object)


def realised_metrics(labelled: pd.DataFrame, task: Task) -> dict[str, float]:
    """Metrics of labelled, successfully predicted rows (empty when there are none).

    Args:
        labelled: Rows with ``prediction``, ``label`` and ``probabilities`` columns (a
            :func:`~modelcycle.store.window` frame's labelled rows).
        task: ``regression`` or ``classification``.
    """
    from modelcycle.metrics import classification_metrics, regression_metrics

    if labelled.empty:
        return {}
    if task == "regression":
        truth = pd.to_numeric(labelled["label"], errors="coerce").to_numpy(dtype="float64")
        pred = pd.to_numeric(labelled["prediction"], errors="coerce").to_numpy(dtype="float64")
        keep = np.isfinite(truth) & np.isfinite(pred)
        return regression_metrics(truth[keep], pred[keep]) if keep.any() else {}
    truth_names = class_names(labelled["label"])
    metrics = {"accuracy": float((truth_names == class_names(labelled["prediction"])).mean())}
    matrix, classes = probability_matrix(labelled["probabilities"])
    if matrix is not None:
        scored = classification_metrics(truth_names.to_numpy(), matrix, classes=classes)
        metrics.update({name: scored[name] for name in PROBABILITY_METRICS})
    return metrics


def probability_matrix(probabilities: pd.Series) -> tuple[np.ndarray | None, list[str]]:
    """Logged ``{class: probability}`` dicts as a matrix (columns: sorted class keys).

    Returns:
        The matrix and its classes, or ``(None, [])`` when a row has no probabilities.
    """
    if probabilities.empty or not probabilities.notna().all():
        return None, []
    proba = pd.DataFrame.from_records(probabilities.tolist(), index=probabilities.index)
    proba.columns = [str(c) for c in proba.columns]
    classes = sorted(proba.columns)
    return proba[classes].fillna(0.0).to_numpy(dtype="float64"), classes


EXPECTED_FIELDS = ("rows", "correct", "tp", "fp", "fn")
"""The sums of :func:`expected_counts`, in order."""


def expected_counts(rows: pd.DataFrame) -> np.ndarray:
    """Sums behind :func:`estimated_metrics` (add them up over chunks of a window).

    Args:
        rows: Successfully predicted rows with ``prediction`` (the logged class) and
            ``probabilities``.

    Returns:
        Rows counted, expected correct rows, and (binary) expected true positives, false
        positives and false negatives — see :data:`EXPECTED_FIELDS`; zeros without
        probabilities. The positive class is the second of the sorted class keys.
    """
    sums = np.zeros(len(EXPECTED_FIELDS))
    matrix, classes = probability_matrix(rows["probabilities"]) if len(rows) else (None, [])
    if matrix is None:
        return sums
    column = {name: index for index, name in enumerate(classes)}
    picked = np.array([column.get(name, -1) for name in class_keys(rows["prediction"])])
    known = picked >= 0
    sums[0] = known.sum()
    sums[1] = matrix[known, picked[known]].sum()
    if len(classes) == 2:
        positive = picked[known] == 1
        p_positive = matrix[known, 1]
        sums[2] = p_positive[positive].sum()
        sums[3] = (1 - p_positive[positive]).sum()
        sums[4] = p_positive[~positive].sum()
    return sums


def estimated_metrics(counts: np.ndarray, binary: bool) -> dict[str, float]:
    """Expected metrics of the logged decisions from :func:`expected_counts` (no labels needed).

    Returns:
        Expected accuracy; for binary tasks also precision, recall and F1. Empty for no rows.
    """
    rows, correct, tp, fp, fn = (float(value) for value in counts)
    if rows == 0:
        return {}
    estimates = {"accuracy": correct / rows}
    if binary:
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        estimates.update({"precision": precision, "recall": recall, "f1": f1})
    return estimates


def relative_change(metric: str, value: float | None, reference: float | None) -> float | None:
    """How much worse ``value`` is than ``reference``, relative: ``0.1`` = 10% worse.

    Negative when it is better; None when either is missing, not finite, or the reference is 0.
    """
    if value is None or reference is None:
        return None
    if not (np.isfinite(value) and np.isfinite(reference)) or reference == 0:
        return None
    worse = reference - value if higher_is_better(metric) else value - reference
    return float(worse / abs(reference))
