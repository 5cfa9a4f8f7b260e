"""Reference and current profiles: fixed-bin histograms, quantiles and category counts per column.

A *reference profile* is made once, at training time, from the training data (and the model's
predictions and the target) and stored in the model bundle. A *current profile* is made from a
window of live data **with the reference's bins and categories**, so the two compare bin by bin:
drift statistics (PSI, Jensen-Shannon, chi-square, binned KS / Wasserstein) then cost
``features × bins``, not rows. Two current profiles of the same reference add up with
:func:`merge` (streaming windows).

Numeric columns get two histograms over right-closed bins with open ends,
``(-inf, e0], (e0, e1], ..., (ek, +inf)``:

- ``edges`` / ``counts``: inner edges at the training quantiles ``1/bins, 2/bins, ...`` (deciles by
  default), de-duplicated, for PSI and other coarse comparisons;
- ``fine_edges`` / ``fine_counts``: the same at percentiles, for statistics that need the shape of
  the distribution (binned KS, Wasserstein, quantiles of merged profiles).

``count`` is the number of finite values (what the bins hold), ``null_count`` the missing ones and
``invalid_count`` the present but unusable ones (infinities, text in a numeric column), so
``count + null_count + invalid_count`` is the number of rows. Mean, std (population), min, max and
quantiles are exact for a profile made from data and approximated for a merged one (quantiles are
interpolated within the fine bins; mean and std combine exactly).

Categorical (and boolean) columns keep the reference's top ``top_k`` categories with counts and an
``other_count``. A current profile counts the same categories (zero included) and lists the most
frequent values the reference does not name in ``new_categories`` (also counted in
``other_count``). When the reference's ``other_count`` is 0 its categories are complete, so those
values are truly new; otherwise some may be rare reference values.

Everything is vectorised: one ``np.sort`` per numeric column (quantiles and counts are then index
look-ups and ``np.searchsorted`` of the edges into the sorted values) and one ``value_counts`` per
categorical column; Python loops run over columns and distinct categories, never over rows.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelcycle.data.schema import FeatureSchema
from modelcycle.errors import DataError

PROFILE_FORMAT = 1
DEFAULT_BINS = 10
"""Coarse bins per numeric column (deciles of the training data)."""
FINE_BINS = 100
"""Fine bins per numeric column (percentiles of the training data)."""
TOP_K = 50
"""Categories kept per categorical column; the rest are counted in ``other_count``."""
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
"""Quantiles recorded per numeric column (keys are ``f"{q:g}"``: ``"0.01"``, ``"0.5"``, ...)."""

_TRUE = frozenset({"true", "1", "1.0", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "0.0", "no", "n", "f"})

ValueKind = Literal["numeric", "categorical"]


class NumericProfile(BaseModel):
    """Summary of a numeric column: two fixed-bin histograms, quantiles and moments."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["numeric"] = "numeric"
    edges: list[float] = Field(
        description="Inner bin edges, strictly increasing; bins are (-inf, e0], ..., (ek, +inf)."
    )
    counts: list[int] = Field(description="Values per bin: len(edges) + 1 entries.")
    fine_edges: list[float] = Field(description="Inner edges of the fine (percentile) bins.")
    fine_counts: list[int] = Field(description="Values per fine bin: len(fine_edges) + 1.")
    count: int = Field(description="Finite values (the bins' total).")
    null_count: int = Field(description="Missing values.")
    invalid_count: int = Field(
        default=0, description="Present but unusable values: infinities, text that is no number."
    )
    mean: float | None = None
    std: float | None = Field(default=None, description="Population standard deviation.")
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] = Field(
        default_factory=dict, description="Quantiles of QUANTILES, keyed by f'{q:g}'."
    )

    @property
    def n_rows(self) -> int:
        """Rows summarised: finite, missing and invalid values."""
        return self.count + self.null_count + self.invalid_count

    @property
    def null_rate(self) -> float:
        """Share of rows with a missing value (0 for no rows)."""
        return self.null_count / self.n_rows if self.n_rows else 0.0


