"""The monitoring report: an offline HTML page on whether a served model still holds up.

:func:`write_report` turns one monitoring run's JSON report (``MonitoringReport.as_dict()``, as
stored in ``monitoring_runs.report``) into a page built with :mod:`modelcycle.htmlreport`
(plotly.js inlined once, no network access):

- **Verdict**: healthy (green), degraded (amber) or failing (red), with its reasons;
- **Alerts** the run fired;
- **Drift**: the dataset drift share and one row per feature, the worst first (``drift``, then
  ``warning``, then ``ok``; by PSI within each), with PSI, Jensen-Shannon, KS, normalised
  Wasserstein, the missing-share change and new categories; the predictions and the target
  after; then the **domain classifier** when the run trained one;
- **Distributions**: reference against current shares of every feature over the same bins, and
  of the predictions and the target;
- **Traffic, errors and OOD** and **Performance**: the window's totals and their timeline
  (realised against estimated metric, with the reference as a line), the label coverage;
- **Across runs** (when ``history`` is given): verdict, drift share, OOD rate and metric of the
  model's recent runs.

The file is written atomically (a temporary file renamed over the target), so a dashboard or a
browser never reads half a report. plotly is imported only when a page is built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from modelcycle.htmlreport import COLORWAY, Card, Cell, Page, Section, Severity, format_percent

VERDICT_SEVERITY: dict[str, Severity] = {"healthy": "ok", "degraded": "warning", "failing": "error"}
"""The colour of a run's verdict: green, amber, red."""
DRIFT_SEVERITY: dict[str, Severity] = {"ok": "ok", "warning": "warning", "drift": "error"}
"""The colour of a feature's drift verdict."""
ALERT_SEVERITY: dict[str, Severity] = {"info": "info", "warning": "warning", "critical": "error"}
"""The colour of an alert's severity."""
DRIFT_ORDER = {"drift": 0, "warning": 1, "ok": 2}
"""Drift verdicts from the worst; the drift table lists features in this order."""
MAX_NEW_CATEGORIES = 3
"""New categories named per feature in the drift table (the most frequent; all on hover)."""
TIMELINE_CHARTS = (
    ("rows", "rows", "rows", None, True),
    ("OOD rate", "ood_rate", "share of rows", ".1%", True),
    ("error rate", "error_rate", "share of rows", ".1%", True),
    ("p99 latency", "p99_latency_ms", "ms", None, True),
    ("mean prediction", "mean_prediction", "prediction", None, False),
)
"""Timeline charts of the traffic section: title, timeline key, y title, tick format, from 0."""
MAX_HISTORY_ROWS = 20
"""Runs listed in the history table (the newest)."""
_NEUTRAL = "#9ca3af"


def write_report(
    report: Mapping[str, Any], path: Path, *, history: Sequence[Mapping[str, Any]] | None = None
) -> Path:
    """Write one monitoring run's report as a self-contained HTML page (works offline).

    Args:
        report: The run's JSON report (:func:`~modelcycle.monitoring.run.monitor`).
        path: Where to write the page; parent folders are created and the file is replaced
            atomically.
        history: The model's recent runs (rows of
            :func:`~modelcycle.store.monitoring.recent_runs`, oldest first), charted across
            runs; no such section when ``None``.

    Returns:
        The path written.
    """
    return report_page(report, history=history).write(path)


def report_page(
    report: Mapping[str, Any], *, history: Sequence[Mapping[str, Any]] | None = None
) -> Page:
    """The :class:`~modelcycle.htmlreport.Page` of :func:`write_report`."""
    page = Page(_title(report), subtitle=_subtitle(report))
    _verdict(page.section("Verdict"), report)
    _alerts(page.section("Alerts"), report)
    _drift(page.section("Drift"), report)
    if report.get("domain"):
        _domain(page.section("Domain classifier"), report["domain"])
    _distributions(page.section("Distributions"), report)
    _operations(page.section("Traffic, errors and OOD"), report)
    _performance(page.section("Performance"), report)
    if history is not None:
        _history(page.section("Across runs"), history)
    return page


