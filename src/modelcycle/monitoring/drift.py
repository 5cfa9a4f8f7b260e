"""Drift statistics: compare a current profile (or window) with the reference, feature by feature.

Every statistic works on the profiles of :mod:`modelcycle.monitoring.profile`, so a comparison
costs ``features x bins``, never rows:

- numeric columns: PSI and Jensen-Shannon distance on the coarse (decile) bins, Kolmogorov-Smirnov
  statistic and p-value and the Wasserstein distance (divided by the reference's standard
  deviation) on the fine (percentile) bins;
- categorical columns: PSI, Jensen-Shannon distance and chi-square on the reference's categories
  plus one "other" bucket (values outside the reference's top categories, new ones included), and
  the new categories with the share of current values they hold;
- every column: the change of its missing share (numeric: missing plus unusable values);
- the predictions and the target, when both profiles carry them, with the same tools.

Two modes:

- **binned** (:func:`compare`, the default everywhere): KS and Wasserstein come from the fine
  bins. KS is read at the bin edges, so it is a lower bound of the exact statistic, off by at most
  the largest fine-bin share of either sample (about 0.01 with percentile bins); Wasserstein
  assumes values spread uniformly within each bin (the open end bins are closed at the observed
  minimum and maximum). ``tests/unit/test_drift.py`` bounds both errors on 100,000 rows.
- **exact** (:func:`compare_frames`): KS, Wasserstein and chi-square come from the raw values and
  match ``scipy.stats.ks_2samp`` (statistic; p-value of its ``asymp`` method, which scipy itself
  uses above 10,000 rows), ``wasserstein_distance`` and ``chi2_contingency`` to 1e-9. PSI,
  Jensen-Shannon, missing shares and new categories are defined on the reference's bins, so they
  are the same in both modes.

False-alarm control (thresholds from :class:`DriftPolicy`, the ``[monitoring.drift]`` spec
section): a verdict uses effect sizes (PSI, normalised Wasserstein, Jensen-Shannon, missing-share
change, new-category share), which do not grow with the window's size. P-values count only when
``use_p_values`` is set, after a Bonferroni or Benjamini-Hochberg correction over every test of
the report, and only for a feature whose PSI reaches ``p_value_effect_floor``: on a million rows
every p-value is tiny, while a negligible effect should still not raise an alarm.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelcycle.config.spec import DriftSpec
from modelcycle.data.schema import FeatureSchema
from modelcycle.monitoring.profile import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    current_profile,
    reference_profile,
)

DriftPolicy = DriftSpec
"""The drift thresholds: the ``[monitoring.drift]`` section of ``modelcycle.toml``."""

Verdict = Literal["ok", "warning", "drift"]
Mode = Literal["binned", "exact"]

MIN_EXPECTED = 5
"""A category expected fewer times than this in the smaller sample is pooled into "other"."""
PSI_FLOOR = 1e-4
"""Bin shares are floored at this before PSI's logarithm (an empty bin would be infinite)."""

