"""Multivariate drift by a domain classifier: how well can a model tell the current data apart?

Per-feature statistics (:mod:`modelcycle.monitoring.drift`) miss changes of the *joint*
distribution (two features that each keep their marginal but stop moving together). A domain
classifier sees them: label the reference rows 0 and the current rows 1, train a classifier on the
features, and measure how well it separates the two. Its ROC AUC is the drift score: about 0.5
when the two samples come from one distribution, up to 1 when every row can be told apart.

:func:`domain_drift` does it at a bounded cost:

1. **sampling**: at most ``max_rows`` rows of each side, drawn without replacement;
2. **encoding** by the schema: the ``numeric``, ``categorical`` and ``boolean`` features (text,
   datetime, id, time and ignored columns are left out: a time column alone would tell any two
   periods apart). Numbers stay numbers (unusable values and infinities become missing);
   categories become codes of the pooled sample's most frequent values (at most
   :data:`MAX_CATEGORIES`, the rest share one "other" code), so categories only the current data
   has keep their own code. Missing values stay missing: the classifier sees missingness too. A
   feature absent from one frame is missing in all of its rows;
3. **out-of-fold scores**: stratified K-fold; each fold's
   :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (native categorical support, early
   stopping on an inner validation split) scores the rows it did not train on, so every row gets
   one honest probability of being "current";
4. **AUC and its confidence interval**: the ROC AUC of all out-of-fold scores, with a 95 %
   interval from **DeLong's** variance (DeLong, DeLong & Clarke-Pearson 1988, in the fast
   mid-rank form of Sun & Xu 2014): ``auc +- 1.96 * sqrt(S10 / m + S01 / n)``, clipped to
   ``[0, 1]``. The variance treats the out-of-fold scores as given, so it leaves out the
   variability of training the fold models: on pairs of unchanged samples the AUC spreads up to
   about 1.25 times DeLong's standard error, and the interval holds 0.5 somewhat less often than
   95 %. The verdict's margin over 0.5 (``threshold``) covers that;
5. **verdict**: ``drifted`` when the interval's lower end is above ``threshold`` (0.55 by
   default): the classifier separates the samples better than chance, with confidence, and by a
   margin that matters. A change confined to a share ``p`` of the current rows caps the AUC near
   ``0.5 + p / 2`` (10 % of rows in a new category: 0.55), so the default flags changes that
   reach clearly more than a tenth of the rows;
6. **which features**: permutation importance on the held-out folds: for each fold model and
   feature, the drop of the fold's AUC when that feature's column is shuffled, averaged over the
   folds. It costs ``folds x features`` predictions, no refits.

Cost: ``folds`` fits and ``folds x (features + 1)`` predictions of a boosted model on one OpenMP
thread (its threads spin-wait, so on a shared two-core machine one busy neighbour makes more
threads slower, not faster): about a second for 5,000 rows a side and a few seconds for 20,000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelcycle.data.schema import ColumnSchema, FeatureSchema
from modelcycle.monitoring.profile import _category_key

MIN_ROWS = 50
"""Fewest rows of each side :func:`domain_drift` accepts."""

MAX_CATEGORIES = 254
"""Most category codes per feature; rarer values share one more code (the classifier's limit)."""

TOP_FEATURES = 5
"""How many features :attr:`DomainDrift.top_features` lists."""

Z_95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95 % interval."""

_KINDS = ("numeric", "categorical", "boolean")


@dataclass(frozen=True)
class DomainDrift:
    """The result of a domain classifier (reference = 0, current = 1).

    Attributes:
        auc: ROC AUC of the out-of-fold probabilities of being a current row (0.5: no drift).
        ci_low: Lower end of the 95 % DeLong interval of ``auc``.
        ci_high: Upper end of the interval.
        drifted: ``ci_low > threshold``: the classifier tells the samples apart, with confidence.
        n_reference: Reference rows used (after sampling down to ``max_rows``).
        n_current: Current rows used.
        top_features: Up to :data:`TOP_FEATURES` ``(feature, importance)`` pairs, most important
            first; importance is the mean drop of the held-out AUC when the feature is shuffled.
        threshold: The AUC the interval's lower end must exceed for ``drifted``.
    """

    auc: float
    ci_low: float
    ci_high: float
    drifted: bool
    n_reference: int
    n_current: int
    top_features: list[tuple[str, float]]
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``top_features`` as ``[name, importance]`` lists)."""
        return {
            "auc": self.auc,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "drifted": self.drifted,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "top_features": [[name, value] for name, value in self.top_features],
            "threshold": self.threshold,
        }


def domain_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: FeatureSchema,
    *,
    max_rows: int = 20_000,
    folds: int = 3,
    seed: int = 0,
    threshold: float = 0.55,
) -> DomainDrift:
    """Train a classifier to tell ``current`` rows from ``reference`` rows; its AUC is the drift.

    Args:
        reference: The reference (training) data; extra columns are ignored.
        current: The current window.
        schema: The dataset's schema: which columns are features and their kinds.
        max_rows: Most rows used from each side (a random sample beyond that).
        folds: Folds of the stratified cross-validation (>= 2).
        seed: Seed of the sampling, the folds, the models and the shuffles.
        threshold: The AUC the interval's lower end must exceed for a drift verdict
            (0.5 <= threshold < 1).

    Returns:
        The AUC, its 95 % interval, the verdict and the most important features.

    Raises:
        ValueError: Either side has fewer than :data:`MIN_ROWS` rows, the schema has no usable
            feature, or a parameter is out of range.
    """
    if max_rows < MIN_ROWS:
        raise ValueError(f"max_rows must be at least {MIN_ROWS}, got {max_rows}")
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    if not 0.5 <= threshold < 1:
        raise ValueError(f"threshold must be in [0.5, 1), got {threshold}")
    if min(len(reference), len(current)) < MIN_ROWS:
        raise ValueError(
            f"domain drift needs at least {MIN_ROWS} rows on each side, got {len(reference)} "
            f"reference and {len(current)} current rows: widen the monitoring window (or lower "
            "its minimum) so it holds more rows, or skip the multivariate check"
        )
    columns = [c for c in schema.features if c.kind in _KINDS]
    if not columns:
        raise ValueError(
            "domain drift needs at least one numeric, categorical or boolean feature, and the "
            "schema has none: check the feature roles and kinds in the schema"
        )
    rng = np.random.default_rng(seed)
    reference = _sample(reference, max_rows, rng)
    current = _sample(current, max_rows, rng)
    matrix, names, categorical = _encode(reference, current, columns)
    if not names:
        raise ValueError(
            "every feature is missing in both frames, so there is nothing to compare: "
            "check that the frames hold the schema's columns"
        )
    labels = np.r_[np.zeros(len(reference), np.int8), np.ones(len(current), np.int8)]
    scores, importances = _out_of_fold(matrix, labels, categorical, folds, seed, rng)
    auc, variance = delong(labels, scores)
    half = Z_95 * math.sqrt(variance)
    low, high = max(0.0, auc - half), min(1.0, auc + half)
    ranked = sorted(zip(names, importances.tolist(), strict=True), key=lambda p: (-p[1], p[0]))
    return DomainDrift(
        auc=auc,
        ci_low=low,
        ci_high=high,
        drifted=low > threshold,
        n_reference=len(reference),
        n_current=len(current),
        top_features=ranked[:TOP_FEATURES],
        threshold=threshold,
    )


