"""Out-of-distribution detection on every request: per-feature checks and an isolation score.

:class:`OODDetector` is fitted once, at training time, on the training features and stored in the
model bundle (``ood.skops``). For every row the server predicts it answers three per-feature
questions and one multivariate one:

- **out of range**: a numeric value below ``min - margin * (max - min)`` or above
  ``max + margin * (max - min)`` of the training data (``margin`` defaults to 10 % of the range);
- **unseen category**: a categorical value the training data never had. Only features whose
  categories are *closed* are checked: the Good-Turing estimate of the chance that a legitimate
  new row brings a new value (the share of values seen exactly once) must be at most
  ``unseen_tolerance``. High-cardinality features (addresses, free text, ids) keep their top
  ``max_categories`` values for the encoding but are never flagged for a new one, which would
  otherwise flag most legitimate rows;
- **missing**: a feature that was never missing in training is missing;
- **multivariate**: an :class:`~sklearn.ensemble.IsolationForest` on a simple numeric encoding
  (numeric features with missing values imputed by the training median, plus one-hot columns for
  categorical features with at most ``onehot_max`` categories). Its anomaly score (``2 ** -(mean
  path length / c(n))``, in ``(0, 1]``, higher is more unusual: scikit-learn's
  ``-score_samples``) is flagged above a threshold calibrated on the training rows so that a share
  ``fpr`` of them (1 % by default) would be flagged.

A row is flagged when any check fires; its ``reasons`` name them (``"area: out of range"``,
``"neighborhood: unseen category"``, ``"bathrooms: missing"``, ``"multivariate"``).

**Speed.** Scoring is vectorised over rows: the forest's trees are flattened at fit time into one
set of node arrays and every row walks all trees at once, one NumPy step per tree level (at most
``ceil(log2(max_samples))`` steps), without scikit-learn's per-call input validation. The
result equals ``-IsolationForest.score_samples`` (tests check it to 1e-12). One row costs a few
tens of microseconds; categorical look-ups are dictionary ``get`` calls driven by ``map`` (no
Python bytecode per row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

Columns = dict[str, np.ndarray]
"""Inputs by feature name: float arrays for numbers, object arrays for the rest."""

MULTIVARIATE = "multivariate"
"""The reason given when the isolation score is over the threshold."""


@dataclass(frozen=True)
class OODResult:
    """The OOD verdicts for a batch of rows.

    Attributes:
        flag: Per row, whether any check fired.
        score: Per row, the isolation score in ``(0, 1]`` (higher is more unusual; NaN without
            a forest).
        threshold: The calibrated score threshold.
        out_of_range: ``(rows, numeric features)`` numeric values outside the widened range.
        unseen: ``(rows, checked categorical features)`` values never seen in training.
        missing: ``(rows, required features)`` missing values of never-missing features.
        over: Per row, whether the score is over the threshold.
        numeric: Names of the columns of ``out_of_range``.
        categorical: Names of the columns of ``unseen``.
        required: Names of the columns of ``missing``.
    """

    flag: np.ndarray
    score: np.ndarray
    threshold: float
    out_of_range: np.ndarray
    unseen: np.ndarray
    missing: np.ndarray
    over: np.ndarray
    numeric: list[str]
    categorical: list[str]
    required: list[str]

    def __len__(self) -> int:
        return len(self.flag)

    @property
    def rate(self) -> float:
        """The share of flagged rows (0 for no rows)."""
        return float(self.flag.mean()) if len(self.flag) else 0.0

    def reasons(self) -> list[list[str]]:
        """Per row, the checks that fired, e.g. ``["area: out of range", "multivariate"]``.

        Only flagged cells are visited, so the cost grows with the flags, not the rows.
        """
        out: list[list[str]] = [[] for _ in range(len(self.flag))]
        for matrix, names, what in (
            (self.missing, self.required, "missing"),
            (self.out_of_range, self.numeric, "out of range"),
            (self.unseen, self.categorical, "unseen category"),
        ):
            rows, cols = np.nonzero(matrix)
            for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
                out[row].append(f"{names[col]}: {what}")
        for row in np.flatnonzero(self.over).tolist():
            out[row].append(MULTIVARIATE)
        return out

    def records(self) -> list[dict[str, Any]]:
        """Per row, ``{"flag": bool, "score": float | None, "reasons": [...]}`` (JSON-ready)."""
        scores = [None if math.isnan(s) else round(s, 6) for s in self.score.tolist()]
        return [
            {"flag": flag, "score": score, "reasons": reasons}
            for flag, score, reasons in zip(self.flag.tolist(), scores, self.reasons(), strict=True)
        ]


class OODDetector:
    """Flags rows unlike the training data (scikit-learn conventions: ``fit`` returns self).

    Args:
        fpr: Target share of training-like rows the multivariate score flags (0 < fpr < 1).
        margin: How far past the training range a numeric value may go, as a share of the range.
        max_categories: Most categories kept per categorical feature (the most frequent).
        unseen_tolerance: Largest Good-Turing chance of a new value (share of values seen once)
            for which a feature's new values are flagged.
        onehot_max: Categorical features with at most this many categories are one-hot encoded
            for the isolation forest; others are left out of it.
        n_estimators: Trees in the isolation forest (0: no multivariate score).
        max_samples: Rows per tree.
        random_state: Seed of the forest.

    Example:
        >>> detector = OODDetector(fpr=0.01).fit(train_features)  # doctest: +SKIP
        >>> detector.score(live_features).rate  # doctest: +SKIP
    """

    def __init__(
        self,
        fpr: float = 0.01,
        margin: float = 0.1,
        max_categories: int = 1000,
        unseen_tolerance: float = 0.001,
        onehot_max: int = 20,
        n_estimators: int = 100,
        max_samples: int = 256,
        random_state: int = 0,
    ) -> None:
        self.fpr = fpr
        self.margin = margin
        self.max_categories = max_categories
        self.unseen_tolerance = unseen_tolerance
        self.onehot_max = onehot_max
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting

    def fit(self, frame: pd.DataFrame) -> OODDetector:
        """Learn ranges, categories, never-missing features, the forest and its threshold.

        Args:
            frame: The training features by name (every column is a feature).

        Returns:
            self.

        Raises:
            ValueError: ``frame`` has no rows, or a parameter is out of range.
        """
        if len(frame) == 0:
            raise ValueError("OODDetector.fit needs at least one row")
        if not 0 < self.fpr < 1:
            raise ValueError(f"fpr must be between 0 and 1, got {self.fpr}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        self.features_ = [str(c) for c in frame.columns]
        self.numeric_ = [c for c in self.features_ if frame[c].dtype.kind in "fiu"]
        skipped = {c for c in self.features_ if frame[c].dtype.kind in "mM"}
        self.required_ = [c for c in self.features_ if not frame[c].isna().any()]
        numbers = frame[self.numeric_].to_numpy(dtype="float64").reshape(len(frame), -1)
        finite = np.where(np.isfinite(numbers), numbers, np.nan)
        low, high = np.nanmin(_or_zero(finite), axis=0), np.nanmax(_or_zero(finite), axis=0)
        width = (high - low) * self.margin
        self.low_, self.high_ = low - width, high + width
        medians = np.nanmedian(_or_zero(finite), axis=0)
        self.medians_ = np.where(np.isnan(medians), 0.0, medians)

        self.categories_: dict[str, list[Any]] = {}
        self.checked_: list[str] = []
        for name in self.features_:
            if name in self.numeric_ or name in skipped:
                continue
            counts = frame[name].value_counts(dropna=True)
            top = counts.index[: self.max_categories].tolist()
            self.categories_[name] = top
            singletons = int((counts == 1).sum())
            seen = int(counts.sum())
            closed = len(counts) <= self.max_categories and seen > 0
            if closed and singletons / seen <= self.unseen_tolerance:
                self.checked_.append(name)
        self.onehot_ = [
            name for name, known in self.categories_.items() if len(known) <= self.onehot_max
        ]
        used = {*self.checked_, *self.onehot_}
        self.categories_ = {k: v for k, v in self.categories_.items() if k in used}
        self._fit_forest(self._encode(_frame_columns(frame, self.features_, self.numeric_)))
        return self

    def _fit_forest(self, matrix: np.ndarray) -> None:
        self.threshold_ = math.inf
        self.tree_arrays_: dict[str, np.ndarray] | None = None
        self.forest_: Any = None
        if self.n_estimators <= 0 or matrix.shape[1] == 0 or len(matrix) < 2:
            return
        from sklearn.ensemble import IsolationForest

        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(matrix)),
            random_state=self.random_state,
        ).fit(matrix)
        self.forest_ = forest
        self.tree_arrays_ = _flatten(forest)
        scores = self._isolation(matrix)
        self.threshold_ = float(np.quantile(scores, 1 - self.fpr, method="higher"))

    # ------------------------------------------------------------------ scoring

    def score(self, data: pd.DataFrame | Columns) -> OODResult:
        """Check every row of ``data`` (vectorised over rows).

        Args:
            data: Features by name: a DataFrame, or input columns as the server builds them
                (float arrays for numbers, object arrays for the rest). A missing feature
                counts as missing in every row.

        Returns:
            The per-row flags, scores and per-feature verdicts.
        """
        if isinstance(data, pd.DataFrame):
            columns = _frame_columns(data, [c for c in self.features_ if c in data], self.numeric_)
            rows = len(data)
        else:
            columns = data
            rows = len(next(iter(data.values()))) if data else 0
        numbers = self._numbers(columns, rows)
        out_of_range = (numbers < self.low_) | (numbers > self.high_)
        missing = np.empty((rows, len(self.required_)), dtype=bool)
        for j, name in enumerate(self.required_):
            values = columns.get(name)
            missing[:, j] = True if values is None else _isna(values)
        codes = self._codes(columns, rows)
        unseen = np.empty((rows, len(self.checked_)), dtype=bool)
        for j, name in enumerate(self.checked_):
            known = codes[name]
            unseen[:, j] = (known < 0) & ~_isna(columns[name]) if name in columns else False
        if self.tree_arrays_ is not None:
            imputed = np.where(np.isnan(numbers), self.medians_, numbers)
            score = self._isolation(self._matrix(imputed, codes))
        else:
            score = np.full(rows, np.nan)
        over = score > self.threshold_
        flag = over | out_of_range.any(axis=1) | unseen.any(axis=1) | missing.any(axis=1)
        return OODResult(
            flag=flag,
            score=score,
            threshold=self.threshold_,
            out_of_range=out_of_range,
            unseen=unseen,
            missing=missing,
            over=over,
            numeric=self.numeric_,
            categorical=self.checked_,
            required=self.required_,
        )

    def check_row(self, columns: Columns) -> dict[str, Any]:
        """Check one row given as input columns of length 1.

        Returns:
            ``{"flag": bool, "score": float | None, "reasons": [...]}``.
        """
        return self.score(columns).records()[0]

    # ------------------------------------------------------------------ encoding

    def _lookups(self) -> dict[str, dict[Any, int]]:
        """Category -> code per categorical feature (built once, not persisted)."""
        lookups: dict[str, dict[Any, int]] | None = self.__dict__.get("_lookup_cache")
        if lookups is None:
            lookups = {
                name: {value: code for code, value in enumerate(values)}
                for name, values in self.categories_.items()
            }
            self.__dict__["_lookup_cache"] = lookups
        return lookups

    def __getstate__(self) -> dict[str, Any]:
        """The parameters and learned state, without caches (what skops stores)."""
        return {k: v for k, v in self.__dict__.items() if k != "_lookup_cache"}

    def _numbers(self, columns: Columns, rows: int) -> np.ndarray:
        numbers = np.empty((rows, len(self.numeric_)), dtype="float64")
        for j, name in enumerate(self.numeric_):
            values = columns.get(name)
            numbers[:, j] = np.nan if values is None else _as_float(values)
        numbers[~np.isfinite(numbers)] = np.nan
        return numbers

    def _codes(self, columns: Columns, rows: int) -> dict[str, np.ndarray]:
        """Category codes (-1: unknown or missing) of the categorical features."""
        codes: dict[str, np.ndarray] = {}
        for name, known in self._lookups().items():
            values = columns.get(name)
            if values is None:
                codes[name] = np.full(rows, -1, dtype=np.int64)
                continue
            codes[name] = np.fromiter(
                map(known.get, _hashable(values), repeat(-1)), dtype=np.int64, count=rows
            )
        return codes

    def _matrix(self, imputed: np.ndarray, codes: dict[str, np.ndarray]) -> np.ndarray:
        """The forest's input: imputed numbers, then one one-hot block per encoded feature."""
        widths = [len(self.categories_[name]) for name in self.onehot_]
        matrix = np.zeros((len(imputed), imputed.shape[1] + sum(widths)), dtype="float64")
        matrix[:, : imputed.shape[1]] = imputed
        start = imputed.shape[1]
        rows = np.arange(len(imputed))
        for name, width in zip(self.onehot_, widths, strict=True):
            code = codes[name]
            hit = code >= 0
            matrix[rows[hit], start + code[hit]] = 1.0
            start += width
        return matrix

    def _encode(self, columns: Columns) -> np.ndarray:
        rows = len(next(iter(columns.values()))) if columns else 0
        numbers = self._numbers(columns, rows)
        imputed = np.where(np.isnan(numbers), self.medians_, numbers)
        return self._matrix(imputed, self._codes(columns, rows))

    def _isolation(self, matrix: np.ndarray) -> np.ndarray:
        """``-IsolationForest.score_samples`` from the flattened trees: all rows, all trees."""
        arrays = self.tree_arrays_
        assert arrays is not None
        # The trees compare float32 inputs (scikit-learn casts X) with float64 thresholds.
        x = matrix.astype(np.float32).astype(np.float64)
        roots = arrays["roots"]
        nodes = np.broadcast_to(roots, (len(x), len(roots))).copy()
        row = np.arange(len(x))[:, None]
        feature, threshold = arrays["feature"], arrays["threshold"]
        left, right = arrays["left"], arrays["right"]
        for _ in range(int(arrays["depth"][0])):
            go_left = x[row, feature[nodes]] <= threshold[nodes]
            nodes = np.where(go_left, left[nodes], right[nodes])
        depths = arrays["leaf_depth"][nodes].sum(axis=1)
        denominator = float(arrays["denominator"][0])
        if denominator == 0:
            return np.ones(len(x))
        scores: np.ndarray = 2.0 ** (-depths / denominator)
        return scores