_VERDICTS: tuple[Verdict, Verdict, Verdict] = ("ok", "warning", "drift")


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one column (or of the predictions / the target).

    Attributes:
        name: Column name (``prediction`` / ``target`` for the outcomes).
        kind: ``numeric`` or ``categorical``.
        statistics: Statistic name to value: ``psi``, ``js``, ``ks``, ``ks_p_value``,
            ``wasserstein``, ``wasserstein_norm`` (numeric); ``psi``, ``js``, ``chi2``,
            ``chi2_p_value``, ``chi2_dof``, ``new_category_share`` (categorical). Absent when a
            side has no values.
        effect_size: PSI (the feature's headline effect size), None without values.
        p_value: The KS / chi-square p-value after the multiple-testing correction.
        threshold: The PSI of a drift verdict.
        verdict: ``ok``, ``warning`` or ``drift``: the worst of the statistics' bands.
        reasons: One line per statistic that reached a band, e.g. ``psi 0.31 >= 0.25``.
        null_rate_reference: Missing share in the reference.
        null_rate_current: Missing share in the current window.
        new_categories: Current values the reference does not list (categorical).
    """

    name: str
    kind: str
    statistics: dict[str, float]
    effect_size: float | None
    p_value: float | None
    threshold: float
    verdict: Verdict
    reasons: list[str]
    null_rate_reference: float
    null_rate_current: float
    new_categories: list[str] = field(default_factory=list)

    @property
    def null_rate_change(self) -> float:
        """Current minus reference missing share."""
        return self.null_rate_current - self.null_rate_reference

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``null_rate_change`` included)."""
        return {**asdict(self), "null_rate_change": self.null_rate_change}


@dataclass(frozen=True)
class DriftReport:
    """Per-feature drift, dataset drift and prediction drift of one window.

    Attributes:
        features: One result per reference feature, in the reference's order.
        dataset_drift_share: Share of features whose verdict is ``drift``.
        dataset_drifted: ``dataset_drift_share`` reached the policy's ``dataset_drift_share``.
        prediction: Drift of the model's predictions, when both profiles carry them.
        target: Drift of the target, when both profiles carry it (labels known).
        mode: ``binned`` (from profiles) or ``exact`` (from raw values).
        n_reference: Rows of the reference.
        n_current: Rows of the current window.
    """

    features: list[FeatureDrift]
    dataset_drift_share: float
    dataset_drifted: bool
    prediction: FeatureDrift | None = None
    target: FeatureDrift | None = None
    mode: Mode = "binned"
    n_reference: int = 0
    n_current: int = 0

    @property
    def drifted(self) -> list[str]:
        """Names of the features whose verdict is ``drift``."""
        return [f.name for f in self.features if f.verdict == "drift"]

    def feature(self, name: str) -> FeatureDrift:
        """The result of one feature.

        Raises:
            KeyError: No feature has that name.
        """
        for result in self.features:
            if result.name == name:
                return result
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready report (features sorted as in the reference)."""
        return {
            "mode": self.mode,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "dataset_drift_share": self.dataset_drift_share,
            "dataset_drifted": self.dataset_drifted,
            "drifted": self.drifted,
            "features": [f.as_dict() for f in self.features],
            "prediction": self.prediction.as_dict() if self.prediction else None,
            "target": self.target.as_dict() if self.target else None,
        }


# --------------------------------------------------------------------------------------------
# statistics on histograms and raw values (public: usable on their own)


def psi(reference_counts: Any, current_counts: Any) -> float:
    """Population stability index of two histograms over the same bins.

    ``sum((q - p) * ln(q / p))`` with shares ``p`` (reference) and ``q`` (current), each floored
    at :data:`PSI_FLOOR`.
    """
    p = _shares(reference_counts)
    q = _shares(current_counts)
    p, q = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference_counts: Any, current_counts: Any) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two histograms over the same bins."""
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(_shares(reference_counts), _shares(current_counts), base=2))


def ks_p_value(statistic: float, n_reference: int, n_current: int) -> float:
    """Two-sided KS p-value by Smirnov's asymptotic distribution (``ks_2samp(method="asymp")``)."""
    from scipy.stats import kstwo

    if not n_reference or not n_current:
        return 1.0
    m, n = sorted([float(n_reference), float(n_current)], reverse=True)
    return float(np.clip(kstwo.sf(statistic, np.round(m * n / (m + n))), 0.0, 1.0))


def ks_exact(reference: Any, current: Any) -> tuple[float, float]:
    """KS statistic (as ``scipy.stats.ks_2samp``) and asymptotic p-value of two raw samples."""
    a, b = np.sort(_finite(reference)), np.sort(_finite(current))
    if not a.size or not b.size:
        return 0.0, 1.0
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / a.size
    cdf_b = np.searchsorted(b, points, side="right") / b.size
    statistic = float(np.max(np.abs(cdf_a - cdf_b)))
    return statistic, ks_p_value(statistic, a.size, b.size)


def wasserstein_exact(reference: Any, current: Any) -> float:
    """First Wasserstein distance of two raw samples (as ``scipy.stats.wasserstein_distance``)."""
    a, b = np.sort(_finite(reference)), np.sort(_finite(current))
    if not a.size or not b.size:
        return 0.0
    points = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(a, points[:-1], side="right") / a.size
    cdf_b = np.searchsorted(b, points[:-1], side="right") / b.size
    return float(np.sum(np.abs(cdf_a - cdf_b) * np.diff(points)))


def ks_binned(reference: NumericProfile, current: NumericProfile) -> tuple[float, float]:
    """KS statistic read at the fine bin edges (a lower bound of the exact one) and its p-value."""
    cdf_r = _cdf(reference.fine_counts)[:-1]
    cdf_c = _cdf(current.fine_counts)[:-1]
    statistic = float(np.max(np.abs(cdf_r - cdf_c))) if cdf_r.size else 0.0
    return statistic, ks_p_value(statistic, reference.count, current.count)