class CategoricalProfile(BaseModel):
    """Summary of a categorical or boolean column: top categories with counts, and the rest."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["categorical"] = "categorical"
    frequencies: dict[str, int] = Field(
        description="Reference categories and their counts (most frequent first in a reference)."
    )
    other_count: int = Field(description="Values outside `frequencies` (new ones included).")
    new_categories: dict[str, int] = Field(
        default_factory=dict,
        description="Most frequent values the reference does not list (current profiles only).",
    )
    count: int = Field(description="Non-missing values.")
    null_count: int = Field(description="Missing values.")
    boolean: bool = Field(default=False, description="Values are booleans ('True' / 'False').")

    @property
    def n_rows(self) -> int:
        """Rows summarised: present and missing values."""
        return self.count + self.null_count

    @property
    def null_rate(self) -> float:
        """Share of rows with a missing value (0 for no rows)."""
        return self.null_count / self.n_rows if self.n_rows else 0.0


ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class Profile(BaseModel):
    """Profiles of a dataset's features, and of the model's predictions and the target.

    A reference profile (:func:`reference_profile`) fixes the bins and categories; current
    profiles (:func:`current_profile`) reuse them, so both have the same columns, edges and
    category keys.
    """

    model_config = ConfigDict(extra="forbid")

    format: int = PROFILE_FORMAT
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    n_rows: int
    bins: int = DEFAULT_BINS
    fine_bins: int = FINE_BINS
    top_k: int = TOP_K
    columns: dict[str, ColumnProfile]
    prediction: ColumnProfile | None = None
    target: ColumnProfile | None = None
    missing_columns: list[str] = Field(
        default_factory=list,
        description="Reference columns absent from the current data (profiled as all missing).",
    )

    def save(self, path: Path) -> Path:
        """Write the profile as JSON (parent folders are created) and return the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> Profile:
        """Read a profile written by :meth:`save`.

        Raises:
            DataError: The file is missing or is not a profile.
        """
        if not path.is_file():
            raise DataError(f"profile file {path} does not exist", "retrain to create it")
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(map(str, first["loc"])) or "top level"
            raise DataError(
                f"{path} is not a modelcycle profile ({where}: {first['msg']})",
                "retrain to recreate it",
            ) from None


# --------------------------------------------------------------------------------------------
# public functions


def reference_profile(
    frame: pd.DataFrame,
    schema: FeatureSchema,
    *,
    predictions: Any = None,
    target: Any = None,
    bins: int = DEFAULT_BINS,
    fine_bins: int = FINE_BINS,
    top_k: int = TOP_K,
) -> Profile:
    """Profile the training data: the reference that live data is compared with.

    Features come from the schema: ``numeric`` columns get histograms over quantile bins,
    ``categorical`` and ``boolean`` ones category counts; text, datetime, id, time and ignored
    columns are skipped. A feature absent from ``frame`` is profiled as all missing and listed in
    ``missing_columns``.

    Args:
        frame: The training data (features by name; other columns are ignored).
        schema: The dataset's schema.
        predictions: The model's predictions on ``frame`` (1-D): values (regression), the
            positive-class probability (binary) or predicted labels. Numeric unless the task is
            classification and they are not floats.
        target: The true target (1-D). Numeric for regression, categorical for classification.
        bins: Coarse quantile bins per numeric column (10: deciles).
        fine_bins: Fine quantile bins per numeric column (100: percentiles).
        top_k: Categories kept per categorical column.

    Raises:
        ValueError: ``bins``, ``fine_bins`` or ``top_k`` is below 1, or ``predictions`` /
            ``target`` is not 1-D or has a different length than ``frame``.
    """
    if min(bins, fine_bins, top_k) < 1:
        raise ValueError("bins, fine_bins and top_k must be at least 1")
    n_rows = len(frame)
    columns: dict[str, NumericProfile | CategoricalProfile] = {}
    missing: list[str] = []
    for col in schema.features:
        if col.kind not in ("numeric", "categorical", "boolean"):
            continue
        if col.name in frame.columns:
            series = frame[col.name]
        else:
            missing.append(col.name)
            series = pd.Series(np.full(n_rows, np.nan))
        if col.kind == "numeric":
            columns[col.name] = _numeric_reference(series, bins, fine_bins)
        else:
            columns[col.name] = _categorical_reference(series, top_k, col.kind == "boolean")
    task = schema.task
    profile_args = (bins, fine_bins, top_k)
    return Profile(
        n_rows=n_rows,
        bins=bins,
        fine_bins=fine_bins,
        top_k=top_k,
        columns=columns,
        prediction=_outcome_reference(predictions, n_rows, "predictions", task, *profile_args),
        target=_outcome_reference(target, n_rows, "target", task, *profile_args),
        missing_columns=missing,
    )


