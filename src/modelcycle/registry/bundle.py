"""The model bundle: everything one registered model version carries, and how it predicts.

A bundle is the whole fitted pipeline (preprocessing + estimator) plus the FeatureSchema, the
reference profile, the OOD detector, metrics vs the baseline, the decision threshold, digests of
the training data and the spec, library versions and a model card. ``predict_frame`` is the one
place that turns a pipeline's output into predictions, so modelcycle's loader and the MLflow
pyfunc agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from modelcycle.data.schema import FeatureSchema

if TYPE_CHECKING:
    from modelcycle.monitoring.ood import OODDetector

Task = Literal["regression", "classification"]


@dataclass
class ModelBundle:
    """A trained model ready to register.

    Attributes:
        name: Registered model name (the project's name).
        pipeline: Fitted scikit-learn (or imbalanced-learn) pipeline; takes a DataFrame with the
            schema's feature columns by name.
        schema: The FeatureSchema of the training data.
        task: ``regression`` or ``classification``.
        metric: The deciding metric.
        threshold: Decision threshold on the positive-class probability (binary tasks).
        classes: Class labels in ``predict_proba`` column order (classification).
        metrics: Test metrics per model, e.g. ``{"model": {...}, "dummy": {...}, "linear": {...}}``.
        baseline: The name of the best baseline in ``metrics``.
        slices: Per-slice test metrics (records: feature, value, count, metrics...).
        profile: The reference profile of the training data (JSON-ready dict).
        candidate: The winning candidate's name, e.g. ``lgbm``.
        params: Its hyper-parameters.
        data_digest: Digest of the training data.
        spec_hash: sha256 of the project's ``modelcycle.toml``.
        training_rows: Rows the final model was fitted on.
        input_example: A few rows of features, for the MLflow signature and docs.
        extra: Free-form metadata recorded with the version (tuning budget, git commit, ...).
        ood: The fitted out-of-distribution detector (``None``: the server does not check rows).
    """

    name: str
    pipeline: Any
    schema: FeatureSchema
    task: Task
    metric: str
    metrics: dict[str, dict[str, float]]
    baseline: str
    profile: dict[str, Any]
    candidate: str
    params: dict[str, Any]
    data_digest: str
    spec_hash: str
    training_rows: int
    input_example: pd.DataFrame
    threshold: float | None = None
    classes: list[Any] | None = None
    slices: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    ood: OODDetector | None = None


def predict_frame(
    pipeline: Any,
    frame: pd.DataFrame,
    *,
    task: Task,
    feature_names: list[str],
    threshold: float | None = None,
    classes: list[Any] | None = None,
) -> pd.DataFrame:
    """Predict on a DataFrame of features by name.

    Returns:
        Regression: one column ``prediction``. Classification: ``prediction`` (the class chosen
        with the threshold for binary tasks) and one ``proba_<class>`` column per class.
    """
    inputs = frame[feature_names]
    if task == "regression":
        return pd.DataFrame({"prediction": np.asarray(pipeline.predict(inputs))}, index=frame.index)
    proba = np.asarray(pipeline.predict_proba(inputs), dtype="float64")
    labels = list(classes) if classes is not None else list(pipeline.classes_)
    out = pd.DataFrame({"prediction": choose_classes(proba, labels, threshold)}, index=frame.index)
    for i, label in enumerate(labels):
        out[f"proba_{label}"] = proba[:, i]
    return out


def choose_classes(proba: np.ndarray, labels: list[Any], threshold: float | None) -> np.ndarray:
    """The predicted class per row.

    Binary tasks with a threshold: the positive class when its probability reaches it; else
    the most probable class.
    """
    if proba.shape[1] == 2 and threshold is not None:
        chosen: np.ndarray = np.where(proba[:, 1] >= threshold, labels[1], labels[0])
        return chosen
    best: np.ndarray = np.asarray(labels)[proba.argmax(axis=1)]
    return best