def wasserstein_binned(reference: NumericProfile, current: NumericProfile) -> float:
    """Wasserstein distance of the fine histograms, each CDF linear between known points.

    A profile's CDF is known at its fine bin edges, at its minimum (0) and maximum (1) and at its
    recorded quantiles (which place the open end bins' mass, e.g. a current window that spills
    far past the reference's last edge). Between the union of both profiles' points both CDFs are
    linear, so ``|F - G|`` is integrated exactly there (a sign change inside a segment included).
    """
    xs_r, ys_r = _cdf_points(reference)
    xs_c, ys_c = _cdf_points(current)
    xs = np.unique(np.concatenate([xs_r, xs_c]))
    diff = np.interp(xs, xs_r, ys_r, 0.0, 1.0) - np.interp(xs, xs_c, ys_c, 0.0, 1.0)
    d0, d1, width = diff[:-1], diff[1:], np.diff(xs)
    total = np.abs(d0) + np.abs(d1)
    crossing = np.divide(d0**2 + d1**2, 2 * total, out=np.zeros_like(total), where=total > 0)
    area = np.where(d0 * d1 >= 0, total / 2, crossing) * width
    return float(np.sum(area))


def chi_square(table: Any) -> tuple[float, float, int]:
    """Chi-square test of independence of a 2 x k table, as ``scipy.stats.chi2_contingency``.

    Columns empty in both rows are dropped; a 2 x 2 table gets Yates' correction, as scipy does
    by default.

    Returns:
        Statistic, p-value and degrees of freedom (0, 1.0 and 0 when fewer than two columns or
        an empty row remain).
    """
    from scipy.stats import chi2

    observed = np.asarray(table, dtype="float64")
    observed = observed[:, observed.sum(axis=0) > 0]
    rows = observed.sum(axis=1)
    if observed.shape[1] < 2 or np.any(rows == 0):
        return 0.0, 1.0, 0
    expected = np.outer(rows, observed.sum(axis=0)) / observed.sum()
    dof = observed.shape[1] - 1
    if dof == 1:
        diff = expected - observed
        observed = observed + np.sign(diff) * np.minimum(0.5, np.abs(diff))
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, float(chi2.sf(statistic, dof)), dof


def adjust_p_values(
    p_values: list[float], method: Literal["bonferroni", "benjamini-hochberg"]
) -> list[float]:
    """Bonferroni- or Benjamini-Hochberg-adjusted p-values, in the given order."""
    from scipy.stats import false_discovery_control

    if not p_values:
        return []
    values = np.asarray(p_values, dtype="float64")
    if method == "bonferroni":
        return np.minimum(values * values.size, 1.0).tolist()  # type: ignore[no-any-return]
    return np.asarray(false_discovery_control(values, method="bh")).tolist()  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------
# comparisons


def compare(reference: Profile, current: Profile, policy: DriftPolicy | None = None) -> DriftReport:
    """Binned drift of a current profile against the reference (cost: features x bins).

    Args:
        reference: The reference profile (:func:`~modelcycle.monitoring.profile.reference_profile`).
        current: A current profile made with the reference's bins (``current_profile`` or a
            ``merge`` of several).
        policy: Thresholds; the documented defaults when None.

    Raises:
        ValueError: The profiles do not have the same columns.
    """
    return _report(reference, current, policy or DriftPolicy(), None, None)


def compare_frames(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: FeatureSchema,
    policy: DriftPolicy | None = None,
    *,
    reference_predictions: Any = None,
    current_predictions: Any = None,
) -> DriftReport:
    """Exact drift of two raw frames: KS, Wasserstein and chi-square from the raw values.

    Profiles are still made (PSI, Jensen-Shannon, missing shares and new categories are defined on
    the reference's bins), so the report has the same fields as :func:`compare`'s. Costs rows, not
    bins: meant for tests, audits and small windows.

    Args:
        reference: The training data.
        current: The current window.
        schema: The dataset's schema (which columns are features, and their kinds).
        policy: Thresholds; the documented defaults when None.
        reference_predictions: The model's predictions on ``reference`` (1-D), optional.
        current_predictions: The model's predictions on ``current``, with the reference's.
    """
    ref = reference_profile(reference, schema, predictions=reference_predictions)
    cur = current_profile(current, ref, predictions=current_predictions)
    raw = {name: (_column(reference, name), _column(current, name)) for name in ref.columns}
    if reference_predictions is not None and current_predictions is not None:
        raw["prediction"] = (
            pd.Series(np.asarray(reference_predictions)),
            pd.Series(np.asarray(current_predictions)),
        )
    return _report(ref, cur, policy or DriftPolicy(), raw, "exact")