# ----------------------------------------------------------------------------- header


def _title(report: Mapping[str, Any]) -> str:
    window = (report.get("window") or {}).get("description") or "whole log"
    return (
        f"{report.get('model_name', '?')} v{report.get('model_version', '?')}: monitoring, {window}"
    )


def _subtitle(report: Mapping[str, Any]) -> str:
    window = report.get("window") or {}
    start, end = utc_text(window.get("start")), utc_text(window.get("end"))
    parts = [f"{start or 'first row'} → {end or 'now'} UTC", f"{report.get('n_rows', 0):,} rows"]
    if report.get("arms"):
        parts.append("arms: " + ", ".join(report["arms"]))
    if report.get("created_at"):
        parts.append(f"run at {utc_text(report['created_at'])} UTC")
    return " · ".join(parts)


# ----------------------------------------------------------------------------- verdict & alerts


def _verdict(section: Section, report: Mapping[str, Any]) -> None:
    verdict = str(report.get("verdict", "unknown"))
    severity = VERDICT_SEVERITY.get(verdict, "info")
    drift = report.get("drift") or {}
    features = drift.get("features") or []
    ood = report.get("ood") or {}
    operations = report.get("operations") or {}
    performance = report.get("performance") or {}
    section.cards(
        [
            Card("verdict", verdict, severity=severity),
            Card("rows", report.get("n_rows", 0)),
            Card(
                "drifted features",
                f"{len(drift.get('drifted') or [])} of {len(features)}" if drift else "—",
                note=None if drift else report.get("drift_skipped"),
                severity="error" if drift.get("dataset_drifted") else None,
            ),
            Card("OOD rate", format_percent(ood.get("rate"))),
            Card("error rate", format_percent(operations.get("error_rate"), 2)),
            Card(
                f"{performance.get('metric', 'metric')} change",
                _signed_percent(_change(performance)),
                note="+ is worse",
            ),
        ]
    )
    reasons = [str(r) for r in report.get("reasons") or []]
    title = f"{verdict.capitalize()}."
    if not reasons:
        section.callout("Nothing crossed a threshold in this window.", severity, title=title)
        return
    if len(reasons) == 1:
        section.callout(reasons[0], severity, title=title)
        return
    section.callout(f"{len(reasons)} reasons:", severity, title=title)
    section.bullets(reasons)


def _alerts(section: Section, report: Mapping[str, Any]) -> None:
    alerts = report.get("alerts") or []
    if not alerts:
        section.callout("No alert fired in this run.", "ok")
        return
    rows = [
        [
            Cell(a.get("severity"), ALERT_SEVERITY.get(str(a.get("severity")))),
            a.get("rule"),
            a.get("feature"),
            a.get("message"),
            a.get("value"),
            a.get("threshold"),
        ]
        for a in alerts
    ]
    columns = ["severity", "rule", "feature", "message", "value", "threshold"]
    section.table(rows, columns=columns, caption="Alerts this run fired (or kept open).")


# ----------------------------------------------------------------------------- drift


def _drift(section: Section, report: Mapping[str, Any]) -> None:
    drift = report.get("drift")
    if not drift:
        why = report.get("drift_skipped") or "the run did not compare the window's data"
        section.callout(f"Drift was not judged: {why}.", "info")
        return
    features = drift_order(drift.get("features") or [])
    share = drift.get("dataset_drift_share")
    section.cards(
        [
            Card(
                "dataset drift share",
                format_percent(share),
                note="share of features that drifted",
                severity="error" if drift.get("dataset_drifted") else "ok" if not share else None,
            ),
            Card(
                "drifted",
                len(drift.get("drifted") or []),
                note=", ".join(drift.get("drifted") or []),
            ),
            Card("reference rows", drift.get("n_reference")),
            Card("current rows", drift.get("n_current")),
            Card("mode", drift.get("mode", "binned")),
        ]
    )
    if features:
        section.table(
            [_drift_row(f) for f in features],
            columns=DRIFT_COLUMNS,
            caption="The worst first; hover a verdict for its reasons. PSI and Jensen-Shannon on "
            "the reference's deciles or categories; KS and Wasserstein (divided by the "
            "reference's std) on its percentiles. PSI below 0.1 is usually read as no shift, "
            "above 0.25 as a large one.",
        )
    outcomes = [drift[k] for k in ("prediction", "target") if drift.get(k)]
    if outcomes:
        section.heading("Predictions and target")
        section.table([_drift_row(f) for f in outcomes], columns=DRIFT_COLUMNS)