def delong(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """ROC AUC and DeLong's variance of it (the fast mid-rank algorithm of Sun & Xu 2014).

    Args:
        labels: 1 for positives, 0 for negatives (both present, at least two of each).
        scores: Higher means more likely positive; ties count one half.

    Returns:
        ``(auc, variance)``.

    Raises:
        ValueError: A class has fewer than two rows.
    """
    from scipy.stats import rankdata

    positive = np.asarray(labels) == 1
    x, y = np.asarray(scores, dtype="float64")[positive], np.asarray(scores, "float64")[~positive]
    m, n = len(x), len(y)
    if min(m, n) < 2:
        raise ValueError(f"DeLong's variance needs two rows of each class, got {m} and {n}")
    combined = rankdata(np.r_[x, y])
    tx, ty = rankdata(x), rankdata(y)
    tz_x, tz_y = combined[:m], combined[m:]
    auc = float((tz_x.sum() - m * (m + 1) / 2) / (m * n))
    v10 = (tz_x - tx) / n  # per positive: share of negatives it outranks
    v01 = 1.0 - (tz_y - ty) / m  # per negative: share of positives that outrank it
    variance = float(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
    return auc, variance


# --------------------------------------------------------------------------------------------
# internals


def _sample(frame: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=rows, replace=False))]