# --------------------------------------------------------------------------------------------
# internals


@dataclass
class _Partial:
    """A column's statistics and effect-size verdict before the p-value correction."""

    name: str
    kind: str
    statistics: dict[str, float]
    effect_size: float | None
    raw_p: float | None
    level: int
    reasons: list[str]
    null_ref: float
    null_cur: float
    new_categories: list[str]


def _report(
    reference: Profile,
    current: Profile,
    policy: DriftPolicy,
    raw: dict[str, tuple[pd.Series, pd.Series]] | None,
    mode: Mode | None,
) -> DriftReport:
    if list(reference.columns) != list(current.columns):
        raise ValueError("the current profile was not made with this reference's columns")
    partials = [
        _column_drift(name, ref, current.columns[name], policy, raw.get(name) if raw else None)
        for name, ref in reference.columns.items()
    ]
    outcomes: dict[str, _Partial | None] = {}
    for label, ref_out, cur_out in (
        ("prediction", reference.prediction, current.prediction),
        ("target", reference.target, current.target),
    ):
        ok = ref_out is not None and cur_out is not None and ref_out.kind == cur_out.kind
        values = raw.get(label) if raw else None
        outcomes[label] = (
            _column_drift(label, ref_out, cur_out, policy, values)  # type: ignore[arg-type]
            if ok
            else None
        )
    tested = [p for p in [*partials, *outcomes.values()] if p is not None and p.raw_p is not None]
    adjusted = adjust_p_values([p.raw_p for p in tested], policy.correction)  # type: ignore[misc]
    corrected = {id(p): q for p, q in zip(tested, adjusted, strict=True)}
    features = [_finish(p, corrected.get(id(p)), policy) for p in partials]
    drift_share = sum(f.verdict == "drift" for f in features) / len(features) if features else 0.0
    pred, target = outcomes["prediction"], outcomes["target"]
    return DriftReport(
        features=features,
        dataset_drift_share=drift_share,
        dataset_drifted=bool(features) and drift_share >= policy.dataset_drift_share,
        prediction=_finish(pred, corrected.get(id(pred)), policy) if pred else None,
        target=_finish(target, corrected.get(id(target)), policy) if target else None,
        mode=mode or "binned",
        n_reference=reference.n_rows,
        n_current=current.n_rows,
    )


def _column_drift(
    name: str,
    ref: NumericProfile | CategoricalProfile,
    cur: NumericProfile | CategoricalProfile,
    policy: DriftPolicy,
    raw: tuple[pd.Series, pd.Series] | None,
) -> _Partial:
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        null_ref, null_cur = _missing_share(ref), _missing_share(cur)
        stats, raw_p, new = _numeric_stats(ref, cur, raw), None, []
        raw_p = stats.get("ks_p_value")
    elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
        null_ref, null_cur = ref.null_rate, cur.null_rate
        stats, new = _categorical_stats(ref, cur, raw), list(cur.new_categories)
        raw_p = stats.get("chi2_p_value")
    else:
        raise ValueError(f"{name!r} is numeric in one profile and categorical in the other")
    noise = _sampling_noise(ref, cur, stats)
    stats = {**stats, "psi_noise": noise} if "psi" in stats else stats
    n_ref, n_cur = ref.n_rows, cur.n_rows
    psi_bands = (policy.psi_warning, policy.psi_drift)
    js_bands = (policy.js_warning, policy.js_drift)
    bands = [
        ("psi beyond noise", _above_noise(stats.get("psi"), noise), *psi_bands),
        ("js beyond noise", _js_above_noise(stats.get("js"), noise), *js_bands),
        (
            "wasserstein_norm",
            stats.get("wasserstein_norm"),
            policy.wasserstein_warning,
            policy.wasserstein_drift,
        ),
        (
            "new_category_share",
            _share_above_noise(stats.get("new_category_share"), cur, ref),
            policy.new_category_warning,
            policy.new_category_drift,
        ),
        (
            "null_rate_change",
            _excess(abs(null_cur - null_ref), null_ref, n_ref, n_cur),
            policy.null_rate_warning,
            policy.null_rate_drift,
        ),
    ]
    level, reasons = 0, []
    for label, value, warning, drift in bands:
        if value is None or value < warning:
            continue
        reached = 2 if value >= drift else 1
        level = max(level, reached)
        reasons.append(f"{label} {value:.3g} >= {drift if reached == 2 else warning:g}")
    return _Partial(
        name, ref.kind, stats, stats.get("psi"), raw_p, level, reasons, null_ref, null_cur, new
    )


