"""Class balance of a classification target, and the ways to correct an imbalance.

Strategies (``imbalance.strategy`` in ``modelcycle.toml``): ``none``; ``class_weight`` (the
estimator weighs rows by :func:`class_weights` / :func:`sample_weights`); ``random_over``,
``random_under`` and ``smote`` (imbalanced-learn resamplers aiming at a minority/majority ratio of
``imbalance.sampling_ratio``).

Resampling is applied to training folds only, never to validation or test data: those must keep
the class shares the model will meet in production, or their metrics lie. Training therefore
puts the sampler from :func:`make_sampler` inside an imbalanced-learn ``Pipeline`` after the
preprocessor, where it runs at ``fit`` time only (so also only on each cross-validation training
fold) and is skipped at ``predict`` time. :func:`resample_training` is the convenience for data
that is already numeric; pass it the training part alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelcycle.config.spec import ImbalanceSpec
from modelcycle.errors import DataError

IMBALANCE_SHARE = 0.2
"""A binary target is imbalanced when its minority class holds less than this share of rows.

With ``k`` classes the threshold scales with the balanced share ``1 / k``: the minority is
imbalanced below ``IMBALANCE_SHARE * 2 / k`` (40% of its balanced share), so ten equal classes
are not flagged.
"""
SMOTE_NEIGHBORS = 5
"""Neighbours SMOTE interpolates between (imbalanced-learn's default)."""
NO_SAMPLER = ("none", "class_weight")


@dataclass(frozen=True)
class ClassBalance:
    """How the rows of a classification target are spread over its classes.

    Attributes:
        counts: Class label (as text) -> rows, most frequent first.
        shares: Class label -> share of the rows with a target.
        minority: The least frequent class.
        majority: The most frequent class.
        ratio: Minority rows / majority rows (1.0 when balanced).
    """

    counts: dict[str, int]
    shares: dict[str, float]
    minority: str
    majority: str
    ratio: float

    @property
    def n_classes(self) -> int:
        """The number of classes."""
        return len(self.counts)

    @property
    def imbalanced(self) -> bool:
        """Whether the minority share is below ``IMBALANCE_SHARE`` (scaled for multiclass)."""
        return self.shares[self.minority] < imbalance_threshold(self.n_classes)


def imbalance_threshold(n_classes: int) -> float:
    """The minority share below which a target of ``n_classes`` classes is imbalanced."""
    return IMBALANCE_SHARE * 2 / max(n_classes, 2)


@dataclass(frozen=True)
class SamplingRatio:
    """An imbalanced-learn ``sampling_strategy`` that aims at a minority/majority ratio.

    Unlike a float strategy it works for multiclass targets too, and it leaves classes that already
    meet the ratio alone instead of failing. ``over`` grows every class to at least
    ``ratio`` x the majority's rows; ``under`` shrinks every class to at most the minority's rows /
    ``ratio``. For a binary target this matches imbalanced-learn's float strategy.

    Args:
        ratio: The minority/majority ratio to reach, in (0, 1].
        mode: ``over`` or ``under``.
    """

    ratio: float
    mode: Literal["over", "under"]

    def __call__(self, y: Any) -> dict[Any, int]:
        """Class -> rows wanted after resampling, for the classes that need a change."""
        labels, counts = np.unique(np.asarray(y), return_counts=True)
        if self.mode == "over":
            wanted = int(self.ratio * counts.max())
            return {label: wanted for label, n in zip(labels, counts, strict=True) if n < wanted}
        wanted = int(counts.min() / self.ratio)
        return {label: wanted for label, n in zip(labels, counts, strict=True) if n > wanted}


def class_balance(y: pd.Series) -> ClassBalance:
    """Count the classes of a target; rows without a target are left out.

    Raises:
        DataError: The target has no values, or a single class.
    """
    values = y.dropna()
    if values.empty:
        raise DataError(
            f"target {y.name!r} has no values",
            "check that the target names the right column and that rows have a value",
        )
    tallied = values.value_counts()
    pairs = sorted(
        ((str(label), int(n)) for label, n in tallied.items()), key=lambda p: (-p[1], p[0])
    )
    if len(pairs) < 2:
        label, n = pairs[0]
        raise DataError(
            f"target {y.name!r} has a single class {label!r} ({n} rows); a classifier needs at "
            "least two",
            "check the target column and any filter on the data, or collect rows of other classes",
        )
    total = sum(n for _, n in pairs)
    counts = dict(pairs)
    majority, minority = pairs[0][0], pairs[-1][0]
    return ClassBalance(
        counts=counts,
        shares={label: n / total for label, n in pairs},
        minority=minority,
        majority=majority,
        ratio=counts[minority] / counts[majority],
    )


def make_sampler(spec: ImbalanceSpec, seed: int) -> object | None:
    """The imbalanced-learn sampler for ``spec``, or ``None`` when nothing is resampled.

    The sampler aims at ``spec.sampling_ratio`` through :class:`SamplingRatio`. Put it in an
    imbalanced-learn ``Pipeline`` after the preprocessor (SMOTE needs numeric inputs).

    Args:
        spec: The project's imbalance section.
        seed: Random state of the sampler.

    Returns:
        A ``RandomOverSampler``, ``RandomUnderSampler`` or ``SMOTE``; ``None`` for ``none`` and
        ``class_weight``.
    """
    if spec.strategy in NO_SAMPLER:
        return None
    sampler: object
    if spec.strategy == "random_over":
        from imblearn.over_sampling import RandomOverSampler

        sampler = RandomOverSampler(
            sampling_strategy=SamplingRatio(spec.sampling_ratio, "over"), random_state=seed
        )
    elif spec.strategy == "random_under":
        from imblearn.under_sampling import RandomUnderSampler

        sampler = RandomUnderSampler(
            sampling_strategy=SamplingRatio(spec.sampling_ratio, "under"), random_state=seed
        )
    elif spec.strategy == "smote":
        from imblearn.over_sampling import SMOTE

        sampler = SMOTE(
            sampling_strategy=SamplingRatio(spec.sampling_ratio, "over"),
            k_neighbors=SMOTE_NEIGHBORS,
            random_state=seed,
        )
    else:  # pragma: no cover - ImbalanceSpec validates the strategy
        raise DataError(
            f"unknown imbalance strategy {spec.strategy!r}",
            "use none, class_weight, random_over, random_under or smote",
        )
    return sampler


def class_weights(y: pd.Series) -> dict[Any, float]:
    """'Balanced' class weights: ``n_rows / (n_classes * rows_of_class)``, keyed by class label.

    Rows without a target are left out. The weights make every class weigh the same in total.

    Raises:
        DataError: The target has no values.
    """
    tallied = y.dropna().value_counts()
    if tallied.empty:
        raise DataError(
            f"target {y.name!r} has no values",
            "check that the target names the right column and that rows have a value",
        )
    total, k = int(tallied.sum()), len(tallied)
    return {label: total / (k * int(n)) for label, n in tallied.items()}


def sample_weights(y: pd.Series) -> np.ndarray:
    """Per-row weights from :func:`class_weights` (1.0 for rows without a target).

    They average to 1 over rows with a target, so a model's loss keeps its scale.
    """
    weights = class_weights(y)
    mapped = y.map(weights).astype("float64").fillna(1.0)
    result: np.ndarray = mapped.to_numpy(dtype="float64")
    return result


def resample_training(
    X: pd.DataFrame,  # noqa: N803 - the scikit-learn name
    y: pd.Series,
    spec: ImbalanceSpec,
    seed: int,
) -> tuple[pd.DataFrame, pd.Series]:
    """Resample training data (only training data: see the module docstring).

    Random over/under-sampling keep the rows' index labels (a repeated row repeats its label);
    SMOTE returns the original rows followed by synthetic ones, under a fresh ``RangeIndex``.

    Args:
        X: Training features.
        y: Training target, aligned with ``X``, without missing values.
        spec: The project's imbalance section.
        seed: Random state of the sampler.

    Returns:
        The resampled ``(X, y)``; the inputs themselves unchanged for ``none`` / ``class_weight``.

    Raises:
        DataError: Missing target values, a single class, or SMOTE on non-numeric, missing or too
            few values.
    """
    if spec.strategy in NO_SAMPLER:
        return X, y
    if len(X) != len(y):
        raise DataError(
            f"features have {len(X)} rows but the target has {len(y)}",
            "pass the target of the same training rows",
        )
    missing = int(y.isna().sum())
    if missing:
        raise DataError(
            f"target {y.name!r} is missing on {missing} training rows; they cannot be resampled",
            "drop the rows without a target before resampling",
        )
    balance = class_balance(y)
    if spec.strategy == "smote":
        _check_smote_inputs(X, balance)
    sampler: Any = make_sampler(spec, seed)
    try:
        X_out, y_out = sampler.fit_resample(X, y)  # noqa: N806
    except ValueError as err:
        raise DataError(
            f"{spec.strategy} could not resample the training data: {err}",
            'check the training features, or set imbalance.strategy = "class_weight"',
        ) from None
    if spec.strategy != "smote":
        taken = np.asarray(sampler.sample_indices_)
        return X.iloc[taken], y.iloc[taken]
    X_out = pd.DataFrame(np.asarray(X_out), columns=X.columns)  # noqa: N806
    return X_out, pd.Series(np.asarray(y_out), name=y.name, dtype=y.dtype)


def _check_smote_inputs(X: pd.DataFrame, balance: ClassBalance) -> None:  # noqa: N803
    text = [
        str(c)
        for c in X.columns
        if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))
    ]
    if text:
        shown = ", ".join(repr(c) for c in text[:5]) + (" ..." if len(text) > 5 else "")
        raise DataError(
            f"SMOTE needs numeric features here, but {shown} are not numeric",
            'set imbalance.strategy = "random_over", or let training apply SMOTE inside its '
            "pipeline after the features are encoded",
        )
    missing = [str(c) for c in X.columns if X[c].isna().any()]
    if missing:
        raise DataError(
            f"SMOTE cannot interpolate missing values, and {', '.join(map(repr, missing[:5]))} "
            "have some",
            'set imbalance.strategy = "random_over", or let training apply SMOTE inside its '
            "pipeline after imputation",
        )
    smallest = balance.counts[balance.minority]
    needed = SMOTE_NEIGHBORS + 1
    if smallest < needed:
        raise DataError(
            f"SMOTE needs at least {needed} rows of each class, but class {balance.minority!r} "
            f"has {smallest}",
            'set imbalance.strategy = "random_over", or collect more rows of that class',
        )
