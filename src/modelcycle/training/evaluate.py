"""Evaluation on the untouched test part: metrics vs baselines, slices, permutation importance.

:class:`Evaluation` is what ``train`` hands to the report, the tracker and the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelcycle.config.spec import Task
from modelcycle.data.schema import FeatureSchema
from modelcycle.metrics import compute_metrics, higher_is_better, metric_names

MAX_SLICE_VALUES = 20
MIN_SLICE_ROWS = 5


@dataclass
class CandidateResult:
    """One trained model: a baseline or a tuned candidate."""

    name: str
    kind: Literal["baseline", "candidate"]
    params: dict[str, Any]
    valid_metrics: dict[str, float]
    test_metrics: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0
    trials: int = 0


@dataclass
class Evaluation:
    """Everything the evaluation report, the tracker and the model card show."""

    project: str
    task: Task
    metric: str
    results: list[CandidateResult]
    winner: str
    baseline: str
    margin: float
    improvement: float
    passed: bool
    reason: str
    y_test: np.ndarray
    test_prediction: np.ndarray
    """Regression: predicted values. Binary: positive-class probability. Multiclass: matrix."""
    threshold: float | None = None
    classes: list[Any] | None = None
    slices: pd.DataFrame = field(default_factory=pd.DataFrame)
    importance: pd.DataFrame = field(default_factory=pd.DataFrame)
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Columns: candidate, number, value, state, params, seconds."""

    def result(self, name: str) -> CandidateResult:
        """The result called ``name``."""
        return next(r for r in self.results if r.name == name)

    @property
    def winner_metrics(self) -> dict[str, float]:
        """Test metrics of the winning model."""
        return self.result(self.winner).test_metrics

    @property
    def baseline_metrics(self) -> dict[str, float]:
        """Test metrics of the best baseline."""
        return self.result(self.baseline).test_metrics


def slice_metrics(
    frame: pd.DataFrame,
    y_true: np.ndarray,
    prediction: np.ndarray,
    schema: FeatureSchema,
    task: Task,
    *,
    threshold: float = 0.5,
    classes: list[Any] | None = None,
) -> pd.DataFrame:
    """Metrics per value of each categorical feature (top values, with row counts).

    Returns:
        One row per (feature, value) with ``count`` and every metric of the task.
    """
    rows: list[dict[str, Any]] = []
    for col in schema.features:
        if col.kind not in ("categorical", "boolean") or col.name not in frame.columns:
            continue
        values = frame[col.name].astype("string").fillna("(missing)")
        for value, count in values.value_counts().iloc[:MAX_SLICE_VALUES].items():
            if count < MIN_SLICE_ROWS:
                continue
            mask = (values == value).to_numpy()
            scores = compute_metrics(
                task, y_true[mask], prediction[mask], threshold=threshold, classes=classes
            )
            rows.append({"feature": col.name, "value": str(value), "count": int(count), **scores})
    columns = ["feature", "value", "count", *metric_names(task)]
    return pd.DataFrame(rows, columns=columns)


def pick_best(results: list[CandidateResult], metric: str, split: str = "valid") -> CandidateResult:
    """The result with the best ``metric`` on ``split`` (``valid`` or ``test``); NaN loses."""
    sign = 1.0 if higher_is_better(metric) else -1.0

    def key(r: CandidateResult) -> float:
        value = (r.valid_metrics if split == "valid" else r.test_metrics).get(metric, np.nan)
        return -np.inf if np.isnan(value) else sign * value

    return max(results, key=key)
