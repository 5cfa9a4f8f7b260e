"""What the prediction log says about the stable and the candidate version over one window.

:func:`window_stats` reads both versions' rows of a time window in one query and reduces each to
an :class:`ArmStats`: requests and errors, p99 latency, the predictions, the OOD rate and, for
rows whose label has arrived, the per-row loss. The arms are told apart by ``model_version``,
not by the ``arm`` column, so the comparison works whatever arm names the server writes
(``canary``, ``shadow``, ``green`` ...). :func:`prediction_psi` compares the two arms'
prediction distributions over bins taken from the pooled predictions (the binning of
:mod:`modelcycle.monitoring.profile`). Everything is vectorised over rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from modelcycle.config.spec import Task
from modelcycle.data.schema import FeatureSchema
from modelcycle.monitoring.performance import class_keys
from modelcycle.monitoring.profile import (
    CategoricalProfile,
    NumericProfile,
    current_profile,
    reference_profile,
)
from modelcycle.store.predictions import window

PSI_BINS = 10
"""Quantile bins of the pooled predictions for :func:`prediction_psi` (deciles)."""
PSI_SMOOTHING = 0.5
"""Pseudo-count added to every bin, so an empty bin does not make the PSI infinite."""


@dataclass(frozen=True)
class ArmStats:
    """One version's rows in the window.

    Attributes:
        version: The model version.
        requests: Predicted rows (failed ones included).
        errors: Rows that failed (``error`` set).
        latency_p99_ms: 99th percentile latency of the successful rows (``None``: none).
        predictions: Predictions of the successful rows: floats (regression) or class keys
            (classification; ``1.0`` becomes ``"1"``).
        ood_rate: Share of the rows with a known OOD flag that were flagged (``None``: no row
            has one).
        ood_checked: Rows with a known OOD flag.
        losses: Per-row loss of the labelled successful rows: absolute error (regression) or
            0/1 for a wrong class (classification).
        labelled: Labelled successful rows (``len(losses)``).
    """

    version: str
    requests: int = 0
    errors: int = 0
    latency_p99_ms: float | None = None
    predictions: np.ndarray = field(default_factory=lambda: np.empty(0))
    ood_rate: float | None = None
    ood_checked: int = 0
    losses: np.ndarray = field(default_factory=lambda: np.empty(0))
    labelled: int = 0

    @property
    def error_rate(self) -> float:
        """Failed rows / rows (0 without rows)."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def mean_loss(self) -> float | None:
        """Mean loss of the labelled rows (``None`` without labels)."""
        return float(self.losses.mean()) if self.labelled else None


@dataclass(frozen=True)
class WindowStats:
    """Both arms over the same window.

    Attributes:
        stable: The stable version's rows.
        candidate: The candidate version's rows.
        since: Start of the window (inclusive).
        until: End of the window (exclusive; ``None``: up to now).
        task: Regression or classification (how predictions and losses are compared).
    """

    stable: ArmStats
    candidate: ArmStats
    since: datetime | None
    until: datetime | None = None
    task: Task = "regression"


def window_stats(
    conn: Connection,
    name: str,
    stable_version: str,
    candidate_version: str,
    since: datetime | None,
    until: datetime | None = None,
    task: Task | None = None,
) -> WindowStats:
    """Read both versions' rows of a window from the prediction log (one query).

    Args:
        conn: An open connection to the store.
        name: The registered model.
        stable_version: The stable version.
        candidate_version: The candidate version.
        since: Start of the window, inclusive (``None``: from the beginning).
        until: End of the window, exclusive (``None``: no end).
        task: The model's task; inferred when ``None`` (classification when rows carry class
            probabilities or class names, else regression).

    Returns:
        The two arms' statistics.
    """
    frame = window(
        conn,
        name,
        version=[stable_version, candidate_version],
        since=since,
        until=until,
        with_features=False,
    )
    task = task or infer_task(frame)
    versions = frame["model_version"].astype(str)
    return WindowStats(
        stable=arm_stats(frame[versions == stable_version], stable_version, task),
        candidate=arm_stats(frame[versions == candidate_version], candidate_version, task),
        since=since,
        until=until,
        task=task,
    )


def infer_task(frame: pd.DataFrame) -> Task:
    """Classification when rows carry class probabilities or class names, else regression."""
    if frame.empty:
        return "regression"
    has_probabilities = bool(frame["probabilities"].notna().any())
    textual = not pd.api.types.is_numeric_dtype(frame["prediction"])
    return "classification" if has_probabilities or textual else "regression"