def current_profile(
    frame: pd.DataFrame,
    reference: Profile,
    *,
    predictions: Any = None,
    target: Any = None,
) -> Profile:
    """Profile a window of live data with the reference's bins and categories.

    Every reference column is profiled (an absent one as all missing, listed in
    ``missing_columns``); other columns of ``frame`` are ignored. Numeric values that are not
    numbers (text, infinities) are counted in ``invalid_count``.

    Args:
        frame: The current data.
        reference: The reference profile (from :func:`reference_profile`).
        predictions: The model's predictions on ``frame`` (1-D), as for the reference.
        target: The true target for ``frame`` (1-D), when labels are known.

    Raises:
        ValueError: ``predictions`` or ``target`` is given but the reference has no such profile,
            is not 1-D, or has a different length than ``frame``.
    """
    n_rows = len(frame)
    columns: dict[str, NumericProfile | CategoricalProfile] = {}
    missing: list[str] = []
    for name, ref in reference.columns.items():
        if name in frame.columns:
            series = frame[name]
        else:
            missing.append(name)
            series = pd.Series(np.full(n_rows, np.nan))
        columns[name] = _current_column(series, ref, reference.top_k)
    outcomes: dict[str, NumericProfile | CategoricalProfile | None] = {}
    for label, values, ref_outcome in (
        ("predictions", predictions, reference.prediction),
        ("target", target, reference.target),
    ):
        outcomes[label] = None
        if values is None:
            continue
        if ref_outcome is None:
            raise ValueError(f"the reference profile has no {label} profile to compare with")
        series = _as_series(values, n_rows, label)
        outcomes[label] = _current_column(series, ref_outcome, reference.top_k)
    return Profile(
        n_rows=n_rows,
        bins=reference.bins,
        fine_bins=reference.fine_bins,
        top_k=reference.top_k,
        columns=columns,
        prediction=outcomes["predictions"],
        target=outcomes["target"],
        missing_columns=missing,
    )


def histogram(
    reference: NumericProfile | CategoricalProfile, current: NumericProfile | CategoricalProfile
) -> dict[str, Any]:
    """One column's reference and current counts on the reference's bins (JSON, for charts).

    Numeric: ``{"kind": "numeric", "edges": inner edges, "reference": counts, "current":
    counts}``; categorical: the reference's categories then ``"other"``.
    """
    if isinstance(reference, NumericProfile) and isinstance(current, NumericProfile):
        return {
            "kind": "numeric",
            "edges": list(reference.edges),
            "reference": list(reference.counts),
            "current": list(current.counts),
        }
    assert isinstance(reference, CategoricalProfile)
    assert isinstance(current, CategoricalProfile)
    return {
        "kind": "categorical",
        "categories": [*reference.frequencies, "other"],
        "reference": [*reference.frequencies.values(), reference.other_count],
        "current": [
            *(current.frequencies.get(k, 0) for k in reference.frequencies),
            current.other_count,
        ],
    }