def _flatten(forest: Any) -> dict[str, np.ndarray]:
    """One set of node arrays for all trees; leaves point to themselves."""
    feature, threshold, left, right, leaf_depth, roots = [], [], [], [], [], []
    offset = 0
    for tree, depth, average in zip(
        forest.estimators_,
        forest._decision_path_lengths,
        forest._average_path_length_per_tree,
        strict=True,
    ):
        t = tree.tree_
        own = np.arange(t.node_count) + offset
        leaf = t.children_left == -1
        roots.append(offset)
        feature.append(np.where(leaf, 0, t.feature))
        threshold.append(np.where(leaf, np.inf, t.threshold))
        left.append(np.where(leaf, own, t.children_left + offset))
        right.append(np.where(leaf, own, t.children_right + offset))
        leaf_depth.append(np.asarray(depth, dtype="float64") + np.asarray(average) - 1.0)
        offset += t.node_count
    samples = forest._max_samples
    return {
        "feature": np.concatenate(feature).astype(np.intp),
        "threshold": np.concatenate(threshold).astype("float64"),
        "left": np.concatenate(left).astype(np.intp),
        "right": np.concatenate(right).astype(np.intp),
        "leaf_depth": np.concatenate(leaf_depth),
        "roots": np.asarray(roots, dtype=np.intp),
        "depth": np.asarray([max(int(e.tree_.max_depth) for e in forest.estimators_)]),
        "denominator": np.asarray([len(forest.estimators_) * _average_path_length(samples)]),
    }