def _sampling_noise(
    ref: NumericProfile | CategoricalProfile,
    cur: NumericProfile | CategoricalProfile,
    stats: dict[str, float],
) -> float:
    """PSI expected from sampling alone when nothing changed: ``(bins - 1)(1/n_ref + 1/n_cur)``.

    Second-order expansion of PSI (a chi-square divergence), as the deployment gate uses; it
    matters for small windows and many categories (50 categories, 300 rows: 0.17).
    """
    bins = stats.get("bins", float(len(ref.counts)) if isinstance(ref, NumericProfile) else 2.0)
    if not ref.count or not cur.count:
        return 0.0
    return (bins - 1) * (1 / ref.count + 1 / cur.count)


def _above_noise(value: float | None, noise: float) -> float | None:
    """A PSI judged above its sampling noise (never below 0)."""
    return None if value is None else max(0.0, value - noise)


def _js_above_noise(value: float | None, noise: float) -> float | None:
    """A Jensen-Shannon distance judged above its noise: the divergence's is PSI's / (8 ln 2)."""
    if value is None:
        return None
    return math.sqrt(max(0.0, value * value - noise / (8 * math.log(2))))


def _excess(change: float, base: float, n_ref: int, n_cur: int, z: float = 2.0) -> float:
    """A change of a share beyond ``z`` standard errors of two binomial samples (never < 0)."""
    if not n_ref or not n_cur:
        return change
    spread = math.sqrt(max(base * (1 - base), 1e-12) * (1 / n_ref + 1 / n_cur))
    return max(0.0, change - z * spread)


def _share_above_noise(
    value: float | None,
    cur: NumericProfile | CategoricalProfile,
    ref: NumericProfile | CategoricalProfile,
) -> float | None:
    """The new-category share beyond what an unchanged population would show.

    An unchanged population keeps showing values the reference never saw; Good-Turing estimates
    their mass as the share of reference values seen once (when the reference's list was cut at
    ``top_k`` and its rarest listed values are singletons, every unlisted value is one too). The
    share is judged beyond that mass and two binomial standard errors of the reference's base.
    """
    if value is None or not isinstance(ref, CategoricalProfile) or not ref.count:
        return value
    listed = list(ref.frequencies.values())
    singles = sum(count == 1 for count in listed)
    if ref.other_count and listed and min(listed) <= 1:
        singles += ref.other_count
    unseen = singles / ref.count
    base = ref.other_count / ref.count if ref.other_count else unseen
    return max(0.0, _excess(value, base, ref.count, cur.count) - unseen)


def _finish(part: _Partial, p_value: float | None, policy: DriftPolicy) -> FeatureDrift:
    level, reasons = part.level, list(part.reasons)
    significant = p_value is not None and p_value < policy.alpha
    big_enough = part.effect_size is not None and part.effect_size >= policy.p_value_effect_floor
    if policy.use_p_values and significant and big_enough and level < 2:
        level = 2
        reasons.append(f"p-value {p_value:.3g} < {policy.alpha:g} ({policy.correction})")
    return FeatureDrift(
        name=part.name,
        kind=part.kind,
        statistics=part.statistics,
        effect_size=part.effect_size,
        p_value=p_value,
        threshold=policy.psi_drift,
        verdict=_VERDICTS[level],
        reasons=reasons,
        null_rate_reference=part.null_ref,
        null_rate_current=part.null_cur,
        new_categories=part.new_categories,
    )


def _numeric_stats(
    ref: NumericProfile, cur: NumericProfile, raw: tuple[pd.Series, pd.Series] | None
) -> dict[str, float]:
    if not ref.count or not cur.count:
        return {}
    if raw is not None:
        a, b = (
            _finite(pd.to_numeric(raw[0], errors="coerce")),
            _finite(pd.to_numeric(raw[1], errors="coerce")),
        )
        ks, ks_p = ks_exact(a, b)
        wasserstein = wasserstein_exact(a, b)
    else:
        ks, ks_p = ks_binned(ref, cur)
        wasserstein = wasserstein_binned(ref, cur)
    return {
        "psi": psi(ref.counts, cur.counts),
        "js": js_distance(ref.counts, cur.counts),
        "ks": ks,
        "ks_p_value": ks_p,
        "wasserstein": wasserstein,
        "wasserstein_norm": wasserstein / _scale(ref),
    }