def merge(a: Profile, b: Profile) -> Profile:
    """Add up two profiles made with the same bins and categories (two windows of one reference).

    Counts add exactly; mean and std combine exactly; min and max are exact; quantiles are
    interpolated within the fine bins (their error is at most one fine bin). New categories are
    added and the ``top_k`` most frequent kept (a value just outside both windows' top lists may
    be missed; its count stays in ``other_count``). A prediction or target profile present in
    only one of the two is kept as it is.

    Raises:
        ValueError: The profiles have different columns, edges or categories.
    """
    if list(a.columns) != list(b.columns):
        raise ValueError("cannot merge profiles with different columns")
    columns = {
        name: _merge_column(name, a.columns[name], b.columns[name], a.top_k) for name in a.columns
    }
    outcomes: list[NumericProfile | CategoricalProfile | None] = []
    for name, x, y in (("prediction", a.prediction, b.prediction), ("target", a.target, b.target)):
        outcomes.append(_merge_column(name, x, y, a.top_k) if x and y else x or y)
    return Profile(
        created_at=max(a.created_at, b.created_at),
        n_rows=a.n_rows + b.n_rows,
        bins=a.bins,
        fine_bins=a.fine_bins,
        top_k=a.top_k,
        columns=columns,
        prediction=outcomes[0],
        target=outcomes[1],
        missing_columns=sorted(set(a.missing_columns) | set(b.missing_columns)),
    )


# --------------------------------------------------------------------------------------------
# numeric columns


def _numeric_values(series: pd.Series) -> tuple[np.ndarray, int, int, int]:
    """Sorted finite values, and the counts of missing and invalid values and of rows."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        nulls = int(np.count_nonzero(np.isnan(values)))
        text_invalid = 0
    else:
        nulls = int(series.isna().sum())
        parsed = pd.to_numeric(series, errors="coerce")
        values = np.asarray(parsed, dtype="float64")
        text_invalid = int(np.count_nonzero(np.isnan(values))) - nulls
    ordered = np.sort(values)  # NaN last
    present = ordered[: ordered.size - nulls - text_invalid]
    lo = int(np.searchsorted(present, -np.inf, side="right"))
    hi = int(np.searchsorted(present, np.inf, side="left"))
    infinite = lo + present.size - hi
    return present[lo:hi], nulls, text_invalid + infinite, values.size


def _sorted_quantiles(ordered: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of sorted values, as ``np.quantile(..., method="linear")`` computes them."""
    n = ordered.size
    position = levels * (n - 1)
    below = np.floor(position).astype("int64")
    above = np.minimum(below + 1, n - 1)
    t = position - below
    a, b = ordered[below], ordered[above]
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)  # type: ignore[no-any-return]


def _bin_counts(ordered: np.ndarray, edges: np.ndarray) -> list[int]:
    """Counts of sorted values in the bins (-inf, e0], (e0, e1], ..., (ek, +inf)."""
    below_or_at = np.searchsorted(ordered, edges, side="right")
    bounds = np.concatenate(([0], below_or_at, [ordered.size]))
    return np.diff(bounds).tolist()  # type: ignore[no-any-return]


def _levels(bins: int) -> np.ndarray:
    return np.arange(1, bins, dtype="float64") / bins


def _numeric_stats(ordered: np.ndarray) -> dict[str, Any]:
    if not ordered.size:
        return {}
    qs = _sorted_quantiles(ordered, np.asarray(QUANTILES))
    return {
        "mean": float(ordered.mean()),
        "std": float(ordered.std()),
        "min": float(ordered[0]),
        "max": float(ordered[-1]),
        "quantiles": {f"{q:g}": float(v) for q, v in zip(QUANTILES, qs, strict=True)},
    }


def _numeric_reference(series: pd.Series, bins: int, fine_bins: int) -> NumericProfile:
    ordered, nulls, invalid, _ = _numeric_values(series)
    if ordered.size:
        edges = np.unique(_sorted_quantiles(ordered, _levels(bins)))
        fine = np.unique(_sorted_quantiles(ordered, _levels(fine_bins)))
    else:
        edges = fine = np.empty(0)
    return NumericProfile(
        edges=edges.tolist(),
        counts=_bin_counts(ordered, edges),
        fine_edges=fine.tolist(),
        fine_counts=_bin_counts(ordered, fine),
        count=int(ordered.size),
        null_count=nulls,
        invalid_count=invalid,
        **_numeric_stats(ordered),
    )


def _numeric_current(series: pd.Series, ref: NumericProfile) -> NumericProfile:
    ordered, nulls, invalid, _ = _numeric_values(series)
    return NumericProfile(
        edges=ref.edges,
        counts=_bin_counts(ordered, np.asarray(ref.edges, dtype="float64")),
        fine_edges=ref.fine_edges,
        fine_counts=_bin_counts(ordered, np.asarray(ref.fine_edges, dtype="float64")),
        count=int(ordered.size),
        null_count=nulls,
        invalid_count=invalid,
        **_numeric_stats(ordered),
    )


