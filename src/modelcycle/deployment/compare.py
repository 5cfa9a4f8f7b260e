"""Compare the arms of a rollout over a window of the prediction log, and render it as HTML.

:func:`compare_arms` reads one window (:func:`modelcycle.store.window`) and :func:`compare_frame`
summarises it per arm and version — requests, error rate, latency quantiles, the prediction
distribution, realised metrics where labels exist — and measures how far each arm is from the
reference arm (``stable``, else ``blue``):

- **paired rows** (a shadow arm predicts the same request id and row as stable): for regression
  the mean absolute difference, the mean signed difference and a histogram of the differences;
  for classification the agreement rate and the flipped-class counts;
- **distributions**: the population stability index (PSI) between the two arms' predictions —
  over the paired rows when there are any, else over every row of each arm (a canary answers
  other requests than stable, so only the distributions compare). It is the ramp gate's PSI
  (:func:`modelcycle.deployment.stats.prediction_psi`), so the report shows the number the
  controller decides on.

:func:`write_report` turns an :class:`ArmComparison` into an offline HTML page
(:mod:`modelcycle.htmlreport`): side-by-side prediction histograms over shared bins, latency
quantiles, the agreement table and the realised metrics. Everything is vectorised over rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from modelcycle.config.spec import Task
from modelcycle.deployment.stats import ArmStats, infer_task, prediction_psi
from modelcycle.monitoring.performance import (
    class_keys,
    class_names,
    realised_metrics,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from modelcycle.htmlreport import Page, Section

Basis = Literal["paired", "distribution"]
REFERENCE_ARMS = ("stable", "blue")
"""Arms that serve as the reference, in order of preference."""
ARM_ORDER = ("stable", "blue", "green", "canary", "shadow")
HISTOGRAM_BINS = 30
"""Bins of the prediction histograms, shared by every arm."""
LATENCY_QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
PREDICTION_QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.50, "p75": 0.75, "p95": 0.95}
MAX_FLIPS = 20
"""Flipped-class pairs listed per agreement (the most frequent ones)."""


@dataclass(frozen=True)
class ArmSummary:
    """One arm and model version over the window.

    Attributes:
        arm: The deployment arm (``stable``, ``canary``, ``shadow``, ``blue``, ``green``).
        version: The model version that answered for it.
        requests: Distinct request ids.
        rows: Predicted rows (a request may predict several).
        errors: Rows that could not be predicted.
        error_rate: ``errors / rows``.
        latency_ms: Latency quantiles (``p50``, ``p95``, ``p99``) over every row, in ms.
        prediction: For regression: ``count``, ``mean``, ``std``, ``min``, ``p05`` … ``p95``,
            ``max`` of the predictions; for classification only ``count``.
        classes: For classification: rows per predicted class.
        histogram: Rows per bin of :attr:`ArmComparison.bin_edges` (regression).
        labelled: Predicted rows with a label.
        metrics: Realised metrics on the labelled rows (regression: MAE, RMSE, R², MAPE;
            classification: accuracy, and ROC AUC, PR AUC, log loss and Brier score when
            probabilities were logged).
    """

    arm: str
    version: str
    requests: int
    rows: int
    errors: int
    error_rate: float
    latency_ms: dict[str, float]
    prediction: dict[str, float]
    classes: dict[str, int] = field(default_factory=dict)
    histogram: tuple[int, ...] = ()
    labelled: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``"stable v1"``: how the arm is named in tables and charts."""
        return f"{self.arm} v{self.version}"