def _average_path_length(n: int) -> float:
    """The average path length of an unsuccessful search in a binary tree of ``n`` points."""
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (math.log(n - 1.0) + np.euler_gamma) - 2.0 * (n - 1.0) / n


def _frame_columns(frame: pd.DataFrame, names: list[str], numeric: list[str]) -> Columns:
    """Input columns from a frame: numeric features as floats, the rest as objects."""
    out: Columns = {}
    for name in names:
        series = frame[name]
        if name in numeric:
            out[name] = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
        else:
            out[name] = series.astype(object).to_numpy(dtype=object)
    return out


def _as_float(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "fiub":
        return values.astype("float64", copy=False)
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy("float64")


def _isna(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        nan: np.ndarray = np.isnan(values)
        return nan
    if values.dtype.kind in "iub":
        return np.zeros(len(values), dtype=bool)
    mask: np.ndarray = pd.isna(values)
    return mask


def _hashable(values: np.ndarray) -> Any:
    """The values as dictionary keys (object arrays as they are; others as Python scalars)."""
    return values if values.dtype == object else values.tolist()


def _or_zero(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` with all-missing columns set to 0, so reductions do not warn."""
    empty = np.isnan(matrix).all(axis=0)
    if not empty.any():
        return matrix
    out = matrix.copy()
    out[:, empty] = 0.0
    return out