def _binned_quantiles(
    edges: list[float], counts: list[int], low: float, high: float
) -> dict[str, float]:
    """Quantiles interpolated linearly within bins whose open ends are closed at min and max."""
    total = sum(counts)
    if not total:
        return {}
    bounds = np.clip(np.concatenate(([low], edges, [high])), low, high)
    cum = np.cumsum(counts, dtype="float64")
    result = {}
    for q in QUANTILES:
        rank = q * total
        j = min(int(np.searchsorted(cum, rank, side="left")), len(counts) - 1)
        before = cum[j] - counts[j]
        share = (rank - before) / counts[j] if counts[j] else 0.0
        value = bounds[j] + share * (bounds[j + 1] - bounds[j])
        result[f"{q:g}"] = float(min(max(value, low), high))
    return result


def _number(value: float | None) -> float:
    return 0.0 if value is None else value


def _merge_numeric(a: NumericProfile, b: NumericProfile) -> NumericProfile:
    n = a.count + b.count
    stats: dict[str, Any] = {}
    if not a.count or not b.count:
        only = a if a.count else b
        stats = {k: getattr(only, k) for k in ("mean", "std", "min", "max")}
    else:
        mean_a, mean_b = _number(a.mean), _number(b.mean)
        mean = (a.count * mean_a + b.count * mean_b) / n
        delta = mean_b - mean_a
        m2 = (
            a.count * _number(a.std) ** 2
            + b.count * _number(b.std) ** 2
            + delta**2 * a.count * b.count / n
        )
        stats = {
            "mean": mean,
            "std": math.sqrt(max(m2 / n, 0.0)),
            "min": min(_number(a.min), _number(b.min)),
            "max": max(_number(a.max), _number(b.max)),
        }
    fine_counts = [x + y for x, y in zip(a.fine_counts, b.fine_counts, strict=True)]
    quantiles = (
        _binned_quantiles(a.fine_edges, fine_counts, stats["min"], stats["max"]) if n else {}
    )
    return NumericProfile(
        edges=a.edges,
        counts=[x + y for x, y in zip(a.counts, b.counts, strict=True)],
        fine_edges=a.fine_edges,
        fine_counts=fine_counts,
        count=n,
        null_count=a.null_count + b.null_count,
        invalid_count=a.invalid_count + b.invalid_count,
        quantiles=quantiles,
        **stats,
    )


# --------------------------------------------------------------------------------------------
# categorical columns


def _category_key(value: Any, boolean: bool) -> str:
    """The text key of a category: booleans as ``True`` / ``False``, ``2.0`` as ``2``."""
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if boolean:
        text = str(value).strip().lower()
        if text in _TRUE:
            return "True"
        if text in _FALSE:
            return "False"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _category_counts(series: pd.Series, boolean: bool) -> tuple[pd.Series, int]:
    """Counts per category key (most frequent first, ties by key) and the missing count."""
    nulls = int(series.isna().sum())
    raw = series.value_counts(dropna=True, sort=False)
    raw = raw[raw.to_numpy() > 0]
    if not boolean and raw.index.inferred_type in ("string", "integer"):
        keys: Any = raw.index.astype(str).astype(object)  # the keys as they are: no per-value work
    else:
        keys = [_category_key(v, boolean) for v in raw.index]
    counts = pd.Series(raw.to_numpy(dtype="int64"), index=pd.Index(keys, dtype="object"))
    if counts.index.has_duplicates:
        counts = counts.groupby(level=0, sort=False).sum()
    table = pd.DataFrame({"key": counts.index, "n": counts.to_numpy()})
    table = table.sort_values(["n", "key"], ascending=[False, True], kind="stable")
    return pd.Series(table["n"].to_numpy(), index=table["key"].to_numpy()), nulls