def _encode(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[ColumnSchema]
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The pooled float matrix, its feature names and its categorical mask (all-missing dropped)."""
    rows = len(reference) + len(current)
    blocks: list[np.ndarray] = []
    names: list[str] = []
    categorical: list[bool] = []
    for col in columns:
        pooled = pd.concat(
            [_column(reference, col.name), _column(current, col.name)], ignore_index=True
        )
        if col.kind == "numeric":
            values = pd.to_numeric(pooled, errors="coerce").to_numpy(dtype="float64", copy=True)
            values[~np.isfinite(values)] = np.nan
        else:
            values = _codes(pooled, boolean=col.kind == "boolean")
        if np.isnan(values).all():
            continue
        blocks.append(values)
        names.append(col.name)
        categorical.append(col.kind != "numeric")
    matrix = np.column_stack(blocks) if blocks else np.empty((rows, 0))
    return matrix, names, np.asarray(categorical, dtype=bool)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].reset_index(drop=True)
    return pd.Series(np.full(len(frame), np.nan), dtype="float64")


def _codes(series: pd.Series, *, boolean: bool) -> np.ndarray:
    """Codes by frequency of the category keys (NaN for missing; rare values share the last)."""
    factor, uniques = pd.factorize(series, use_na_sentinel=True)
    present = factor >= 0
    # Category keys as the profiles write them (True/False, 2.0 -> 2): one call per distinct value.
    keys = [_category_key(value, boolean) for value in np.asarray(uniques, dtype=object).tolist()]
    distinct, key_of = np.unique(np.asarray(keys, dtype=str), return_inverse=True)
    per_row = key_of.reshape(-1)[factor[present]]
    counts = np.bincount(per_row, minlength=len(distinct))
    order = np.lexsort((np.arange(len(counts)), -counts))  # most frequent first, ties by key
    rank = np.empty(len(counts), dtype=np.int64)
    rank[order] = np.arange(len(counts))
    out = np.full(len(series), np.nan)
    out[present] = np.minimum(rank[per_row], MAX_CATEGORIES).astype("float64")
    return out


def _out_of_fold(
    matrix: np.ndarray,
    labels: np.ndarray,
    categorical: np.ndarray,
    folds: int,
    seed: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities of "current" and the mean held-out permutation importances."""
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: its threads spin-wait, so on a shared two-core machine a busy neighbour
    # makes the default (all cores) several times slower (as in training's single_threaded_openmp).
    with threadpool_limits(limits=1, user_api="openmp"):
        return _folds(matrix, labels, categorical, folds, seed, rng)


def _folds(
    matrix: np.ndarray,
    labels: np.ndarray,
    categorical: np.ndarray,
    folds: int,
    seed: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    scores = np.empty(len(labels), dtype="float64")
    importances = np.zeros(matrix.shape[1], dtype="float64")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(matrix, labels):
        model = HistGradientBoostingClassifier(
            max_iter=200,
            learning_rate=0.1,
            max_leaf_nodes=31,
            categorical_features=categorical if categorical.any() else None,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=10,
            random_state=seed,
        ).fit(matrix[train], labels[train])
        held_out, truth = matrix[test], labels[test]
        scores[test] = model.predict_proba(held_out)[:, 1]
        base = _auc(truth, scores[test])
        for j in range(matrix.shape[1]):
            shuffled = held_out.copy()
            shuffled[:, j] = rng.permutation(shuffled[:, j])
            importances[j] += base - _auc(truth, model.predict_proba(shuffled)[:, 1])
    return scores, importances / folds


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by mid-ranks (ties count one half)."""
    from scipy.stats import rankdata

    positive = labels == 1
    m, n = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - m * (m + 1) / 2) / (m * n))
