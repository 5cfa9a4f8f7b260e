"""The evaluation report: an offline HTML page on whether the model beat its baseline, and why.

:func:`write_evaluation_report` turns an :class:`~modelcycle.training.evaluate.Evaluation` into a
page built with :mod:`modelcycle.htmlreport` (plotly.js inlined once, no network access):

- **Verdict**: the deciding metric of the winner and of the best baseline, the improvement against
  the required margin, and whether the model was registered (with the reason);
- **Metrics vs baseline**: every model × every metric on test and validation data, the winner
  highlighted and the best value of each column marked;
- **Regression**: predicted vs actual, residuals vs predicted, residual histogram; or
  **Classification**: ROC and precision-recall curves with the stored threshold marked, the
  confusion matrix at that threshold and a reliability diagram (binary), or the confusion matrix
  and a per-class one-vs-rest table (multiclass);
- **Feature importance** (permutation, with error bars), **Slices** (worst first) and the
  **Tuning history** (best so far per candidate, and the top trials).

Scatter plots show a seeded sample of at most :data:`MAX_POINTS` rows; every count, curve and
histogram uses all test rows. plotly and scikit-learn are imported only when a page is built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelcycle.htmlreport import COLORWAY, Card, Cell, Page, Section, Severity, format_percent
from modelcycle.metrics import higher_is_better, improvement, metric_names
from modelcycle.training.evaluate import CandidateResult, Evaluation

MAX_POINTS = 5_000
"""Points drawn per scatter plot (a seeded sample of the test rows)."""
MAX_CURVE_POINTS = 2_000
"""Points kept per ROC / precision-recall curve (evenly spaced along the curve)."""
CALIBRATION_BINS = 10
"""Equal-width probability bins of the reliability diagram."""
HISTOGRAM_BINS = 40
"""Bins of the residual histogram."""
MAX_IMPORTANCE = 30
"""Features shown in the importance chart (the most important ones)."""
MAX_SLICE_ROWS = 100
"""Slices listed in the slice table (the worst ones)."""
TOP_TRIALS = 10
"""Trials listed in the tuning table (the best ones)."""
MAX_CONFUSION_TEXT = 20
"""Classes up to which every confusion-matrix cell shows its count."""
SLICE_WARNING = 0.10
"""A slice whose deciding metric is this much (relative) worse than overall is marked."""
SLICE_ERROR = 0.25
"""A slice whose deciding metric is this much (relative) worse than overall is marked red."""
SEED = 0

METRIC_LABELS: dict[str, str] = {
    "mae": "MAE",
    "rmse": "RMSE",
    "r2": "R²",
    "mape": "MAPE",
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "f1": "F1",
    "precision": "precision",
    "recall": "recall",
    "balanced_accuracy": "balanced accuracy",
    "log_loss": "log loss",
    "brier": "Brier score",
}
_NEUTRAL = "#9ca3af"


def write_evaluation_report(
    evaluation: Evaluation, path: Path, *, title: str | None = None
) -> Path:
    """Write the evaluation report of a training run as one self-contained HTML file.

    Args:
        evaluation: What the training run measured on its test data.
        path: Where to write the page (parent folders are created).
        title: The page title; ``"<project>: evaluation"`` by default.

    Returns:
        The path written.
    """
    return evaluation_page(evaluation, title=title).write(path)


def evaluation_page(evaluation: Evaluation, *, title: str | None = None) -> Page:
    """Build the evaluation report page (see the module docstring for its sections)."""
    ev = evaluation
    direction = "higher is better" if higher_is_better(ev.metric) else "lower is better"
    page = Page(
        title or f"{ev.project}: evaluation",
        subtitle=f"{ev.task} · decided by {label(ev.metric)} on the test part ({direction})",
    )
    _verdict(page.section("Verdict"), ev)
    _metrics(
        page.section(
            "Metrics vs baseline",
            intro="Every trained model on the untouched test part and on the validation part.",
        ),
        ev,
    )
    if ev.task == "regression":
        _regression(page.section("Regression diagnostics"), ev)
    elif _positive_scores(ev) is not None:
        _binary(page.section("Classification diagnostics"), ev)
    else:
        _multiclass(page.section("Classification diagnostics"), ev)
    _importance(page.section("Feature importance"), ev)
    _slices(page.section("Slices"), ev)
    _tuning(page.section("Tuning history"), ev)
    return page


def label(metric: str) -> str:
    """The display name of a metric (``r2`` → ``R²``)."""
    return METRIC_LABELS.get(metric, metric)


# ----------------------------------------------------------------------------- sections


def _verdict(section: Section, ev: Evaluation) -> None:
    name = label(ev.metric)
    winner = ev.winner_metrics.get(ev.metric, math.nan)
    baseline = ev.baseline_metrics.get(ev.metric, math.nan)
    enough = ev.improvement >= ev.margin
    section.cards(
        [
            Card(f"{name} · winner", winner, note=ev.winner, severity="info"),
            Card(f"{name} · best baseline", baseline, note=ev.baseline),
            Card(
                "improvement",
                format_percent(ev.improvement),
                note=f"required ≥ {format_percent(ev.margin)}",
                severity="ok" if enough else "error",
            ),
            Card(
                "verdict",
                "registered" if ev.passed else "not registered",
                note="beats the baseline" if ev.passed else "does not beat the baseline",
                severity="ok" if ev.passed else "error",
            ),
        ]
    )
    if ev.passed:
        text = ev.reason or (
            f"{ev.winner} improves {name} by {format_percent(ev.improvement)} over "
            f"{ev.baseline} (required: {format_percent(ev.margin)})."
        )
        section.callout(text, "ok", title="Passed.")
    else:
        section.callout(
            ev.reason or "The best candidate does not beat the baseline by the required margin.",
            "error",
            title="Not registered.",
        )


def _metrics(section: Section, ev: Evaluation) -> None:
    names = list(metric_names(ev.task))
    extra = [m for r in ev.results for m in (*r.test_metrics, *r.valid_metrics) if m not in names]
    names += list(dict.fromkeys(extra))
    for split, heading in (("test", "Test"), ("valid", "Validation")):
        section.heading(heading)
        section.table(
            _metric_rows(ev, names, split),
            columns=[
                "model",
                "role",
                *(f"{label(m)} ◆" if m == ev.metric else label(m) for m in names),
                *(("fit seconds", "trials") if split == "test" else ()),
            ],
            caption="◆ decides. Blue: the winner. Green: the best value of each column.",
        )
    go = _go()
    fig = go.Figure()
    models = [_plot_text(r.name) for r in ev.results]
    for i, (split, split_label) in enumerate((("valid", "validation"), ("test", "test"))):
        fig.add_trace(
            go.Bar(
                x=models,
                y=[_metric_of(r, split, ev.metric) for r in ev.results],
                name=split_label,
                marker_color=COLORWAY[i],
                hovertemplate="%{x}: %{y:.4g}<extra>" + split_label + "</extra>",
            )
        )
    fig.update_layout(
        title_text=f"{label(ev.metric)} by model",
        barmode="group",
        xaxis={"type": "category"},
        yaxis_title=label(ev.metric),
    )
    section.figure(fig, caption=f"Winner: {ev.winner}. Best baseline: {ev.baseline}.")


def _metric_rows(ev: Evaluation, names: list[str], split: str) -> list[list[object]]:
    values = {r.name: [_metric_of(r, split, m) for m in names] for r in ev.results}
    best = []
    for j, metric in enumerate(names):
        column = [v[j] for v in values.values() if not math.isnan(v[j])]
        pick = max if higher_is_better(metric) else min
        best.append(pick(column) if column else math.nan)
    rows: list[list[object]] = []
    for result in ev.results:
        if result.name == ev.winner:
            role, name_cell = "winner", Cell(result.name, "info", title="the winner")
        else:
            role = "best baseline" if result.name == ev.baseline else result.kind
            name_cell = Cell(result.name)
        cells: list[object] = [name_cell, role]
        for value, top in zip(values[result.name], best, strict=True):
            cells.append(Cell(value, "ok", title="best") if value == top else value)
        if split == "test":
            cells += [result.fit_seconds, result.trials]
        rows.append(cells)
    return rows


def _regression(section: Section, ev: Evaluation) -> None:
    go = _go()
    actual = np.asarray(ev.y_test, dtype="float64").ravel()
    predicted = np.asarray(ev.test_prediction, dtype="float64").ravel()
    keep = np.isfinite(actual) & np.isfinite(predicted)
    actual, predicted = actual[keep], predicted[keep]
    if not actual.size:
        section.callout("No test rows with a finite prediction and target.", "warning")
        return
    residual = actual - predicted
    section.cards(
        {
            "test rows": int(actual.size),
            "mean residual (bias)": float(residual.mean()),
            "median |residual|": float(np.median(np.abs(residual))),
            "residual std": float(residual.std()),
        }
    )
    idx = _sample(actual.size)
    a, p, r = actual[idx], predicted[idx], residual[idx]
    low = float(min(actual.min(), predicted.min()))
    high = float(max(actual.max(), predicted.max()))
    marker = {"size": 5, "opacity": 0.5, "color": COLORWAY[0]}
    scatter = go.Figure(
        [
            go.Scatter(
                x=a,
                y=p,
                mode="markers",
                marker=marker,
                name="test rows",
                hovertemplate="actual %{x:.4g}<br>predicted %{y:.4g}<extra></extra>",
            ),
            go.Scatter(
                x=[low, high],
                y=[low, high],
                mode="lines",
                line={"color": COLORWAY[3], "dash": "dash"},
                name="perfect",
                hoverinfo="skip",
            ),
        ]
    )
    scatter.update_layout(
        title_text="Predicted vs actual",
        xaxis_title="actual",
        yaxis_title="predicted",
        showlegend=False,
    )
    residuals = go.Figure(
        go.Scatter(
            x=p,
            y=r,
            mode="markers",
            marker=marker,
            hovertemplate="predicted %{x:.4g}<br>residual %{y:.4g}<extra></extra>",
        )
    )
    residuals.add_hline(y=0, line={"color": COLORWAY[3], "dash": "dash"})
    residuals.update_layout(
        title_text="Residuals vs predicted",
        xaxis_title="predicted",
        yaxis_title="actual − predicted",
    )
    counts, edges = np.histogram(residual, bins=HISTOGRAM_BINS)
    histogram = go.Figure(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=counts,
            width=np.diff(edges),
            marker_color=COLORWAY[0],
            customdata=np.column_stack([edges[:-1], edges[1:]]),
            hovertemplate="%{customdata[0]:.4g} to %{customdata[1]:.4g}: %{y:,} rows"
            "<extra></extra>",
        )
    )
    histogram.add_vline(x=0, line={"color": COLORWAY[3], "dash": "dash"})
    histogram.update_layout(
        title_text="Residual distribution", xaxis_title="actual − predicted", yaxis_title="rows"
    )
    sampled = (
        f"A seeded sample of {idx.size:,} of {actual.size:,} rows."
        if idx.size < len(actual)
        else None
    )
    section.figures(
        [scatter, residuals, histogram],
        captions=[sampled, sampled, f"All {actual.size:,} test rows."],
    )


def _binary(section: Section, ev: Evaluation) -> None:
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    go = _go()
    scores = _positive_scores(ev)
    if scores is None:  # pragma: no cover - the caller checks
        return
    classes = _classes(ev)
    negative, positive = (classes[0], classes[1]) if len(classes) > 1 else ("other", classes[0])
    truth = (np.asarray(ev.y_test).ravel() == positive).astype("int64")
    threshold = 0.5 if ev.threshold is None else float(ev.threshold)
    flagged = scores >= threshold
    tp = int(np.sum(flagged & (truth == 1)))
    fp = int(np.sum(flagged & (truth == 0)))
    fn = int(np.sum(~flagged & (truth == 1)))
    tn = int(np.sum(~flagged & (truth == 0)))
    pos, neg = tp + fn, tn + fp
    section.cards(
        [
            Card("positive class", str(positive)),
            Card("threshold", threshold, note="tuned on validation data"),
            Card("positive share", format_percent(pos / max(pos + neg, 1)), note="test rows"),
            Card("flagged share", format_percent((tp + fp) / max(pos + neg, 1)), note="predicted"),
        ]
    )
    figures: list[Any] = []
    captions: list[str | None] = []
    at_threshold = f"threshold {threshold:.3g}"
    if pos and neg:
        fpr, tpr, _ = roc_curve(truth, scores)
        fpr, tpr = _thin(fpr), _thin(tpr)
        roc = go.Figure(
            [
                go.Scatter(x=fpr, y=tpr, mode="lines", name="ROC", line={"color": COLORWAY[0]}),
                _diagonal(go),
                _point(go, fp / neg, tp / pos, at_threshold),
            ]
        )
        roc.update_layout(
            title_text=f"ROC curve (AUC {roc_auc_score(truth, scores):.3f})",
            xaxis={"title": "false positive rate", "range": [0, 1]},
            yaxis={"title": "true positive rate", "range": [0, 1.02]},
            showlegend=False,
        )
        precision, recall, _ = precision_recall_curve(truth, scores)
        precision, recall = _thin(precision), _thin(recall)
        pr = go.Figure(
            [
                go.Scatter(
                    x=recall, y=precision, mode="lines", name="PR", line={"color": COLORWAY[0]}
                ),
                go.Scatter(
                    x=[0, 1],
                    y=[pos / (pos + neg)] * 2,
                    mode="lines",
                    line={"color": _NEUTRAL, "dash": "dash"},
                    name="no skill",
                    hoverinfo="skip",
                ),
                _point(go, tp / pos, tp / max(tp + fp, 1), at_threshold),
            ]
        )
        pr.update_layout(
            title_text=f"Precision-recall (AP {average_precision_score(truth, scores):.3f})",
            xaxis={"title": "recall", "range": [0, 1]},
            yaxis={"title": "precision", "range": [0, 1.02]},
            showlegend=False,
        )
        figures += [roc, pr]
        captions += [
            f"The dot is the stored {at_threshold}.",
            "Dashed: the share of positives (a model without skill).",
        ]
    else:
        section.callout(
            "The test part holds a single class: ROC and precision-recall curves are undefined.",
            "warning",
        )
    names = [_plot_text(negative), _plot_text(positive)]
    figures.append(_confusion_figure(go, np.array([[tn, fp], [fn, tp]]), names, at_threshold))
    captions.append(f"Rows are actual classes, columns predicted ones, at the {at_threshold}.")
    figures.append(_calibration_figure(go, truth, scores))
    captions.append(
        f"{CALIBRATION_BINS} equal-width bins; a calibrated model lies on the diagonal. "
        "Bars: rows per bin."
    )
    section.figures(figures, captions=captions)


def _multiclass(section: Section, ev: Evaluation) -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    go = _go()
    probs = np.asarray(ev.test_prediction, dtype="float64")
    classes = _classes(ev)
    if probs.ndim != 2 or probs.shape[1] != len(classes):
        section.callout(
            f"Class probabilities have shape {probs.shape}, not (rows, {len(classes)} classes).",
            "warning",
        )
        return
    truth = np.asarray(ev.y_test).ravel()
    labels = np.asarray(classes, dtype=object)
    truth_idx = _class_index(truth, labels)
    pred_idx = probs.argmax(axis=1)
    k = len(classes)
    known = truth_idx >= 0
    matrix = np.bincount(truth_idx[known] * k + pred_idx[known], minlength=k * k).reshape(k, k)
    section.cards(
        {
            "classes": k,
            "test rows": int(truth.size),
            "accuracy": format_percent(float(np.trace(matrix)) / max(int(known.sum()), 1)),
        }
    )
    names = [_plot_text(c) for c in classes]
    section.figure(
        _confusion_figure(go, matrix, names, "argmax"),
        caption="Rows are actual classes, columns predicted ones (the most probable class).",
    )
    rows: list[list[object]] = []
    for j, cls in enumerate(classes):
        y = (truth_idx == j).astype("int64")
        support, predicted, hits = int(y.sum()), int(matrix[:, j].sum()), int(matrix[j, j])
        both = 0 < support < y.size
        auc = float(roc_auc_score(y, probs[:, j])) if both else math.nan
        ap = float(average_precision_score(y, probs[:, j])) if both else math.nan
        precision = hits / predicted if predicted else math.nan
        recall = hits / support if support else math.nan
        f1 = 2 * hits / (support + predicted) if support + predicted else math.nan
        rows.append([str(cls), support, predicted, auc, ap, precision, recall, f1])
    section.table(
        rows,
        columns=[
            "class",
            "support",
            "predicted",
            "ROC AUC (ovr)",
            "PR AUC (ovr)",
            "precision",
            "recall",
            "F1",
        ],
        severity={"ROC AUC (ovr)": _auc_severity},
        caption="One class against the rest. Support: test rows of the class.",
    )


def _importance(section: Section, ev: Evaluation) -> None:
    frame = ev.importance
    if frame.empty or "importance_mean" not in frame.columns:
        section.paragraph("Permutation importance was not computed for this run.")
        return
    go = _go()
    ordered = frame.sort_values("importance_mean", ascending=False, kind="stable")
    shown = ordered.head(MAX_IMPORTANCE).iloc[::-1]
    std = (
        shown["importance_std"].fillna(0).to_numpy(dtype="float64")
        if "importance_std" in shown.columns
        else np.zeros(len(shown))
    )
    means = shown["importance_mean"].to_numpy(dtype="float64")
    fig = go.Figure(
        go.Bar(
            x=means,
            y=[_plot_text(f) for f in shown["feature"]],
            orientation="h",
            error_x={"type": "data", "array": std, "visible": True, "color": "#374151"},
            marker_color=[COLORWAY[0] if m > 0 else _NEUTRAL for m in means],
            hovertemplate="%{y}: %{x:.4g}<extra></extra>",
        )
    )
    fig.update_layout(
        title_text="Permutation importance",
        height=max(260, 26 * len(shown) + 110),
        xaxis_title="drop in score when the feature is shuffled",
        yaxis={"type": "category"},
    )
    useless = int((ordered["importance_mean"] <= 0).sum())
    caption = (
        "Mean ± std over repeated shuffles of each feature on the test part. "
        f"{useless} of {len(ordered)} features {'does' if useless == 1 else 'do'} not help "
        "(≤ 0: shuffling it does not lower the score)."
    )
    if len(ordered) > MAX_IMPORTANCE:
        caption += f" The {MAX_IMPORTANCE} most important shown."
    section.figure(fig, caption=caption)


def _slices(section: Section, ev: Evaluation) -> None:
    frame = ev.slices
    if frame.empty or ev.metric not in frame.columns:
        section.paragraph("No slices: the data has no categorical feature with enough rows.")
        return
    better_high = higher_is_better(ev.metric)
    ordered = frame.sort_values(ev.metric, ascending=better_high, na_position="last", kind="stable")
    overall = ev.winner_metrics.get(ev.metric, math.nan)
    others = [c for c in ordered.columns if c not in ("feature", "value", "count", ev.metric)]

    def severity(value: Any) -> Severity | None:
        number = _finite(value)
        if number is None or math.isnan(overall):
            return None
        change = improvement(ev.metric, number, overall)
        if change <= -SLICE_ERROR:
            return "error"
        return "warning" if change <= -SLICE_WARNING else None

    table = ordered[["feature", "value", "count", ev.metric, *others]].rename(
        columns={ev.metric: f"{label(ev.metric)} ◆", **{m: label(m) for m in others}}
    )
    worst = ordered.iloc[0]
    flagged = sum(severity(v) is not None for v in ordered[ev.metric])
    section.cards(
        [
            Card("slices", len(ordered)),
            Card(f"overall {label(ev.metric)}", overall, note=ev.winner),
            Card(
                "worst slice",
                worst[ev.metric],
                note=f"{worst['feature']} = {worst['value']} ({int(worst['count']):,} rows)",
                severity=severity(worst[ev.metric]),
            ),
            Card(
                "worse than overall",
                flagged,
                note=f"by {format_percent(SLICE_WARNING, 0)} or more",
                severity="warning" if flagged else "ok",
            ),
        ]
    )
    section.table(
        table,
        severity={f"{label(ev.metric)} ◆": severity},
        max_rows=MAX_SLICE_ROWS,
        caption=(
            f"The winner on test rows with each value of each categorical feature, worst "
            f"{label(ev.metric)} first. Amber: {format_percent(SLICE_WARNING, 0)} worse than "
            f"overall; red: {format_percent(SLICE_ERROR, 0)} worse. Small slices are noisy."
        ),
    )


def _tuning(section: Section, ev: Evaluation) -> None:
    trials = ev.trials
    if trials.empty or not {"candidate", "number", "value"} <= set(trials.columns):
        section.paragraph("No tuning trials were run (baselines only, or no tuning budget).")
        return
    go = _go()
    state = (
        trials["state"].astype(str).str.lower()
        if "state" in trials.columns
        else pd.Series("complete", index=trials.index)
    )
    values = pd.to_numeric(trials["value"], errors="coerce")
    done = trials[(state == "complete").to_numpy() & values.notna().to_numpy()].assign(value=values)
    seconds = (
        float(pd.to_numeric(trials["seconds"], errors="coerce").sum())
        if "seconds" in trials.columns
        else math.nan
    )
    section.cards(
        {
            "trials": len(trials),
            "complete": len(done),
            "pruned": int((state == "pruned").sum()),
            "failed": int((state == "fail").sum()),
            "seconds": seconds,
        }
    )
    better_high = higher_is_better(ev.metric)
    fig = go.Figure()
    for i, (candidate, unordered) in enumerate(done.groupby("candidate", sort=False)):
        group = unordered.sort_values("number")
        value = group["value"].to_numpy(dtype="float64")
        best = np.maximum.accumulate(value) if better_high else np.minimum.accumulate(value)
        color = COLORWAY[i % len(COLORWAY)]
        name = _plot_text(candidate)
        fig.add_trace(
            go.Scatter(
                x=group["number"],
                y=best,
                mode="lines",
                line={"shape": "hv", "color": color, "width": 2},
                name=name,
                legendgroup=name,
                hovertemplate="trial %{x}: best %{y:.4g}<extra>" + name + "</extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=group["number"],
                y=value,
                mode="markers",
                marker={"color": color, "size": 6, "opacity": 0.45},
                name=f"{name} trials",
                legendgroup=name,
                showlegend=False,
                hovertemplate="trial %{x}: %{y:.4g}<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        title_text=f"Best validation {label(ev.metric)} so far",
        xaxis_title="trial",
        yaxis_title=label(ev.metric),
    )
    section.figure(fig, caption="Lines: best so far per candidate. Dots: each complete trial.")
    top = done.sort_values("value", ascending=not better_high, kind="stable").head(TOP_TRIALS)
    rows = [
        [
            str(row["candidate"]),
            int(row["number"]),
            float(row["value"]),
            float(row["seconds"]) if "seconds" in top.columns else math.nan,
            _params_text(row["params"]) if "params" in top.columns else "",
        ]
        for _, row in top.iterrows()
    ]
    section.table(
        rows,
        columns=["candidate", "trial", f"validation {label(ev.metric)}", "seconds", "parameters"],
        caption=f"The {len(rows)} best complete trials.",
    )


# ----------------------------------------------------------------------------- figures


def _confusion_figure(go: Any, matrix: np.ndarray, names: list[str], how: str) -> Any:
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    text = [
        [f"{int(c):,}<br>{format_percent(s)}" for c, s in zip(row, srow, strict=True)]
        for row, srow in zip(matrix, shares, strict=True)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=shares,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}" if len(names) <= MAX_CONFUSION_TEXT else None,
            customdata=matrix,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            showscale=False,
            hovertemplate="actual %{y}, predicted %{x}: %{customdata:,} rows<extra></extra>",
        )
    )
    fig.update_layout(
        title_text=f"Confusion matrix ({how})",
        xaxis={"title": "predicted", "type": "category", "side": "bottom"},
        yaxis={"title": "actual", "type": "category", "autorange": "reversed"},
        height=max(360, 36 * len(names) + 140),
    )
    return fig


def _calibration_figure(go: Any, truth: np.ndarray, scores: np.ndarray) -> Any:
    bins = np.clip((scores * CALIBRATION_BINS).astype("int64"), 0, CALIBRATION_BINS - 1)
    counts = np.bincount(bins, minlength=CALIBRATION_BINS)
    mean_score = np.bincount(bins, weights=scores, minlength=CALIBRATION_BINS)
    positives = np.bincount(bins, weights=truth, minlength=CALIBRATION_BINS)
    used = counts > 0
    predicted = mean_score[used] / counts[used]
    observed = positives[used] / counts[used]
    centers = (np.arange(CALIBRATION_BINS) + 0.5) / CALIBRATION_BINS
    brier = float(np.mean((scores - truth) ** 2))
    fig = go.Figure(
        [
            go.Bar(
                x=centers,
                y=counts,
                width=1 / CALIBRATION_BINS,
                yaxis="y2",
                marker_color="#e5e7eb",
                name="rows",
                hovertemplate="%{y:,} rows<extra></extra>",
            ),
            _diagonal(go),
            go.Scatter(
                x=predicted,
                y=observed,
                mode="lines+markers",
                line={"color": COLORWAY[0]},
                customdata=counts[used],
                name="model",
                hovertemplate="predicted %{x:.3f}<br>observed %{y:.3f}<br>%{customdata:,} rows"
                "<extra></extra>",
            ),
        ]
    )
    fig.update_layout(
        title_text=f"Calibration (Brier {brier:.3f})",
        xaxis={"title": "mean predicted probability", "range": [0, 1]},
        yaxis={"title": "observed positive share", "range": [0, 1.02]},
        yaxis2={"overlaying": "y", "side": "right", "showgrid": False, "title": "rows"},
        showlegend=False,
    )
    return fig


def _diagonal(go: Any) -> Any:
    return go.Scatter(
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        line={"color": _NEUTRAL, "dash": "dash"},
        name="chance",
        hoverinfo="skip",
    )


def _point(go: Any, x: float, y: float, text: str) -> Any:
    return go.Scatter(
        x=[x],
        y=[y],
        mode="markers",
        marker={"color": COLORWAY[3], "size": 11, "line": {"color": "white", "width": 1.5}},
        name=text,
        hovertemplate=f"{text}<br>(%{{x:.3f}}, %{{y:.3f}})<extra></extra>",
    )


# ----------------------------------------------------------------------------- helpers


def _go() -> Any:
    import plotly.graph_objects as go

    return go


def _plot_text(text: object) -> str:
    # plotly renders a few HTML tags inside chart text; show user strings literally instead.
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _metric_of(result: CandidateResult, split: str, metric: str) -> float:
    metrics = result.test_metrics if split == "test" else result.valid_metrics
    value = metrics.get(metric, math.nan)
    return math.nan if value is None else float(value)


def _classes(ev: Evaluation) -> list[Any]:
    if ev.classes:
        return list(ev.classes)
    return sorted(pd.unique(np.asarray(ev.y_test).ravel()).tolist(), key=str)


def _positive_scores(ev: Evaluation) -> np.ndarray | None:
    """The positive-class probability of a binary task, or ``None`` for multiclass."""
    probs = np.asarray(ev.test_prediction, dtype="float64")
    if probs.ndim == 2 and probs.shape[1] == 2:
        return probs[:, 1]
    if probs.ndim == 2 and probs.shape[1] == 1:
        return probs[:, 0]
    return probs if probs.ndim == 1 else None


def _class_index(truth: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The position of each true label in ``labels`` (-1 for a label not listed)."""
    lookup: Mapping[Any, int] = {v: i for i, v in enumerate(labels.tolist())}
    codes, uniques = pd.factorize(pd.Series(truth, dtype=object))
    mapping = np.array([lookup.get(u, -1) for u in uniques.tolist()] + [-1], dtype="int64")
    return mapping[codes]


def _sample(n: int) -> np.ndarray:
    if n <= MAX_POINTS:
        return np.arange(n)
    rng = np.random.default_rng(SEED)
    return np.sort(rng.choice(n, MAX_POINTS, replace=False))


def _thin(curve: np.ndarray) -> np.ndarray:
    if curve.size <= MAX_CURVE_POINTS:
        return curve
    keep = np.unique(np.linspace(0, curve.size - 1, MAX_CURVE_POINTS).astype("int64"))
    return curve[keep]  # type: ignore[no-any-return]


def _finite(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is missing, not a number or not finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _auc_severity(value: Any) -> Severity | None:
    auc = _finite(value)
    if auc is None:
        return None
    return "error" if auc < 0.6 else "warning" if auc < 0.7 else None


def _params_text(params: Any, limit: int = 160) -> str:
    if isinstance(params, Mapping):
        parts = []
        for key, value in params.items():
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            parts.append(f"{key}={shown}")
        text = ", ".join(parts)
    else:
        text = "" if params is None else str(params)
    return text if len(text) <= limit else text[: limit - 1] + "…"