def _categorical_stats(
    ref: CategoricalProfile, cur: CategoricalProfile, raw: tuple[pd.Series, pd.Series] | None
) -> dict[str, float]:
    if not ref.count or not cur.count:
        return {}
    ref_counts, cur_counts = _pooled(ref, cur)
    if raw is not None:
        a = raw[0].dropna().astype(str).value_counts()
        b = raw[1].dropna().astype(str).value_counts()
        table = pd.concat([a, b], axis=1).fillna(0).to_numpy().T
    else:
        table = np.asarray([ref_counts, cur_counts])
    chi2, chi2_p, dof = chi_square(table)
    if ref.other_count == 0:
        new_share = cur.other_count / cur.count
    else:
        new_share = max(0.0, cur.other_count / cur.count - ref.other_count / ref.count)
    return {
        "psi": psi(ref_counts, cur_counts),
        "js": js_distance(ref_counts, cur_counts),
        "chi2": chi2,
        "chi2_p_value": chi2_p,
        "chi2_dof": float(dof),
        "new_category_share": new_share,
        "bins": float(len(ref_counts)),
    }


def _pooled(ref: CategoricalProfile, cur: CategoricalProfile) -> tuple[list[int], list[int]]:
    """Category counts with the rare ones pooled into "other".

    A category expected fewer than :data:`MIN_EXPECTED` times in the smaller sample is merged
    into the "other" bucket (as chi-square's rule of thumb asks): empty cells of rare categories
    would otherwise dominate PSI and Jensen-Shannon on small windows without any change.
    """
    names = list(ref.frequencies)
    smaller = min(ref.count, cur.count)
    kept = [n for n in names if ref.frequencies[n] / ref.count * smaller >= MIN_EXPECTED]
    pooled = [n for n in names if n not in set(kept)]
    ref_counts = [ref.frequencies[n] for n in kept]
    cur_counts = [cur.frequencies.get(n, 0) for n in kept]
    ref_counts.append(ref.other_count + sum(ref.frequencies[n] for n in pooled))
    cur_counts.append(cur.other_count + sum(cur.frequencies.get(n, 0) for n in pooled))
    return ref_counts, cur_counts


def _scale(ref: NumericProfile) -> float:
    """The reference's std; its IQR when the std is 0; 1 (absolute distance) when both are 0."""
    if ref.std:
        return ref.std
    iqr = ref.quantiles.get("0.75", 0.0) - ref.quantiles.get("0.25", 0.0)
    return iqr if iqr > 0 else 1.0


def _missing_share(profile: NumericProfile) -> float:
    """Missing plus unusable values over rows (0 for no rows)."""
    rows = profile.n_rows
    return (profile.null_count + profile.invalid_count) / rows if rows else 0.0


def _cdf_points(profile: NumericProfile) -> tuple[np.ndarray, np.ndarray]:
    """Points (value, CDF) a profile knows: min, fine edges, quantiles, max; sorted, monotone."""
    low, high = _num(profile.min), _num(profile.max)
    levels = [float(q) for q in profile.quantiles]
    xs = np.concatenate(([low], profile.fine_edges, list(profile.quantiles.values()), [high]))
    ys = np.concatenate(([0.0], _cdf(profile.fine_counts)[:-1], levels, [1.0]))
    keep = (xs >= low) & (xs <= high)
    order = np.lexsort((ys[keep], xs[keep]))
    xs, ys = xs[keep][order], np.maximum.accumulate(ys[keep][order])
    last = np.r_[xs[1:] != xs[:-1], True]  # one point per value: the largest CDF
    return xs[last], ys[last]


def _shares(counts: Any) -> np.ndarray:
    values = np.asarray(counts, dtype="float64")
    total = values.sum()
    return values / total if total > 0 else values


def _cdf(counts: list[int]) -> np.ndarray:
    cum = np.cumsum(np.asarray(counts, dtype="float64"))
    return cum / cum[-1] if cum.size and cum[-1] > 0 else cum


def _finite(values: Any) -> np.ndarray:
    array: np.ndarray = np.asarray(values, dtype="float64").ravel()
    finite: np.ndarray = array[np.isfinite(array)]
    return finite


def _num(value: float | None) -> float:
    return 0.0 if value is None or math.isnan(value) else value


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series(np.full(len(frame), np.nan))