def arm_stats(frame: pd.DataFrame, version: str, task: Task) -> ArmStats:
    """Reduce one version's rows of a :func:`~modelcycle.store.window` frame.

    Args:
        frame: The version's rows (columns of :data:`~modelcycle.store.predictions.WINDOW_COLUMNS`).
        version: The version.
        task: How predictions and labels compare.
    """
    failed = frame["error"].notna().to_numpy(dtype=bool)
    ok = frame[~failed]
    latencies = ok["latency_ms"].to_numpy(dtype="float64")
    latencies = latencies[np.isfinite(latencies)]
    flags = _ood_flags(ok["ood"])
    known = flags.notna().to_numpy(dtype=bool)
    predicted = ok["prediction"].notna().to_numpy(dtype=bool)
    labelled = ok[ok["has_label"].to_numpy(dtype=bool) & predicted]
    losses = _losses(labelled["prediction"], labelled["label"], task)
    return ArmStats(
        version=version,
        requests=len(frame),
        errors=int(failed.sum()),
        latency_p99_ms=float(np.percentile(latencies, 99)) if latencies.size else None,
        predictions=_outcomes(ok["prediction"][predicted], task),
        ood_rate=float(flags[known].astype(bool).mean()) if known.any() else None,
        ood_checked=int(known.sum()),
        losses=losses,
        labelled=int(losses.size),
    )


def prediction_psi(
    stable: ArmStats, candidate: ArmStats, task: Task, bins: int = PSI_BINS
) -> float | None:
    """Population stability index between the two arms' predictions.

    Regression predictions are binned at the quantiles of both arms' predictions pooled
    (deciles by default); classes are compared by their frequencies. Each bin gets a
    pseudo-count of :data:`PSI_SMOOTHING`.

    Returns:
        The PSI (0 for identical distributions; above 0.25 is a large shift), or ``None`` when
        an arm has no predictions.
    """
    a, b = stable.predictions, candidate.predictions
    if not a.size or not b.size:
        return None
    pooled = np.concatenate([a, b])
    reference = _profile(pooled, task, bins)
    ref_outcome = reference.prediction
    if ref_outcome is None:  # pragma: no cover - predictions were given
        return None
    counts_a = _counts(current_profile(_rows(a.size), reference, predictions=a).prediction)
    counts_b = _counts(current_profile(_rows(b.size), reference, predictions=b).prediction)
    share_a = (counts_a + PSI_SMOOTHING) / (counts_a.sum() + PSI_SMOOTHING * counts_a.size)
    share_b = (counts_b + PSI_SMOOTHING) / (counts_b.sum() + PSI_SMOOTHING * counts_b.size)
    return float(np.sum((share_b - share_a) * np.log(share_b / share_a)))


# ----------------------------------------------------------------------------------- helpers


def _profile(values: np.ndarray, task: Task, bins: int) -> Any:
    schema = FeatureSchema(n_rows=values.size, target=None, task=task, columns=[])
    return reference_profile(_rows(values.size), schema, predictions=values, bins=bins, fine_bins=1)


def _rows(n: int) -> pd.DataFrame:
    return pd.DataFrame(index=pd.RangeIndex(n))


def _counts(profile: NumericProfile | CategoricalProfile | None) -> np.ndarray:
    if isinstance(profile, NumericProfile):
        return np.asarray(profile.counts, dtype="float64")
    if isinstance(profile, CategoricalProfile):
        counts = [*profile.frequencies.values(), profile.other_count]
        return np.asarray(counts, dtype="float64")
    return np.empty(0)


def _ood_flags(ood: pd.Series) -> pd.Series:
    """Each row's ``ood["flag"]`` as a boolean, or missing when the row has no flag."""
    if ood.empty:
        return pd.Series([], dtype="boolean")
    flags = ood.str.get("flag") if ood.notna().any() else pd.Series(None, index=ood.index)
    usable = flags.map(type).isin([bool, np.bool_])
    return flags.where(usable).astype("boolean")


def _outcomes(values: pd.Series, task: Task) -> np.ndarray:
    if task == "regression":
        numbers: np.ndarray = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        finite: np.ndarray = numbers[np.isfinite(numbers)]
        return finite
    return class_keys(values)


def _losses(predicted: pd.Series, truth: pd.Series, task: Task) -> np.ndarray:
    if task == "regression":
        pred = pd.to_numeric(predicted, errors="coerce").to_numpy(dtype="float64")
        true = pd.to_numeric(truth, errors="coerce").to_numpy(dtype="float64")
        loss: np.ndarray = np.abs(pred - true)
        measured: np.ndarray = loss[np.isfinite(loss)]
        return measured
    wrong = class_keys(predicted) != class_keys(truth)
    return np.asarray(wrong, dtype="float64")


def finite_or_none(value: float | None) -> float | None:
    """``value`` when it is a finite number, else ``None`` (for JSON and messages)."""
    return value if value is not None and math.isfinite(value) else None