DRIFT_COLUMNS = [
    "feature",
    "kind",
    "verdict",
    "PSI",
    "JS",
    "KS",
    "Wasserstein ÷ std",
    "missing change",
    "new categories",
]


def drift_order(features: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Features the worst first: ``drift``, ``warning``, ``ok``; by PSI (largest first) within."""

    def key(feature: Mapping[str, Any]) -> tuple[int, float]:
        psi = (feature.get("statistics") or {}).get("psi")
        return DRIFT_ORDER.get(str(feature.get("verdict")), 3), -_number(psi, -math.inf)

    return sorted(features, key=key)


def _drift_row(feature: Mapping[str, Any]) -> list[object]:
    stats = feature.get("statistics") or {}
    verdict = str(feature.get("verdict"))
    change = feature.get("null_rate_change")
    return [
        feature.get("name"),
        feature.get("kind"),
        Cell(verdict, DRIFT_SEVERITY.get(verdict), title="; ".join(feature.get("reasons") or [])),
        stats.get("psi"),
        stats.get("js"),
        stats.get("ks"),
        Cell(
            stats.get("wasserstein_norm"),
            title=None if "wasserstein" not in stats else f"distance {stats['wasserstein']:.4g}",
        ),
        Cell(
            _signed_points(change),
            title=f"{format_percent(feature.get('null_rate_reference'))} → "
            f"{format_percent(feature.get('null_rate_current'))}",
        ),
        _new_categories(feature),
    ]


def _new_categories(feature: Mapping[str, Any]) -> Cell:
    """The first new categories (all of them on hover) and the share of values they add."""
    names = [str(n) for n in feature.get("new_categories") or []]
    if not names:
        return Cell(None)
    shown = "; ".join(names[:MAX_NEW_CATEGORIES])
    more = f" (+{len(names) - MAX_NEW_CATEGORIES} more)" if len(names) > MAX_NEW_CATEGORIES else ""
    share = _plain((feature.get("statistics") or {}).get("new_category_share"))
    held = f", {format_percent(share)} of values" if share else ""
    return Cell(f"{shown}{more}{held}", title="; ".join(names))


def _domain(section: Section, domain: Mapping[str, Any]) -> None:
    drifted = bool(domain.get("drifted"))
    low, high = domain.get("ci_low"), domain.get("ci_high")
    section.paragraph(
        "A classifier trained to tell current rows from reference rows: a ROC AUC near 0.5 means "
        "it cannot, so the joint distribution held; the run calls it drift when the interval's "
        "lower end is above the threshold."
    )
    section.cards(
        [
            Card("domain AUC", domain.get("auc"), severity="error" if drifted else "ok"),
            Card("95% interval", f"{_short(low)} – {_short(high)}"),
            Card("threshold", domain.get("threshold")),
            Card("drifted", drifted, severity="error" if drifted else "ok"),
        ]
    )
    top = domain.get("top_features") or []
    if top:
        section.table(
            [[name, score] for name, score in top],
            columns=["feature", "AUC drop when shuffled"],
            caption="The features that tell the two samples apart best.",
        )


# ----------------------------------------------------------------------------- distributions


def _distributions(section: Section, report: Mapping[str, Any]) -> None:
    histograms = report.get("histograms") or {}
    features: Mapping[str, Any] = histograms.get("features") or {}
    if not features:
        section.paragraph("The run kept no histograms.")
        return
    drift = report.get("drift") or {}
    verdicts = {str(f.get("name")): f for f in drift_order(drift.get("features") or [])}
    names = [name for name in verdicts if name in features]
    names += [name for name in features if name not in verdicts]
    section.paragraph(
        "Each side as shares of its own rows over the reference's bins (numeric: its deciles, "
        "open at both ends; categorical: its top categories and one 'other'), so windows of any "
        "size compare directly. Drifted features first."
    )
    section.figures(
        [histogram_figure(name, features[name]) for name in names],
        captions=[_drift_caption(verdicts.get(name)) for name in names],
    )
    outcomes: dict[str, Mapping[str, Any]] = {
        k: histograms[k] for k in ("prediction", "target") if histograms.get(k)
    }
    if outcomes:
        section.heading("Predictions and target")
        section.figures(
            [histogram_figure(name, h) for name, h in outcomes.items()],
            captions=[_drift_caption(drift.get(name)) for name in outcomes],
        )


def _drift_caption(feature: Mapping[str, Any] | None) -> str | None:
    if not feature:
        return None
    psi = (feature.get("statistics") or {}).get("psi")
    return f"{feature.get('verdict')} · PSI {_short(psi)}"


def histogram_figure(name: str, histogram: Mapping[str, Any]) -> Any:
    """Reference and current shares of one column as grouped bars over the same bins."""
    import plotly.graph_objects as go

    labels = bin_labels(histogram)
    fig = go.Figure()
    for i, side in enumerate(("reference", "current")):
        counts = [int(c) for c in histogram.get(side) or []]
        total = sum(counts) or 1
        fig.add_trace(
            go.Bar(
                x=labels[: len(counts)],
                y=[c / total for c in counts],
                customdata=counts,
                name=side,
                marker_color=COLORWAY[0] if i == 0 else COLORWAY[1],
                hovertemplate="%{x}: %{y:.1%} (%{customdata:,} rows)<extra>" + side + "</extra>",
            )
        )
    fig.update_layout(
        title_text=name,
        barmode="group",
        bargap=0.15,
        xaxis={"type": "category", "title": {"text": None}},
        yaxis_title="share of rows",
        yaxis_tickformat=".0%",
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
    )
    return fig


def bin_labels(histogram: Mapping[str, Any]) -> list[str]:
    """Bar labels of a histogram: its categories, or ``≤ e0``, ``(e0, e1]``, …, ``> ek``."""
    if histogram.get("kind") == "categorical":
        return [str(c) for c in histogram.get("categories") or []]
    edges = [float(e) for e in histogram.get("edges") or []]
    if not edges:
        return ["all values"]
    texts = _edge_texts(edges)
    middle = [f"({a}, {b}]" for a, b in pairwise(texts)]
    return [f"≤ {texts[0]}", *middle, f"> {texts[-1]}"]


def _edge_texts(edges: Sequence[float]) -> list[str]:
    """Edges as short text, precise enough that no two read the same."""
    from modelcycle.htmlreport import format_value

    texts = [format_value(e) for e in edges]
    digits = 5
    while len(set(texts)) < len(texts) and digits <= 15:
        texts = [f"{e:.{digits}g}" for e in edges]
        digits += 2
    return texts


# ----------------------------------------------------------------------------- operations


def _operations(section: Section, report: Mapping[str, Any]) -> None:
    ops = report.get("operations") or {}
    ood = report.get("ood") or {}
    section.cards(
        [
            Card("requests", ops.get("requests")),
            Card("errors", ops.get("errors"), severity="error" if ops.get("errors") else None),
            Card("error rate", format_percent(ops.get("error_rate"), 2)),
            Card("p50 latency", _ms(ops.get("p50_latency_ms"))),
            Card("p99 latency", _ms(ops.get("p99_latency_ms"))),
            Card(
                "OOD rate",
                format_percent(ood.get("rate")),
                note=f"{ood.get('flagged', 0):,} of {ood.get('checked', 0):,} rows flagged",
            ),
        ]
    )
    _ood_reasons(section, ood)
    _timeline(section, report.get("timeline") or [])


def _ood_reasons(section: Section, ood: Mapping[str, Any]) -> None:
    reasons: Mapping[str, int] = ood.get("by_reason") or {}
    if reasons:
        checked = ood.get("checked") or 0
        section.table(
            [
                [reason, count, format_percent(count / checked if checked else None, 2)]
                for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1])
            ],
            columns=["OOD reason", "rows", "share of checked rows"],
            caption="A row may be flagged for several reasons.",
        )


def _timeline(section: Section, timeline: Sequence[Mapping[str, Any]]) -> None:
    x = [utc_text(b.get("start")) for b in timeline]
    figures = []
    for title, key, y_title, tickformat, from_zero in TIMELINE_CHARTS:
        series = {title: [b.get(key) for b in timeline]}
        if _has_values(series):
            figures.append(
                line_figure(
                    title, x, series, y_title=y_title, tickformat=tickformat, from_zero=from_zero
                )
            )
    if figures:
        section.figures(figures)
    elif timeline:
        section.paragraph("No time bin has values to chart.")


def line_figure(
    title: str,
    x: Sequence[Any],
    series: Mapping[str, Sequence[Any]],
    *,
    y_title: str | None = None,
    tickformat: str | None = None,
    dashed: Sequence[str] = (),
    from_zero: bool = True,
) -> Any:
    """A line chart over time (x in UTC) with one trace per series; ``None`` values leave gaps.

    Args:
        title: The chart's title.
        x: Times, as ``YYYY-MM-DD HH:MM:SS`` UTC text.
        series: Trace name to values (one per time).
        y_title: The y axis title.
        tickformat: A d3 format of the y ticks (``.1%``).
        dashed: Traces drawn as a grey dashed line without markers (a reference level).
        from_zero: Start the y axis at zero.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        fig.add_trace(
            go.Scatter(
                x=list(x),
                y=[_plain(v) for v in values],
                name=name,
                mode="lines" if name in dashed else "lines+markers",
                line={"dash": "dash", "color": _NEUTRAL} if name in dashed else {},
                marker_color=COLORWAY[i % len(COLORWAY)],
            )
        )
    fig.update_layout(
        title_text=title,
        xaxis_title="time (UTC)",
        yaxis_title=y_title,
        yaxis_tickformat=tickformat,
        yaxis_rangemode="tozero" if from_zero else "normal",
        showlegend=len(series) > 1,
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
    )
    return fig


# ----------------------------------------------------------------------------- performance


def _performance(section: Section, report: Mapping[str, Any]) -> None:
    from modelcycle.training.report import label

    perf = report.get("performance")
    if not perf:
        section.paragraph("The run measured no performance.")
        return
    metric = str(perf.get("metric"))
    realised = perf.get("realised") or {}
    estimated = perf.get("estimated") or {}
    reference = perf.get("reference") or {}
    labelled = int(perf.get("labelled") or 0)
    direction = "higher is better" if perf.get("higher_is_better") else "lower is better"
    section.paragraph(
        f"{label(metric)} decides ({direction}). Realised on the rows whose true outcome was "
        "posted to /labels; estimated from the predictions alone; reference from the model's "
        "test data."
    )
    section.cards(
        [
            Card(f"{label(metric)} · realised", realised.get(metric), severity="info"),
            Card(f"{label(metric)} · estimated", estimated.get(metric)),
            Card(f"{label(metric)} · reference", reference.get(metric)),
            Card("change", _signed_percent(_change(perf)), note="relative, + is worse"),
            Card(
                "label coverage",
                format_percent(perf.get("label_coverage")),
                note=f"{labelled:,} of {report.get('n_rows', 0):,} rows labelled",
            ),
        ]
    )
    if not labelled:
        section.callout(
            "No labels for this window yet: realised metrics appear once true outcomes are "
            "posted to /labels (keyed by request id).",
            "info",
        )
    names = list(dict.fromkeys([metric, *realised, *estimated, *reference]))
    section.table(
        [
            [
                f"{label(n)} ◆" if n == metric else label(n),
                realised.get(n),
                estimated.get(n),
                reference.get(n),
            ]
            for n in names
        ],
        columns=["metric", "realised", "estimated", "reference"],
        caption="◆ decides the verdict.",
    )
    timeline = report.get("timeline") or []
    ref_value = reference.get(metric)
    series = {
        "realised": [b.get("metric") for b in timeline],
        "estimated": [b.get("estimated") for b in timeline],
    }
    if _has_values(series) and ref_value is not None:
        series["reference"] = [ref_value] * len(timeline)
    if _has_values(series):
        x = [utc_text(b.get("start")) for b in timeline]
        fig = line_figure(
            f"{label(metric)} over time", x, series, y_title=label(metric), dashed=("reference",)
        )
        section.figure(fig, caption="Per time bin; the dashed line is the reference.")


# ----------------------------------------------------------------------------- history


def _history(section: Section, history: Sequence[Mapping[str, Any]]) -> None:
    from modelcycle.training.report import label

    if not history:
        section.paragraph("No earlier runs of this model.")
        return
    runs = sorted(history, key=lambda r: utc_text(r.get("created_at")) or "")
    x = [utc_text(r.get("created_at")) for r in runs]
    metrics = list(dict.fromkeys(str(r.get("metric")) for r in runs if r.get("metric")))
    charts = [
        line_figure(
            "dataset drift share",
            x,
            {"drift share": [r.get("dataset_drift_share") for r in runs]},
            y_title="share of features",
            tickformat=".0%",
        ),
        line_figure(
            "OOD rate", x, {"OOD rate": [r.get("ood_rate") for r in runs]}, tickformat=".1%"
        ),
    ]
    if metrics:
        series = {
            m: [r.get("metric_value") if r.get("metric") == m else None for r in runs]
            for m in metrics
        }
        names = ", ".join(label(m) for m in metrics)
        charts.append(line_figure(names, x, series, y_title=names))
    section.figures(charts)
    newest = list(reversed(runs))[:MAX_HISTORY_ROWS]
    section.table(
        [
            [
                utc_text(r.get("created_at")),
                Cell(r.get("verdict"), VERDICT_SEVERITY.get(str(r.get("verdict")))),
                r.get("n_rows"),
                format_percent(r.get("dataset_drift_share")),
                format_percent(r.get("ood_rate")),
                r.get("metric"),
                r.get("metric_value"),
            ]
            for r in newest
        ],
        columns=["run (UTC)", "verdict", "rows", "drift share", "OOD rate", "metric", "value"],
        caption=f"The newest {min(len(runs), MAX_HISTORY_ROWS)} of {len(runs)} runs.",
    )


# ----------------------------------------------------------------------------- small helpers


def utc_text(value: Any) -> str | None:
    """A datetime or ISO 8601 text as ``YYYY-MM-DD HH:MM:SS`` in UTC (naive is taken as UTC)."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _number(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default


def _plain(value: Any) -> float | None:
    number = _number(value, math.nan)
    return None if math.isnan(number) else number


def _has_values(series: Mapping[str, Sequence[Any]]) -> bool:
    return any(_plain(v) is not None for values in series.values() for v in values)


def _short(value: Any) -> str:
    number = _plain(value)
    return "—" if number is None else f"{number:.3g}"


def _ms(value: Any) -> str:
    number = _plain(value)
    return "—" if number is None else f"{number:,.1f} ms"


def _signed_percent(value: Any) -> str:
    number = _plain(value)
    return "—" if number is None else f"{number * 100:+.1f}%"


def _signed_points(value: Any) -> str | None:
    """A change of a share in percentage points (``+12.0 pp``)."""
    number = _plain(value)
    return None if number is None else f"{number * 100:+.1f} pp"


def _change(performance: dict[str, Any]) -> float | None:
    """The deciding metric's relative worsening: realised when labels allow, else estimated."""
    realised = performance.get("realised_change")
    return realised if realised is not None else performance.get("estimated_change")