@dataclass(frozen=True)
class Agreement:
    """How one arm's predictions compare with the reference arm's.

    Attributes:
        reference: The reference arm's :attr:`ArmSummary.key`.
        other: The compared arm's key.
        pairs: Rows both arms predicted (same request id and row; a shadow arm).
        basis: Whether :attr:`psi` compares the paired rows or the arms' whole distributions.
        psi: Population stability index of the other arm's predictions against the reference's
            (over deciles of the reference for regression, over classes for classification).
        mean_abs_diff: Regression: mean ``|other - reference|`` over the pairs.
        mean_diff: Regression: mean ``other - reference`` over the pairs (a bias).
        diff_edges: Regression: bin edges of the histogram of paired differences.
        diff_counts: Regression: pairs per bin of ``diff_edges``.
        agreement_rate: Classification: share of pairs predicting the same class.
        flipped: Classification: pairs by ``"reference class → other class"``, most frequent
            first (at most :data:`MAX_FLIPS`).
    """

    reference: str
    other: str
    pairs: int
    basis: Basis
    psi: float | None
    mean_abs_diff: float | None = None
    mean_diff: float | None = None
    diff_edges: tuple[float, ...] = ()
    diff_counts: tuple[int, ...] = ()
    agreement_rate: float | None = None
    flipped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ArmComparison:
    """Every arm of one model over one window, and their agreement with the reference arm.

    Attributes:
        model_name: The registered model.
        since: Start of the window (inclusive).
        until: End of the window (exclusive); ``None``: up to the time of the query.
        task: ``regression`` or ``classification`` (``None`` when the window is empty).
        reference: The reference arm's key (``None`` when there is no stable or blue arm).
        arms: One summary per arm and version, the reference first.
        agreements: One per non-reference arm (empty without a reference).
        bin_edges: Edges of every arm's prediction histogram (regression).
    """

    model_name: str
    since: datetime
    until: datetime | None
    task: Task | None
    reference: str | None
    arms: tuple[ArmSummary, ...]
    agreements: tuple[Agreement, ...]
    bin_edges: tuple[float, ...] = ()

    @property
    def rows(self) -> int:
        """Predicted rows in the window, every arm included."""
        return sum(arm.rows for arm in self.arms)

    def arm(self, key: str) -> ArmSummary:
        """The summary of the arm named ``key`` (``"canary v2"``).

        Raises:
            KeyError: No such arm in the window.
        """
        for summary in self.arms:
            if summary.key == key:
                return summary
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes ``None``; times are ISO 8601)."""
        data = asdict(self)
        data["since"] = self.since.isoformat()
        data["until"] = self.until.isoformat() if self.until else None
        data["rows"] = self.rows
        for arm in data["arms"]:
            arm["key"] = f"{arm['arm']} v{arm['version']}"
        ready: dict[str, Any] = _json_ready(data)
        return ready


# ---------------------------------------------------------------------------- computing


def compare_arms(
    conn: Connection,
    name: str,
    since: datetime,
    until: datetime | None = None,
    *,
    task: Task | None = None,
) -> ArmComparison:
    """Compare the arms of ``name`` over the prediction log between ``since`` and ``until``.

    Args:
        conn: An open connection to the operational store.
        name: The registered model.
        since: Start of the window (inclusive; naive datetimes are UTC).
        until: End of the window (exclusive); ``None`` for now.
        task: ``regression`` or ``classification``; inferred from the predictions when ``None``
            (class names or logged probabilities mean classification).

    Returns:
        The comparison (see :func:`compare_frame`).
    """
    from modelcycle.store import window

    frame = window(conn, name, since=since, until=until, with_features=False)
    return compare_frame(frame, name, since, until, task=task)


def compare_frame(
    frame: pd.DataFrame,
    name: str,
    since: datetime,
    until: datetime | None = None,
    *,
    task: Task | None = None,
) -> ArmComparison:
    """:func:`compare_arms` on a window frame already read (the columns of ``window``).

    Args:
        frame: Prediction rows with ``request_id``, ``row``, ``model_version``, ``arm``,
            ``prediction``, ``probabilities``, ``latency_ms``, ``error``, ``label`` and
            ``has_label``.
        name: The registered model.
        since: Start of the window, for the record.
        until: End of the window, for the record.
        task: As in :func:`compare_arms`.
    """
    if frame.empty:
        return ArmComparison(name, since, until, task, None, (), ())
    task = task or infer_task(frame)
    groups = _groups(frame)
    reference = _reference(groups)
    edges = _histogram_edges(frame) if task == "regression" else np.array([])
    arms = tuple(_summarise(key, rows, task, edges) for key, rows in groups.items())
    agreements: tuple[Agreement, ...] = ()
    if reference is not None:
        stable_rows = frame[frame["arm"] == reference[0]]
        agreements = tuple(
            _agreement(groups[reference], stable_rows, key, rows, task)
            for key, rows in groups.items()
            if key != reference
        )
    return ArmComparison(
        model_name=name,
        since=since,
        until=until,
        task=task,
        reference=_key(reference) if reference else None,
        arms=arms,
        agreements=agreements,
        bin_edges=tuple(float(e) for e in edges),
    )


def psi(reference: Any, current: Any, task: Task = "regression") -> float:
    """Population stability index of ``current`` predictions against ``reference`` ones.

    The ramp gate's PSI (:func:`~modelcycle.deployment.stats.prediction_psi`): regression
    predictions binned at the deciles of both sides pooled, classes by frequency, each bin with a
    pseudo-count of 0.5. Non-finite numbers are left out.

    Returns:
        The PSI (0 for identical distributions), NaN when either side has no prediction.
    """
    if task == "regression":
        ref, cur = _finite(reference), _finite(current)
    else:
        ref, cur = class_keys(pd.Series(reference)), class_keys(pd.Series(current))
    value = prediction_psi(
        ArmStats("reference", predictions=ref), ArmStats("current", predictions=cur), task
    )
    return math.nan if value is None else value


ArmKey = tuple[str, str]


def _key(key: ArmKey) -> str:
    return f"{key[0]} v{key[1]}"


def _groups(frame: pd.DataFrame) -> dict[ArmKey, pd.DataFrame]:
    """Rows per (arm, version): known arms in :data:`ARM_ORDER`, versions in number order."""
    grouped = {
        (str(arm), str(version)): rows
        for (arm, version), rows in frame.groupby(["arm", "model_version"], sort=False)
    }

    def order(key: ArmKey) -> tuple[int, str, float, str]:
        arm, version = key
        rank = ARM_ORDER.index(arm) if arm in ARM_ORDER else len(ARM_ORDER)
        number = float(version) if version.replace(".", "", 1).isdigit() else math.inf
        return rank, arm, number, version

    return {key: grouped[key] for key in sorted(grouped, key=order)}


def _reference(groups: Mapping[ArmKey, pd.DataFrame]) -> ArmKey | None:
    """The reference arm: the stable (else blue) version with the most rows, newest on ties."""
    for arm in REFERENCE_ARMS:
        keys = [key for key in groups if key[0] == arm]
        if keys:
            return max(enumerate(keys), key=lambda item: (len(groups[item[1]]), item[0]))[1]
    return None


def _summarise(key: ArmKey, rows: pd.DataFrame, task: Task, edges: np.ndarray) -> ArmSummary:
    failed = rows["error"].notna()
    answered = rows[~failed & rows["prediction"].notna()]
    errors = int(failed.sum())
    latency = rows["latency_ms"].to_numpy(dtype="float64")
    classes: dict[str, int] = {}
    histogram: tuple[int, ...] = ()
    if task == "regression":
        values = _finite(answered["prediction"])
        prediction = _numeric_summary(values)
        histogram = tuple(int(c) for c in np.histogram(values, bins=edges)[0]) if len(edges) else ()
    else:
        counts = class_names(answered["prediction"]).value_counts()
        classes = {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))}
        prediction = {"count": float(len(answered))}
    labelled = answered[answered["has_label"].astype(bool)]
    return ArmSummary(
        arm=key[0],
        version=key[1],
        requests=int(rows["request_id"].nunique()),
        rows=len(rows),
        errors=errors,
        error_rate=errors / len(rows),
        latency_ms={name: _quantile(latency, q) for name, q in LATENCY_QUANTILES.items()},
        prediction=prediction,
        classes=classes,
        histogram=histogram,
        labelled=len(labelled),
        metrics=realised_metrics(labelled, task),
    )


def _agreement(
    reference: pd.DataFrame,
    reference_arm_rows: pd.DataFrame,
    key: ArmKey,
    rows: pd.DataFrame,
    task: Task,
) -> Agreement:
    """Compare ``rows`` with the reference: paired by request id and row, else by distribution.

    Pairs are looked up among every row of the reference *arm* (any version), so a shadow row
    pairs with the stable row that answered its request even across a promotion.
    """
    candidates = reference_arm_rows
    if key[0] == str(reference["arm"].iloc[0]):  # another version of the reference arm
        candidates = candidates[candidates["model_version"].astype(str) != key[1]]
    ok_ref = candidates[candidates["error"].isna() & candidates["prediction"].notna()]
    ok_rows = rows[rows["error"].isna() & rows["prediction"].notna()]
    pairs = ok_rows[["request_id", "row", "prediction"]].merge(
        ok_ref[["request_id", "row", "prediction"]].drop_duplicates(["request_id", "row"]),
        on=["request_id", "row"],
        suffixes=("_other", "_ref"),
    )
    basis: Basis = "paired" if len(pairs) else "distribution"
    if basis == "paired":
        ref_values, other_values = pairs["prediction_ref"], pairs["prediction_other"]
    else:
        ok_reference = reference[reference["error"].isna() & reference["prediction"].notna()]
        ref_values, other_values = ok_reference["prediction"], ok_rows["prediction"]
    names = (
        _key((str(reference["arm"].iloc[0]), str(reference["model_version"].iloc[0]))),
        _key(key),
    )
    if task == "regression":
        return _regression_agreement(names, pairs, basis, ref_values, other_values)
    return _classification_agreement(names, pairs, basis, ref_values, other_values)


def _regression_agreement(
    names: tuple[str, str],
    pairs: pd.DataFrame,
    basis: Basis,
    ref_values: pd.Series[Any],
    other_values: pd.Series[Any],
) -> Agreement:
    value = psi(ref_values, other_values)
    if not len(pairs):
        return Agreement(names[0], names[1], 0, basis, _maybe(value))
    diff = pairs["prediction_other"].to_numpy(dtype="float64") - pairs["prediction_ref"].to_numpy(
        dtype="float64"
    )
    diff = diff[np.isfinite(diff)]
    counts, edges = np.histogram(diff, bins=HISTOGRAM_BINS) if len(diff) else _NO_HISTOGRAM
    return Agreement(
        names[0],
        names[1],
        len(pairs),
        basis,
        _maybe(value),
        mean_abs_diff=float(np.mean(np.abs(diff))) if len(diff) else None,
        mean_diff=float(np.mean(diff)) if len(diff) else None,
        diff_edges=tuple(float(e) for e in edges),
        diff_counts=tuple(int(c) for c in counts),
    )


def _classification_agreement(
    names: tuple[str, str],
    pairs: pd.DataFrame,
    basis: Basis,
    ref_values: pd.Series[Any],
    other_values: pd.Series[Any],
) -> Agreement:
    value = psi(ref_values, other_values, "classification")
    if not len(pairs):
        return Agreement(names[0], names[1], 0, basis, _maybe(value))
    ref_class = class_names(pairs["prediction_ref"])
    other_class = class_names(pairs["prediction_other"])
    same = ref_class == other_class
    flips = (ref_class[~same] + " → " + other_class[~same]).value_counts()
    flipped = {str(k): int(v) for k, v in flips.head(MAX_FLIPS).items()}
    return Agreement(
        names[0],
        names[1],
        len(pairs),
        basis,
        _maybe(value),
        agreement_rate=float(same.mean()),
        flipped=flipped,
    )


def _numeric_summary(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {"count": 0.0}
    summary = {
        "count": float(len(values)),
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "min": float(np.min(values)),
    }
    quantiles = np.quantile(values, list(PREDICTION_QUANTILES.values()))
    summary.update(
        {name: float(q) for name, q in zip(PREDICTION_QUANTILES, quantiles, strict=True)}
    )
    summary["max"] = float(np.max(values))
    return summary


_NO_HISTOGRAM = (np.array([], dtype="int64"), np.array([], dtype="float64"))


def _histogram_edges(frame: pd.DataFrame) -> np.ndarray:
    values = _finite(frame.loc[frame["error"].isna(), "prediction"])
    if not len(values):
        return np.array([])
    edges: np.ndarray = np.histogram_bin_edges(values, bins=HISTOGRAM_BINS)
    return edges


def _finite(values: Any) -> np.ndarray:
    array: np.ndarray = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
    finite: np.ndarray = array[np.isfinite(array)]
    return finite


def _quantile(values: np.ndarray, q: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, q)) if len(finite) else math.nan


def _maybe(value: float) -> float | None:
    return None if math.isnan(value) else value


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------- the HTML page


def write_report(comparison: ArmComparison, path: Path) -> Path:
    """Write the comparison as one self-contained HTML page (works offline).

    Sections: an overview (rows, window, reference), the arms (requests, errors, latency,
    prediction summary), side-by-side prediction histograms, latency quantiles, the agreement
    with the reference arm, and the realised metrics per arm.

    Returns:
        The path written (parent folders are created).
    """
    return report_page(comparison).write(path)


def report_page(comparison: ArmComparison) -> Page:
    """The :class:`~modelcycle.htmlreport.Page` of :func:`write_report`."""
    from modelcycle.htmlreport import Page

    until = comparison.until.isoformat(sep=" ") if comparison.until else "now"
    page = Page(
        f"{comparison.model_name}: rollout comparison",
        subtitle=f"prediction log from {comparison.since.isoformat(sep=' ')} to {until}",
    )
    overview = page.section("Overview")
    if not comparison.arms:
        overview.callout(
            "No predictions were logged in this window. Send traffic to the server, or widen "
            "the window with --window.",
            "warning",
        )
        return page
    _overview(overview, comparison)
    _arms_table(page.section("Arms", intro="Every arm and version that answered."), comparison)
    _distributions(page.section("Prediction distributions"), comparison)
    _latency(page.section("Latency"), comparison)
    _agreements(page.section("Agreement with the reference arm"), comparison)
    _metrics(page.section("Realised metrics"), comparison)
    return page


def _overview(section: Section, comparison: ArmComparison) -> None:
    from modelcycle.htmlreport import Card

    section.cards(
        [
            Card("rows", comparison.rows),
            Card("arms", len(comparison.arms), note=", ".join(a.key for a in comparison.arms)),
            Card("task", comparison.task or "—"),
            Card("reference", comparison.reference or "—", severity="info"),
        ]
    )
    if comparison.reference is None:
        section.callout(
            "No stable (or blue) arm in this window, so the arms are not compared with one.",
            "warning",
        )


def _arms_table(section: Section, comparison: ArmComparison) -> None:
    from modelcycle.htmlreport import format_percent

    regression = comparison.task == "regression"
    columns = ["arm", "version", "requests", "rows", "errors", "error rate"]
    columns += ["mean", "std", "p05", "p50", "p95"] if regression else ["classes"]
    rows: list[list[object]] = []
    for arm in comparison.arms:
        row: list[object] = [
            arm.arm,
            arm.version,
            arm.requests,
            arm.rows,
            arm.errors,
            format_percent(arm.error_rate, 2),
        ]
        if regression:
            row += [arm.prediction.get(k) for k in ("mean", "std", "p05", "p50", "p95")]
        else:
            row.append(", ".join(f"{name}: {count:,}" for name, count in arm.classes.items()))
        rows.append(row)
    section.table(
        rows,
        columns=columns,
        severity={"errors": lambda v: "error" if isinstance(v, int) and v > 0 else None},
        caption="Predictions summarised over the rows each arm answered without an error.",
    )


def _distributions(section: Section, comparison: ArmComparison) -> None:
    import plotly.graph_objects as go

    from modelcycle.htmlreport import COLORWAY

    figures = []
    for i, arm in enumerate(comparison.arms):
        fig = go.Figure()
        if comparison.task == "regression":
            edges = np.asarray(comparison.bin_edges)
            total = max(sum(arm.histogram), 1)
            fig.add_trace(
                go.Bar(
                    x=((edges[:-1] + edges[1:]) / 2).tolist(),
                    y=[c / total for c in arm.histogram],
                    width=(np.diff(edges)).tolist(),
                    marker_color=COLORWAY[i % len(COLORWAY)],
                    name=arm.key,
                    hovertemplate="%{x:.4g}: %{y:.1%}<extra>" + arm.key + "</extra>",
                )
            )
            fig.update_xaxes(range=[edges[0], edges[-1]], title_text="prediction")
        else:
            total = max(sum(arm.classes.values()), 1)
            fig.add_trace(
                go.Bar(
                    x=list(arm.classes),
                    y=[c / total for c in arm.classes.values()],
                    marker_color=COLORWAY[i % len(COLORWAY)],
                    name=arm.key,
                )
            )
            fig.update_xaxes(type="category", title_text="predicted class")
        fig.update_layout(title_text=arm.key, yaxis_title="share of rows", yaxis_tickformat=".0%")
        figures.append(fig)
    section.paragraph(
        "Each arm's predictions as shares of its rows, over the same bins, so arms with "
        "different traffic compare directly."
    )
    section.figures(figures, captions=[f"{a.key}: {a.rows:,} rows" for a in comparison.arms])


def _latency(section: Section, comparison: ArmComparison) -> None:
    import plotly.graph_objects as go

    from modelcycle.htmlreport import COLORWAY

    fig = go.Figure()
    for i, arm in enumerate(comparison.arms):
        fig.add_trace(
            go.Bar(
                x=list(arm.latency_ms),
                y=list(arm.latency_ms.values()),
                name=arm.key,
                marker_color=COLORWAY[i % len(COLORWAY)],
            )
        )
    fig.update_layout(title_text="latency quantiles", barmode="group", yaxis_title="ms")
    section.table(
        [[arm.key, *arm.latency_ms.values()] for arm in comparison.arms],
        columns=["arm", *(f"{name} (ms)" for name in LATENCY_QUANTILES)],
    )
    section.figure(fig, caption="Time spent predicting, per row, by arm.")


def _agreements(section: Section, comparison: ArmComparison) -> None:
    from modelcycle.htmlreport import format_percent

    if not comparison.agreements:
        section.paragraph("Only one arm answered in this window: nothing to compare.")
        return
    section.paragraph(
        "Paired rows share a request id and row (a shadow arm predicts every stable request); "
        "without pairs (a canary answers other requests) only the distributions compare. "
        "PSI below 0.1 is usually read as no shift, above 0.25 as a large one."
    )
    regression = comparison.task == "regression"
    columns = ["reference", "arm", "paired rows", "PSI", "PSI over"]
    columns += ["mean |difference|", "mean difference"] if regression else ["agreement"]
    rows: list[list[object]] = []
    for item in comparison.agreements:
        row: list[object] = [item.reference, item.other, item.pairs, item.psi, item.basis]
        if regression:
            row += [item.mean_abs_diff, item.mean_diff]
        else:
            row.append(
                format_percent(item.agreement_rate) if item.agreement_rate is not None else None
            )
        rows.append(row)
    section.table(rows, columns=columns, severity={"PSI": _psi_severity})
    for item in comparison.agreements:
        if item.flipped:
            section.heading(f"Flipped classes: {item.reference} → {item.other}")
            section.table(list(item.flipped.items()), columns=["classes", "pairs"])
        if item.diff_counts:
            _difference_histogram(section, item)


def _psi_severity(value: Any) -> Any:
    if not isinstance(value, float):
        return None
    return "error" if value > 0.25 else "warning" if value > 0.1 else "ok"


def _difference_histogram(section: Section, item: Agreement) -> None:
    import plotly.graph_objects as go

    edges = np.asarray(item.diff_edges)
    fig = go.Figure(
        go.Bar(
            x=((edges[:-1] + edges[1:]) / 2).tolist(),
            y=list(item.diff_counts),
            width=np.diff(edges).tolist(),
            name="pairs",
        )
    )
    fig.update_layout(
        title_text=f"{item.other} − {item.reference}",
        xaxis_title="difference of predictions",
        yaxis_title="paired rows",
    )
    section.figure(fig, caption="Differences between the two arms' predictions of the same rows.")


def _metrics(section: Section, comparison: ArmComparison) -> None:
    labelled = [arm for arm in comparison.arms if arm.metrics]
    if not labelled:
        section.paragraph(
            "No labels in this window yet. Post true outcomes to /labels (keyed by request id) "
            "and the realised metrics of each arm appear here."
        )
        return
    names = list(dict.fromkeys(name for arm in labelled for name in arm.metrics))
    section.table(
        [[arm.key, arm.labelled, *(arm.metrics.get(n) for n in names)] for arm in labelled],
        columns=["arm", "labelled rows", *names],
        caption="Realised on the labelled rows each arm predicted.",
    )