def _categorical_reference(series: pd.Series, top_k: int, boolean: bool) -> CategoricalProfile:
    counts, nulls = _category_counts(series, boolean)
    top = counts.iloc[:top_k]
    return CategoricalProfile(
        frequencies={str(k): int(v) for k, v in top.items()},
        other_count=int(counts.iloc[top_k:].sum()),
        count=int(counts.sum()),
        null_count=nulls,
        boolean=boolean,
    )


def _categorical_current(
    series: pd.Series, ref: CategoricalProfile, top_k: int
) -> CategoricalProfile:
    counts, nulls = _category_counts(series, ref.boolean)
    known = counts.index.isin(list(ref.frequencies))
    seen = dict(zip(counts.index[known], counts.to_numpy()[known].tolist(), strict=True))
    unseen = counts[~known]
    return CategoricalProfile(
        frequencies={key: int(seen.get(key, 0)) for key in ref.frequencies},
        other_count=int(unseen.sum()),
        new_categories={str(k): int(v) for k, v in unseen.iloc[:top_k].items()},
        count=int(counts.sum()),
        null_count=nulls,
        boolean=ref.boolean,
    )


def _merge_categorical(
    a: CategoricalProfile, b: CategoricalProfile, top_k: int
) -> CategoricalProfile:
    new = dict(a.new_categories)
    for key, count in b.new_categories.items():
        new[key] = new.get(key, 0) + count
    top = sorted(new.items(), key=lambda item: (-item[1], item[0]))[:top_k]
    return CategoricalProfile(
        frequencies={k: a.frequencies[k] + b.frequencies[k] for k in a.frequencies},
        other_count=a.other_count + b.other_count,
        new_categories=dict(top),
        count=a.count + b.count,
        null_count=a.null_count + b.null_count,
        boolean=a.boolean,
    )


# --------------------------------------------------------------------------------------------
# dispatch


def _current_column(
    series: pd.Series, ref: NumericProfile | CategoricalProfile, top_k: int
) -> NumericProfile | CategoricalProfile:
    if isinstance(ref, NumericProfile):
        return _numeric_current(series, ref)
    return _categorical_current(series, ref, top_k)


def _merge_column(
    name: str,
    a: NumericProfile | CategoricalProfile,
    b: NumericProfile | CategoricalProfile,
    top_k: int,
) -> NumericProfile | CategoricalProfile:
    if isinstance(a, NumericProfile) and isinstance(b, NumericProfile):
        if a.edges != b.edges or a.fine_edges != b.fine_edges:
            raise ValueError(f"cannot merge {name!r}: the profiles have different bin edges")
        return _merge_numeric(a, b)
    if isinstance(a, CategoricalProfile) and isinstance(b, CategoricalProfile):
        if list(a.frequencies) != list(b.frequencies):
            raise ValueError(f"cannot merge {name!r}: the profiles have different categories")
        return _merge_categorical(a, b, top_k)
    raise ValueError(f"cannot merge {name!r}: one profile is numeric, the other categorical")


def _as_series(values: Any, n_rows: int, label: str) -> pd.Series:
    if isinstance(values, pd.Series):
        series = values.reset_index(drop=True)
    else:
        array = np.asarray(values)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ValueError(
                f"{label} must be 1-D (values, the positive-class probability or labels), "
                f"not of shape {array.shape}"
            )
        series = pd.Series(array)
    if len(series) != n_rows:
        raise ValueError(f"{label} has {len(series):,} values but the frame has {n_rows:,} rows")
    return series


def _outcome_kind(series: pd.Series, label: str, task: str | None) -> ValueKind:
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if task == "regression":
        return "numeric"
    if task == "classification":
        floats = pd.api.types.is_float_dtype(series)
        return "numeric" if label == "predictions" and floats else "categorical"
    return "numeric" if numeric else "categorical"


def _outcome_reference(
    values: Any, n_rows: int, label: str, task: str | None, bins: int, fine_bins: int, top_k: int
) -> NumericProfile | CategoricalProfile | None:
    if values is None:
        return None
    series = _as_series(values, n_rows, label)
    if _outcome_kind(series, label, task) == "numeric":
        return _numeric_reference(series, bins, fine_bins)
    return _categorical_reference(series, top_k, pd.api.types.is_bool_dtype(series))
