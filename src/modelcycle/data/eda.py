"""Exploratory data analysis: one self-contained HTML report and a short terminal summary.

:func:`explore` takes a frame and its :class:`~modelcycle.data.schema.FeatureSchema` (kinds and
roles come from the schema) and writes a page with: an overview (counts, column table, findings),
the target (distribution or class balance), per-feature distributions, missing values,
associations with the target, correlations among numeric features, outliers (IQR rule), and
duplicates / anomalies. Counts (rows, missing, duplicates, outliers, class balance) use the whole
frame; charts and correlations use a seeded sample of at most ``max_rows`` rows. Everything is
vectorised (pandas / numpy); plotly is imported only when a report is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from modelcycle.data.schema import ColumnSchema, FeatureSchema
from modelcycle.htmlreport import (
    COLORWAY,
    Card,
    Cell,
    Page,
    Section,
    Severity,
    format_bytes,
    format_percent,
    format_value,
)

if TYPE_CHECKING:
    from rich.console import Console

IQR_FACTOR = 3.0
"""Outliers are values below ``Q1 - 3·IQR`` or above ``Q3 + 3·IQR`` ("far out" in Tukey's terms)."""
IMBALANCE_SHARE = 0.20
"""A classification target is called imbalanced when its rarest class is below this share."""
HIGH_CORRELATION = 0.90
"""Pairs of numeric features with ``|Pearson r|`` at or above this are reported as redundant."""
MAX_CHARTS = 60
"""At most this many per-feature distribution charts (the rest are listed)."""
TOP_CATEGORIES = 20
"""Bars shown per categorical chart; the rest are summed into one "(other)" bar."""
ASSOCIATION_CATEGORIES = 50
"""Categories kept per feature when measuring association; rarer ones are pooled."""
MAX_CLASS_BARS = 30
"""Classes shown in the class-balance chart."""
MAX_HEATMAP = 25
"""Numeric columns in the correlation heatmap."""
MIN_ROWS = 3
"""Fewer complete rows than this and correlations / associations are skipped."""

_OTHER = "(other)"
_MISSING = "(missing)"
_CHARTED_ROLES = ("feature", "time", "ignored")
_PALETTE = COLORWAY


@dataclass(frozen=True)
class Association:
    """How strongly one feature relates to the target.

    Attributes:
        feature: The feature's name.
        method: ``spearman`` (numeric feature, regression), ``correlation ratio`` (a numeric
            variable against a categorical one) or ``cramers v`` (two categorical variables).
        value: The statistic (signed for Spearman).
        strength: ``|value|``, in [0, 1], used for ranking.
        pearson: Pearson's r, for a numeric feature against a numeric target.
        n: Complete pairs the statistic was computed on.
    """

    feature: str
    method: str
    value: float
    strength: float
    pearson: float | None = None
    n: int = 0


@dataclass
class EdaSummary:
    """What :func:`explore` found, for the terminal and for callers (counts use all rows).

    Attributes:
        path: The HTML report.
        title: The report's title.
        n_rows: Rows in the frame.
        n_columns: Columns in the frame.
        n_features: Columns with role ``feature``.
        memory_bytes: In-memory size of the frame (deep).
        missing_cells: Missing cells, all columns.
        missing_share: ``missing_cells / (n_rows * n_columns)``.
        rows_with_missing: Rows with at least one missing cell.
        duplicate_rows: Rows identical to an earlier row (``None`` if values are unhashable).
        sampled_rows: Rows used for charts and correlations.
        target: The target column, if any.
        task: ``regression``, ``classification`` or ``None``.
        target_missing: Rows whose target is missing.
        target_stats: Regression target: count, mean, std, min, median, max, skew.
        class_counts: Classification target: rows per class, most frequent first.
        minority_class: The rarest class.
        minority_share: The rarest class's share of labelled rows.
        imbalance_ratio: Rows of the most frequent class per row of the rarest.
        associations: Features against the target, strongest first.
        outliers: Numeric columns with values beyond the IQR fences, and how many.
        warnings: Findings worth a look, one sentence each.
        n_figures: Charts on the page.
        seconds: Time taken to build the report.
    """

    path: Path
    title: str
    n_rows: int
    n_columns: int
    n_features: int
    memory_bytes: int
    missing_cells: int
    missing_share: float
    rows_with_missing: int
    duplicate_rows: int | None
    sampled_rows: int
    target: str | None = None
    task: str | None = None
    target_missing: int = 0
    target_stats: dict[str, float] = field(default_factory=dict)
    class_counts: dict[str, int] = field(default_factory=dict)
    minority_class: str | None = None
    minority_share: float | None = None
    imbalance_ratio: float | None = None
    associations: list[Association] = field(default_factory=list)
    outliers: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    n_figures: int = 0
    seconds: float = 0.0


@dataclass
class _Outliers:
    column: str
    q1: float
    q3: float
    low: float
    high: float
    below: int
    above: int
    n: int
    vmin: float
    vmax: float

    @property
    def count(self) -> int:
        return self.below + self.above


@dataclass
class _Context:
    """Everything the page sections share."""

    frame: pd.DataFrame
    sample: pd.DataFrame
    columns: list[ColumnSchema]
    target: str | None
    task: str | None
    nulls: pd.Series
    notes: dict[str, list[str]]
    warnings: list[str]
    infinite: dict[str, int] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)


def explore(
    frame: pd.DataFrame,
    schema: FeatureSchema,
    *,
    out: Path,
    title: str | None = None,
    max_rows: int = 200_000,
    seed: int = 0,
) -> EdaSummary:
    """Write an EDA report of ``frame`` to ``out`` and return its summary.

    Args:
        frame: The data.
        schema: Its schema (kinds and roles; columns it lacks are profiled from the frame and
            given the role ``ignored``).
        out: The HTML file to write (folders are created); an existing directory gets
            ``eda.html`` inside it.
        title: The page title; defaults to "Exploratory data analysis".
        max_rows: Charts and correlations use a random sample of at most this many rows.
        seed: Seed of that sample.

    Returns:
        The numbers the page shows, for the terminal.
    """
    started = perf_counter()
    frame = _unique_names(frame)
    columns, absent = _resolve_columns(frame, schema)
    target = schema.target if schema.target in frame.columns else None
    task = schema.task if target is not None else None
    if target is not None and task is None:
        from modelcycle.data.schema import infer_task

        task = infer_task(frame[target])
    sample = frame.sample(n=max_rows, random_state=seed) if len(frame) > max_rows else frame
    isna = frame.isna()
    ctx = _Context(
        frame=frame,
        sample=sample,
        columns=columns,
        target=target,
        task=task,
        nulls=isna.sum(),
        notes={c.name: [c.reason] if c.reason else [] for c in columns},
        warnings=[],
    )
    if absent:
        ctx.warnings.append(f"Schema columns absent from the data: {', '.join(absent)}.")
    if schema.target is not None and target is None:
        ctx.warnings.append(f"The target column {schema.target!r} is not in the data.")

    n_rows, n_cols = frame.shape
    missing_cells = int(ctx.nulls.sum())
    summary = EdaSummary(
        path=_report_path(Path(out)),
        title=title or "Exploratory data analysis",
        n_rows=n_rows,
        n_columns=n_cols,
        n_features=sum(c.role == "feature" for c in columns),
        memory_bytes=int(frame.memory_usage(deep=True).sum()),
        missing_cells=missing_cells,
        missing_share=missing_cells / (n_rows * n_cols) if n_rows * n_cols else 0.0,
        rows_with_missing=int(isna.any(axis=1).sum()),
        duplicate_rows=_count_duplicates(frame),
        sampled_rows=len(sample),
        target=target,
        task=task,
    )
    subtitle = f"{n_rows:,} rows × {n_cols:,} columns"
    if target is not None:
        subtitle += f" · target {target} ({task})"
    if schema.source:
        subtitle += f" · {schema.source}"
    page = Page(summary.title, subtitle=subtitle)

    # Sections are created in display order, filled in computation order: later analyses add
    # notes and findings that the overview shows.
    overview = page.section("Overview")
    target_section = page.section("Target") if target is not None else None
    dist_section = page.section("Distributions")
    missing_section = page.section("Missing values")
    assoc_section = page.section("Association with the target") if target is not None else None
    corr_section = page.section("Correlations")
    outlier_section = page.section("Outliers")
    anomaly_section = page.section("Duplicates and anomalies")

    if target_section is not None:
        _target(ctx, target_section, summary)
    outliers = _outliers(ctx)
    summary.outliers = {o.column: o.count for o in outliers if o.count}
    _distributions(ctx, dist_section)
    _missing(ctx, missing_section, summary)
    if assoc_section is not None:
        summary.associations = _associations(ctx, assoc_section)
    _correlations(ctx, corr_section)
    _outlier_section(outlier_section, outliers)
    _anomalies(ctx, anomaly_section, summary, absent)
    _overview(ctx, overview, summary)

    summary.warnings = ctx.warnings
    summary.n_figures = page.n_figures
    page.write(summary.path)
    summary.seconds = perf_counter() - started
    return summary


def render_summary(summary: EdaSummary, console: Console) -> None:
    """Print a short summary of an EDA run: key numbers, the top findings, the report path."""
    from rich.style import Style
    from rich.table import Table
    from rich.text import Text

    table = Table(title=summary.title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()

    def row(label: str, value: str) -> None:
        table.add_row(label, Text(value))  # Text: column names are data, not Rich markup

    row("rows × columns", f"{summary.n_rows:,} × {summary.n_columns:,}")
    row("memory", format_bytes(summary.memory_bytes))
    row(
        "missing cells",
        f"{format_percent(summary.missing_share)} ({summary.rows_with_missing:,} rows affected)",
    )
    dups = summary.duplicate_rows
    row("duplicate rows", "unknown" if dups is None else f"{dups:,}")
    if summary.target is not None:
        row("target", f"{summary.target} ({summary.task})")
    if summary.class_counts:
        row("classes", ", ".join(f"{k}: {v:,}" for k, v in list(summary.class_counts.items())[:6]))
        if summary.minority_share is not None:
            row(
                "minority class",
                f"{summary.minority_class} ({format_percent(summary.minority_share)}, "
                f"majority : minority = {summary.imbalance_ratio or 0:.1f} : 1)",
            )
    elif summary.target_stats:
        stats = summary.target_stats
        row(
            "target mean ± std",
            f"{format_value(stats.get('mean'))} ± {format_value(stats.get('std'))}",
        )
    if summary.associations:
        row(
            "strongest features",
            ", ".join(
                f"{a.feature} ({a.value:+.2f})"
                if a.method == "spearman"
                else f"{a.feature} ({a.value:.2f})"
                for a in summary.associations[:3]
            ),
        )
    if summary.outliers:
        worst = sorted(summary.outliers.items(), key=lambda kv: -kv[1])[:3]
        row(f"outliers ({IQR_FACTOR:g}·IQR)", ", ".join(f"{k}: {v:,}" for k, v in worst))
    console.print(table)
    for warning in summary.warnings[:8]:
        console.print(Text.assemble(("! ", "yellow"), warning))
    if len(summary.warnings) > 8:
        console.print(Text.assemble(("! ", "yellow"), f"… and {len(summary.warnings) - 8} more"))
    console.print(
        Text.assemble(
            "Report: ",
            (str(summary.path), Style(link=summary.path.resolve().as_uri())),
            f" ({summary.n_figures} charts, {summary.seconds:.1f} s)",
        )
    )


# ----------------------------------------------------------------------------- columns, counts


def _unique_names(frame: pd.DataFrame) -> pd.DataFrame:
    names = [str(c) for c in frame.columns]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        n = seen.get(name, 0)
        seen[name] = n + 1
        unique.append(name if n == 0 else f"{name}.{n}")
    if unique == list(frame.columns):
        return frame
    return frame.set_axis(unique, axis=1)


def _resolve_columns(
    frame: pd.DataFrame, schema: FeatureSchema
) -> tuple[list[ColumnSchema], list[str]]:
    """The schema's view of each frame column, and schema columns absent from the frame."""
    known = {c.name: c for c in schema.columns}
    extra = [str(c) for c in frame.columns if c not in known]
    inferred: dict[str, ColumnSchema] = {}
    if extra:
        profile = FeatureSchema.infer(frame[extra].head(10_000))
        inferred = {
            c.name: c.model_copy(update={"role": "ignored", "reason": "not in the schema"})
            for c in profile.columns
        }
    columns = [known.get(str(c)) or inferred[str(c)] for c in frame.columns]
    absent = [c.name for c in schema.columns if c.name not in frame.columns]
    return columns, absent


def _report_path(out: Path) -> Path:
    return out / "eda.html" if out.is_dir() else out


def _count_duplicates(frame: pd.DataFrame, subset: list[str] | None = None) -> int | None:
    if len(frame) < 2:
        return 0
    try:
        return int(frame.duplicated(subset=subset).sum())
    except TypeError:  # unhashable values (lists, dicts) in an object column
        return None


def _floats(series: pd.Series) -> np.ndarray:
    """A column as float64 with NaN for missing and non-numeric values."""
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        try:
            series = pd.to_numeric(series.astype(object), errors="coerce")
        except (TypeError, ValueError):  # pragma: no cover - values pandas cannot parse at all
            return np.full(len(series), np.nan)
    return np.asarray(series.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")


def _labels(series: pd.Series) -> pd.Series:
    """A column as strings (missing stays missing), for counting categories."""
    return series.astype("string")


def _pooled(series: pd.Series, keep: int) -> pd.Series:
    """Labels with all but the ``keep`` most frequent pooled as "(other)"; missing as a label."""
    labels = _labels(series)
    top = labels.value_counts().index[:keep]
    pooled = labels.where(labels.isin(top), _OTHER)
    return pooled.mask(labels.isna(), _MISSING).astype(object)


def _plot_text(text: object) -> str:
    # plotly renders a few HTML tags inside chart text; show user strings literally instead.
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _go() -> Any:
    import plotly.graph_objects as go

    return go


def _note(ctx: _Context, column: str, text: str) -> None:
    ctx.notes.setdefault(column, []).append(text)


# ----------------------------------------------------------------------------- charts


def _numeric_figure(values: np.ndarray, name: str) -> tuple[Any | None, str]:
    """A histogram (pre-binned with numpy, so the page stays small) and a caption."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, "no finite values"
    go = _go()
    lo, hi = float(finite.min()), float(finite.max())
    caption = ""
    whole = bool(np.all(np.mod(finite, 1) == 0))
    if whole and hi - lo <= 60:
        counts = np.bincount((finite - lo).astype(np.int64))
        xs = np.arange(lo, hi + 1)
        keep = counts > 0
        fig = go.Figure(
            go.Bar(
                x=xs[keep],
                y=counts[keep],
                marker_color=_PALETTE[0],
                hovertemplate="%{x}: %{y:,} rows<extra></extra>",
            )
        )
        fig.update_layout(bargap=0.15)
    else:
        p_lo, p_hi = (float(v) for v in np.quantile(finite, [0.005, 0.995]))
        span = (lo, hi)
        if p_hi > p_lo and hi - lo > 20 * (p_hi - p_lo):
            span = (p_lo, p_hi)
            outside = int(((finite < p_lo) | (finite > p_hi)).sum())
            caption = (
                f"{outside:,} extreme values outside [{format_value(p_lo)}, "
                f"{format_value(p_hi)}] are not drawn (range {format_value(lo)} to "
                f"{format_value(hi)})."
            )
        if span[0] == span[1]:
            span = (span[0] - 0.5, span[1] + 0.5)
        bins = int(min(60, max(8, math.ceil(2 * finite.size ** (1 / 3)))))
        counts, edges = np.histogram(finite, bins=bins, range=span)
        fig = go.Figure(
            go.Bar(
                x=(edges[:-1] + edges[1:]) / 2,
                y=counts,
                width=np.diff(edges),
                customdata=np.column_stack([edges[:-1], edges[1:]]),
                marker_color=_PALETTE[0],
                marker_line_width=0,
                hovertemplate="[%{customdata[0]:.4g}, %{customdata[1]:.4g}): %{y:,} rows"
                "<extra></extra>",
            )
        )
    fig.update_layout(title_text=_plot_text(name), xaxis_title=_plot_text(name), yaxis_title="rows")
    return fig, caption


def _category_figure(series: pd.Series, name: str) -> tuple[Any | None, str]:
    counts = _labels(series).value_counts()
    if counts.empty:
        return None, "no values"
    go = _go()
    total = int(counts.sum())
    top = counts.iloc[:TOP_CATEGORIES]
    labels = [_plot_text(k) for k in top.index]
    values = [int(v) for v in top.to_numpy()]
    caption = ""
    if len(counts) > TOP_CATEGORIES:
        rest = total - sum(values)
        caption = (
            f"{len(counts):,} distinct values; the {TOP_CATEGORIES} most frequent shown, the "
            f"other {len(counts) - TOP_CATEGORIES:,} hold {format_percent(rest / total)} of rows."
        )
    shares = [v / total for v in values]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            text=[format_percent(s) for s in shares],
            textposition="auto",
            marker_color=_PALETTE[1],
            hovertemplate="%{y}: %{x:,} rows (%{text})<extra></extra>",
        )
    )
    fig.update_layout(
        title_text=_plot_text(name),
        xaxis_title="rows",
        yaxis={"autorange": "reversed", "type": "category", "automargin": True},
        height=max(240, 90 + 24 * len(labels)),
    )
    return fig, caption


def _datetime_figure(series: pd.Series, name: str) -> tuple[Any | None, str]:
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = pd.to_datetime(series, utc=True)
    else:
        stamps = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    stamps = stamps.dropna()
    if stamps.empty:
        return None, "no parseable dates"
    go = _go()
    ns = stamps.dt.tz_localize(None).dt.as_unit("ns").to_numpy().astype("int64")
    bins = int(min(60, max(8, math.ceil(2 * ns.size ** (1 / 3)))))
    lo, hi = int(ns.min()), int(ns.max())
    span = (lo, hi) if hi > lo else (lo - 43_200 * 10**9, hi + 43_200 * 10**9)
    counts, edges = np.histogram(ns, bins=bins, range=span)
    centers = pd.to_datetime(((edges[:-1] + edges[1:]) / 2).astype("int64"), unit="ns")
    fig = go.Figure(
        go.Bar(
            x=centers,
            y=counts,
            marker_color=_PALETTE[2],
            hovertemplate="%{x}: %{y:,} rows<extra></extra>",
        )
    )
    fig.update_layout(title_text=_plot_text(name), yaxis_title="rows", bargap=0.05)
    first, last = stamps.min(), stamps.max()
    midnight = bool((ns % (86_400 * 10**9) == 0).all())
    shape = "%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M UTC"
    return fig, f"From {first.strftime(shape)} to {last.strftime(shape)}."


# ----------------------------------------------------------------------------- sections


def _overview(ctx: _Context, section: Section, summary: EdaSummary) -> None:
    dup = summary.duplicate_rows
    cards = [
        Card("rows", summary.n_rows),
        Card("columns", summary.n_columns, note=f"{summary.n_features} features"),
        Card("memory", format_bytes(summary.memory_bytes)),
        Card(
            "missing cells",
            format_percent(summary.missing_share),
            note=f"{summary.rows_with_missing:,} rows with a gap",
            severity="warning" if summary.missing_share > 0.05 else None,
        ),
        Card(
            "duplicate rows",
            "unknown" if dup is None else dup,
            note=format_percent(dup / summary.n_rows) if dup and summary.n_rows else None,
            severity="warning" if dup else None,
        ),
    ]
    if summary.target is not None:
        cards.append(Card("target", summary.target, note=summary.task))
    if summary.minority_share is not None:
        cards.append(
            Card(
                "minority class",
                format_percent(summary.minority_share),
                note=f"class {summary.minority_class} · {summary.imbalance_ratio or 0:.1f} : 1",
                severity="warning" if summary.minority_share < IMBALANCE_SHARE else None,
            )
        )
    section.cards(cards)
    if summary.sampled_rows < summary.n_rows:
        section.callout(
            f"Charts, correlations and associations use a random sample of "
            f"{summary.sampled_rows:,} of the {summary.n_rows:,} rows (seeded). Counts of rows, "
            "missing values, duplicates, outliers and classes use every row.",
            "info",
            title="Sampled.",
        )
    if ctx.warnings:
        section.heading("Findings")
        section.bullets(ctx.warnings)
    else:
        section.callout("Nothing unusual found.", "ok")
    section.heading("Columns")
    n_rows = len(ctx.frame)
    rows = []
    for col in ctx.columns:
        series = ctx.frame[col.name]
        nulls = int(ctx.nulls[col.name])
        try:
            unique: int | None = int(series.nunique())
        except TypeError:
            unique = None
        share = nulls / n_rows if n_rows else 0.0
        null_sev: Severity | None = "error" if share > 0.5 else "warning" if share > 0.05 else None
        rows.append(
            [
                col.name,
                col.kind,
                Cell(col.role, "info" if col.role == "target" else None),
                str(series.dtype),
                Cell(format_percent(share), null_sev),
                unique,
                "; ".join(ctx.notes.get(col.name, [])),
            ]
        )
    section.table(rows, columns=["column", "kind", "role", "dtype", "missing", "unique", "notes"])


def _target(ctx: _Context, section: Section, summary: EdaSummary) -> None:
    target = ctx.target
    assert target is not None
    series = ctx.frame[target]
    n_missing = int(ctx.nulls[target])
    summary.target_missing = n_missing
    if n_missing == len(series):
        section.callout(f"Every value of the target {target!r} is missing.", "error")
        ctx.warnings.append(f"The target {target!r} is entirely missing.")
        return
    if n_missing:
        section.callout(
            f"{n_missing:,} rows ({format_percent(n_missing / len(series))}) have no target; "
            "they cannot be used for training.",
            "warning",
        )
        ctx.warnings.append(f"{n_missing:,} rows have a missing target.")
    if ctx.task == "regression":
        _regression_target(ctx, section, summary, target)
    else:
        _classification_target(ctx, section, summary, target)


def _regression_target(ctx: _Context, section: Section, summary: EdaSummary, target: str) -> None:
    values = _floats(ctx.frame[target])
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        section.callout(f"The target {target!r} has no numeric values.", "error")
        return
    quantiles = np.quantile(finite, [0.01, 0.25, 0.5, 0.75, 0.99])
    skew = _skewness(finite)
    stats = {
        "count": float(finite.size),
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
        "min": float(finite.min()),
        "p1": float(quantiles[0]),
        "p25": float(quantiles[1]),
        "median": float(quantiles[2]),
        "p75": float(quantiles[3]),
        "p99": float(quantiles[4]),
        "max": float(finite.max()),
        "skew": skew,
    }
    summary.target_stats = stats
    section.cards({k: stats[k] for k in ("mean", "std", "min", "median", "max", "skew")})
    fig, caption = _numeric_figure(_floats(ctx.sample[target]), target)
    if fig is not None:
        section.figure(fig, caption=caption or f"Distribution of {target}.")
    if abs(skew) > 1:
        section.callout(
            f"The target is skewed (skewness {skew:.2f}); a log transform of the target, or a "
            "metric robust to large values (MAE, MAPE), may suit it better.",
            "info",
        )
    section.table([list(stats.values())], columns=list(stats), caption="All rows.")


def _skewness(values: np.ndarray) -> float:
    """Sample skewness (adjusted Fisher-Pearson, as pandas computes it); NaN when undefined."""
    n = values.size
    std = float(values.std())
    if n < 3 or std == 0:
        return float("nan")
    g1 = float(np.mean((values - values.mean()) ** 3)) / std**3
    return g1 * math.sqrt(n * (n - 1)) / (n - 2)


def _classification_target(
    ctx: _Context, section: Section, summary: EdaSummary, target: str
) -> None:
    counts = _labels(ctx.frame[target]).value_counts()
    summary.class_counts = {str(k): int(v) for k, v in counts.items()}
    ctx.classes = list(summary.class_counts)
    total = int(counts.sum())
    cards: dict[str, object] = {"classes": len(counts), "labelled rows": total}
    if len(counts) < 2:
        section.cards(cards)
        section.callout(
            f"The target has a single class ({counts.index[0]!s}); a classifier cannot learn.",
            "error",
        )
        ctx.warnings.append("The target has a single class.")
        return
    minority, majority = str(counts.index[-1]), str(counts.index[0])
    share = int(counts.iloc[-1]) / total
    ratio = int(counts.iloc[0]) / int(counts.iloc[-1])
    summary.minority_class, summary.minority_share, summary.imbalance_ratio = (
        minority,
        share,
        ratio,
    )
    cards.update(
        {"minority share": format_percent(share), "majority : minority": f"{ratio:.1f} : 1"}
    )
    section.cards(cards)
    go = _go()
    shown = counts.iloc[:MAX_CLASS_BARS]
    labels = [_plot_text(k) for k in shown.index]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=shown.to_numpy(),
            text=[f"{int(v):,} ({format_percent(int(v) / total)})" for v in shown.to_numpy()],
            textposition="auto",
            marker_color=[_PALETTE[i % len(_PALETTE)] for i in range(len(shown))],
            hovertemplate="%{x}: %{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title_text=f"Class balance of {_plot_text(target)}",
        xaxis={"type": "category", "title": _plot_text(target)},
        yaxis_title="rows",
    )
    caption = f"Majority {majority} to minority {minority}: {ratio:.1f} to 1 (all rows)."
    if len(counts) > MAX_CLASS_BARS:
        caption += f" The {MAX_CLASS_BARS} most frequent of {len(counts):,} classes shown."
    section.figure(fig, caption=caption)
    if share < IMBALANCE_SHARE:
        severe = "severely " if share < 0.05 else ""
        section.callout(
            f"The target is {severe}imbalanced: the rarest class {minority!r} is "
            f"{format_percent(share)} of the rows (ratio {ratio:.1f} : 1). Use stratified "
            "splits, a metric that respects the minority class (F1, balanced accuracy, PR AUC) "
            "and consider class weights or resampling.",
            "warning",
            title="Imbalanced classes.",
        )
        ctx.warnings.append(
            f"Imbalanced target: class {minority!r} is {format_percent(share)} of rows."
        )


def _distributions(ctx: _Context, section: Section) -> None:
    charted: list[tuple[Any, str]] = []
    skipped: list[str] = []
    for col in ctx.columns:
        if col.name == ctx.target:
            continue
        why = ""
        if col.role not in _CHARTED_ROLES:
            why = f"role {col.role}"
        elif col.kind == "text":
            why = "free text"
        elif int(ctx.nulls[col.name]) == len(ctx.frame):
            why = "all values missing"
        elif col.constant:
            why = "constant"
        elif len(charted) >= MAX_CHARTS:
            why = f"chart limit of {MAX_CHARTS}"
        if why:
            skipped.append(f"{col.name} ({why})")
            continue
        series = ctx.sample[col.name]
        if col.kind == "numeric":
            fig, caption = _numeric_figure(_floats(series), col.name)
        elif col.kind == "datetime" or col.role == "time":
            fig, caption = _datetime_figure(series, col.name)
            if fig is None and col.kind != "datetime":
                fig, caption = _category_figure(series, col.name)
        else:
            fig, caption = _category_figure(series, col.name)
        if fig is None:
            skipped.append(f"{col.name} ({caption})")
            continue
        missing = int(ctx.nulls[col.name])
        parts: list[str] = [col.kind]
        if missing:
            parts.append(f"{format_percent(missing / len(ctx.frame))} missing")
        if caption:
            parts.append(caption)
        charted.append((fig, " · ".join(parts)))
    section.paragraph(
        "Histograms for numeric columns (integers with few values get one bar per value), "
        "bars of the most frequent values for categorical and boolean columns, counts over "
        "time for dates."
    )
    if charted:
        section.figures([f for f, _ in charted], captions=[c for _, c in charted])
    else:
        section.callout("No column can be charted.", "info")
    if skipped:
        section.paragraph("Not charted: " + ", ".join(skipped) + ".")


def _missing(ctx: _Context, section: Section, summary: EdaSummary) -> None:
    n_rows = len(ctx.frame)
    nulls = ctx.nulls[ctx.nulls > 0].sort_values(ascending=False)
    if nulls.empty:
        section.callout("No missing values.", "ok")
        return
    section.cards(
        {
            "missing cells": summary.missing_cells,
            "share of cells": format_percent(summary.missing_share),
            "rows with a gap": summary.rows_with_missing,
            "columns with a gap": len(nulls),
        }
    )
    shares = nulls.to_numpy(dtype="float64") / n_rows
    go = _go()
    names = [_plot_text(n) for n in nulls.index]
    fig = go.Figure(
        go.Bar(
            x=shares * 100,
            y=names,
            orientation="h",
            text=[format_percent(s) for s in shares],
            textposition="auto",
            customdata=nulls.to_numpy(),
            marker_color=[
                "#ef4444" if s > 0.5 else "#f59e0b" if s > 0.05 else "#94a3b8" for s in shares
            ],
            hovertemplate="%{y}: %{customdata:,} missing (%{text})<extra></extra>",
        )
    )
    fig.update_layout(
        title_text="Missing values per column",
        xaxis={"title": "% of rows", "range": [0, 100]},
        yaxis={"autorange": "reversed", "type": "category", "automargin": True},
        height=max(240, 90 + 24 * len(names)),
    )
    section.figure(fig, caption=f"{len(ctx.columns) - len(nulls)} columns have no missing values.")
    for name, count in nulls.items():
        share = int(count) / n_rows
        if share == 1:
            ctx.warnings.append(f"Column {name!r} is entirely missing.")
            _note(ctx, str(name), "all missing")
        elif share > 0.5:
            ctx.warnings.append(f"Column {name!r} is {format_percent(share)} missing.")


def _associations(ctx: _Context, section: Section) -> list[Association]:
    target = ctx.target
    assert target is not None
    section.paragraph(
        "How strongly each feature relates to the target, on the sampled rows where both are "
        "present. Regression: Spearman's rank correlation ρ for numeric features (Pearson's r "
        "alongside), the correlation ratio η for categorical and boolean features (how much of "
        "the target's variance the categories explain). Classification: η of each numeric "
        "feature across the classes (for two classes it equals |point-biserial r|), Cramér's V "
        "for categorical and boolean features. All strengths run from 0 (none) to 1. Rare "
        f"categories beyond the {ASSOCIATION_CATEGORIES} most frequent are pooled; missing "
        "values count as a category of their own."
    )
    sample = ctx.sample[ctx.sample[target].notna()]
    if len(sample) < MIN_ROWS:
        section.callout(f"Too few labelled rows ({len(sample)}) to measure associations.", "info")
        return []
    regression = ctx.task == "regression"
    y_num = _floats(sample[target]) if regression else np.array([])
    y_rank = pd.Series(y_num).rank().to_numpy() if regression else y_num
    y_lab = pd.Series(dtype=object) if regression else _pooled(sample[target], 1000)
    found: list[Association] = []
    raw: dict[str, np.ndarray | pd.Series] = {}
    for col in ctx.columns:
        if col.role != "feature" or col.kind in ("text", "datetime") or col.constant:
            continue
        series = sample[col.name]
        if col.kind == "numeric":
            x = _floats(series)
            if regression:
                found.extend(_numeric_vs_numeric(col.name, x, y_num, y_rank))
            else:
                eta = _correlation_ratio(y_lab, x)
                if eta is not None:
                    found.append(
                        Association(col.name, "correlation ratio", eta[0], eta[0], n=eta[1])
                    )
            raw[col.name] = x
        else:
            labels = _pooled(series, ASSOCIATION_CATEGORIES)
            raw[col.name] = labels
            if regression:
                eta = _correlation_ratio(labels, y_num)
                if eta is not None:
                    found.append(
                        Association(col.name, "correlation ratio", eta[0], eta[0], n=eta[1])
                    )
            else:
                v = _cramers_v(labels, y_lab)
                if v is not None:
                    found.append(Association(col.name, "cramers v", v, v, n=len(labels)))
    found.sort(key=lambda a: -a.strength)
    if not found:
        section.callout("No feature has enough values to measure an association.", "info")
        return found
    go = _go()
    shown = found[:30][::-1]
    method_names = {"spearman": "Spearman |ρ|", "correlation ratio": "η", "cramers v": "Cramér's V"}
    fig = go.Figure()
    for i, (method, label) in enumerate(method_names.items()):
        subset = [a for a in shown if a.method == method]
        if subset:
            fig.add_trace(
                go.Bar(
                    x=[a.strength for a in subset],
                    y=[_plot_text(a.feature) for a in subset],
                    orientation="h",
                    name=label,
                    marker_color=_PALETTE[i],
                    hovertemplate="%{y}: %{x:.3f}<extra>" + label + "</extra>",
                )
            )
    fig.update_layout(
        title_text=f"Association with {_plot_text(target)}",
        xaxis={"title": "strength (0 to 1)", "range": [0, 1]},
        yaxis={
            "type": "category",
            "automargin": True,
            "categoryorder": "array",
            "categoryarray": [_plot_text(a.feature) for a in shown],
        },
        height=max(260, 110 + 24 * len(shown)),
        legend={"orientation": "h", "y": -0.2},
    )
    section.figure(fig, caption="Strongest 30 features." if len(found) > 30 else None)
    rows: list[list[object]] = [
        [a.feature, method_names[a.method].replace(" |ρ|", " ρ"), round(a.value, 4), a.n]
        for a in found
    ]
    columns = ["feature", "method", "value", "pairs"]
    if regression:
        for row, a in zip(rows, found, strict=True):
            row.insert(3, None if a.pearson is None else round(a.pearson, 4))
        columns.insert(3, "Pearson r")
    section.table(
        rows, columns=columns, severity={"value": lambda v: "info" if abs(v) >= 0.5 else None}
    )
    leaks = [a.feature for a in found if a.strength >= 0.95]
    if leaks:
        section.callout(
            f"Near-perfect association with the target: {', '.join(leaks)}. Check these for "
            "target leakage (a value only known after the outcome).",
            "warning",
        )
        ctx.warnings.append(f"Possible target leakage: {', '.join(leaks)}.")
    best = found[0]
    y = sample[target] if regression else y_lab
    best_x = raw[best.feature]
    if isinstance(best_x, pd.Series):
        labels, order = best_x, _frequency_order(best_x)
    else:
        labels, order = _binned(best_x)
    fig = _target_by_group(labels, order, y, best.feature, target, regression, ctx.classes)
    if fig is not None:
        section.heading(f"The target by {best.feature}")
        what = "Mean target" if regression else "Class shares"
        section.figure(
            fig, caption=f"{what} per value (or decile) of the strongest feature, {best.feature}."
        )
    return found


def _numeric_vs_numeric(
    name: str, x: np.ndarray, y: np.ndarray, y_rank: np.ndarray
) -> list[Association]:
    """Spearman's ρ (ranks with ties averaged) and Pearson's r on the complete pairs."""
    mask = np.isfinite(x) & np.isfinite(y)
    n = int(mask.sum())
    if n < MIN_ROWS:
        return []
    xs, ys = x[mask], y[mask]
    if xs.std() == 0 or ys.std() == 0:
        return []
    pearson = float(np.corrcoef(xs, ys)[0, 1])
    rx = pd.Series(xs).rank().to_numpy()
    ry = y_rank if n == y.size else pd.Series(ys).rank().to_numpy()
    spearman = float(np.corrcoef(rx, ry)[0, 1])
    return [Association(name, "spearman", spearman, abs(spearman), pearson=pearson, n=n)]


def _correlation_ratio(groups: pd.Series, values: np.ndarray) -> tuple[float, int] | None:
    """η: the share of the variance of ``values`` explained by ``groups`` (square-rooted)."""
    mask = np.isfinite(values) & groups.notna().to_numpy()
    v = values[mask]
    if v.size < MIN_ROWS:
        return None
    codes, _ = pd.factorize(groups.to_numpy()[mask])
    mean = v.mean()
    total = float(((v - mean) ** 2).sum())
    if total == 0 or codes.max() < 1:
        return None
    n = np.bincount(codes)
    means = np.bincount(codes, weights=v) / n
    between = float((n * (means - mean) ** 2).sum())
    return math.sqrt(min(1.0, between / total)), int(v.size)


def _cramers_v(a: pd.Series, b: pd.Series) -> float | None:
    """Cramér's V of two label series without missing values (bias-uncorrected)."""
    ca, ua = pd.factorize(a.to_numpy())
    cb, ub = pd.factorize(b.to_numpy())
    r, c = len(ua), len(ub)
    if min(r, c) < 2 or ca.size < MIN_ROWS:
        return None
    table = np.bincount(ca * c + cb, minlength=r * c).reshape(r, c).astype("float64")
    n = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return math.sqrt(min(1.0, chi2 / n / (min(r, c) - 1)))


def _binned(x: np.ndarray) -> tuple[pd.Series, list[str]]:
    """Numeric values as labels (the value itself when few, else its decile), in display order."""
    series = pd.Series(x)
    finite = series[np.isfinite(x)]
    if finite.nunique() <= 12:
        codes, uniques = pd.factorize(finite, sort=True)
        shown = np.array([format_value(v) for v in uniques], dtype=object)
        order = [str(v) for v in shown]
        labels = pd.Series(shown[codes], index=finite.index)
    else:
        bins = pd.qcut(finite, q=10, duplicates="drop")
        names = {
            iv: f"{format_value(iv.left)} – {format_value(iv.right)}" for iv in bins.cat.categories
        }
        order = list(names.values())
        labels = bins.map(names).astype(object)
    labels = labels.reindex(series.index).astype(object).fillna(_MISSING)
    if len(finite) < len(series):
        order.append(_MISSING)
    return labels, list(dict.fromkeys(order))


def _frequency_order(labels: pd.Series) -> list[str]:
    """The most frequent labels first, then the pooled "(other)" and "(missing)" groups."""
    counts = labels.value_counts()
    special = (_OTHER, _MISSING)
    top = [str(g) for g in counts.index if g not in special][:TOP_CATEGORIES]
    return top + [g for g in special if g in counts.index]


def _target_by_group(
    groups: pd.Series,
    order: list[str],
    y: pd.Series,
    feature: str,
    target: str,
    regression: bool,
    classes: list[str],
) -> Any | None:
    """Mean target (regression) or class shares (classification) per group of a feature."""
    frame = pd.DataFrame({"g": groups.to_numpy(), "y": y.to_numpy()})
    if len(order) < 2:
        return None
    go = _go()
    if regression:
        frame["y"] = _floats(frame["y"])
        stats = frame.groupby("g", sort=False)["y"].agg(["mean", "count"]).reindex(order)
        fig = go.Figure(
            go.Bar(
                x=[_plot_text(g) for g in order],
                y=stats["mean"].to_numpy(),
                customdata=stats["count"].to_numpy(),
                marker_color=_PALETTE[0],
                hovertemplate="%{x}: mean %{y:.4g} over %{customdata:,} rows<extra></extra>",
            )
        )
        fig.update_layout(yaxis_title=f"mean {_plot_text(target)}")
    else:
        shares = pd.crosstab(frame["g"], frame["y"], normalize="index").reindex(order)
        known = [c for c in classes if c in shares.columns]
        shares = shares[known + [c for c in shares.columns if c not in known]]
        fig = go.Figure()
        for i, cls in enumerate(shares.columns):
            fig.add_trace(
                go.Bar(
                    x=[_plot_text(g) for g in order],
                    y=shares[cls].to_numpy(),
                    name=_plot_text(cls),
                    marker_color=_PALETTE[i % len(_PALETTE)],
                    hovertemplate="%{x}: %{y:.1%}<extra>" + _plot_text(cls) + "</extra>",
                )
            )
        fig.update_layout(barmode="stack", yaxis={"title": "share", "tickformat": ".0%"})
    fig.update_layout(
        title_text=f"{_plot_text(target)} by {_plot_text(feature)}",
        xaxis={"type": "category", "title": _plot_text(feature)},
    )
    return fig


def _correlations(ctx: _Context, section: Section) -> None:
    names = [
        c.name
        for c in ctx.columns
        if c.kind == "numeric"
        and c.role in ("feature", "target")
        and not c.constant
        and int(ctx.nulls[c.name]) < len(ctx.frame)
    ]
    if len(names) > MAX_HEATMAP:
        names = names[:MAX_HEATMAP]
        section.callout(f"Only the first {MAX_HEATMAP} numeric columns are shown.", "info")
    if len(names) < 2 or len(ctx.sample) < MIN_ROWS:
        why = "fewer than two numeric columns" if len(names) < 2 else "too few rows"
        section.callout(f"No correlation matrix: {why}.", "info")
        return
    matrix = pd.DataFrame({n: _floats(ctx.sample[n]) for n in names}).replace(
        [np.inf, -np.inf], np.nan
    )
    corr = matrix.corr(method="pearson", min_periods=MIN_ROWS)
    go = _go()
    labels = [_plot_text(n) for n in names]
    z = corr.to_numpy()
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            reversescale=True,
            text=np.where(np.isnan(z), "", np.vectorize(lambda v: f"{v:.2f}")(z)),
            texttemplate="%{text}" if len(names) <= 15 else None,
            hovertemplate="%{y} × %{x}: r = %{z:.3f}<extra></extra>",
            colorbar={"title": "r"},
        )
    )
    size = min(760, 160 + 34 * len(names))
    fig.update_layout(
        title_text="Pearson correlation",
        height=size,
        yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
        xaxis={"automargin": True, "type": "category"},
    )
    section.paragraph(
        "Pearson's r between numeric columns (the target included for regression), on the "
        "sampled rows, pairwise-complete."
    )
    section.figure(fig)
    upper = np.triu(np.abs(z), k=1)
    pairs = [
        (names[i], names[j], float(z[i, j]))
        for i, j in zip(*np.nonzero(upper >= HIGH_CORRELATION), strict=True)
        if ctx.target not in (names[i], names[j])
    ]
    if pairs:
        pairs.sort(key=lambda p: -abs(p[2]))
        section.callout(
            f"{_plural(len(pairs), 'pair')} of features with |r| ≥ {HIGH_CORRELATION}: each "
            "pair carries nearly the same information; consider dropping one of each.",
            "warning",
            title="Redundant features.",
        )
        section.table(
            [[a, b, round(r, 4)] for a, b, r in pairs], columns=["feature", "feature", "r"]
        )
        ctx.warnings.append(
            f"{_plural(len(pairs), 'highly correlated feature pair')} (|r| ≥ {HIGH_CORRELATION})."
        )


def _outliers(ctx: _Context) -> list[_Outliers]:
    found = []
    for col in ctx.columns:
        if col.kind != "numeric" or col.role not in ("feature", "target"):
            continue
        if col.name == ctx.target and ctx.task != "regression":
            continue
        values = _floats(ctx.frame[col.name])
        finite = values[np.isfinite(values)]
        n_inf = int(np.isinf(values).sum())
        if n_inf:
            ctx.infinite[col.name] = n_inf
            _note(ctx, col.name, f"{n_inf:,} infinite values")
            ctx.warnings.append(f"Column {col.name!r} has {n_inf:,} infinite values.")
        if finite.size < MIN_ROWS:
            continue
        q1, q3 = (float(v) for v in np.quantile(finite, [0.25, 0.75]))
        iqr = q3 - q1
        if iqr == 0:
            _note(ctx, col.name, "IQR is 0 (over half the values equal)")
            continue
        low, high = q1 - IQR_FACTOR * iqr, q3 + IQR_FACTOR * iqr
        below, above = int((finite < low).sum()), int((finite > high).sum())
        found.append(
            _Outliers(
                col.name,
                q1,
                q3,
                low,
                high,
                below,
                above,
                finite.size,
                float(finite.min()),
                float(finite.max()),
            )
        )
        if below + above:
            _note(ctx, col.name, _plural(below + above, "outlier"))
        if below + above > 0.01 * finite.size:
            ctx.warnings.append(
                f"Column {col.name!r} has {format_percent((below + above) / finite.size)} "
                f"outliers beyond {IQR_FACTOR:g}·IQR."
            )
    return found


def _outlier_section(section: Section, outliers: list[_Outliers]) -> None:
    section.paragraph(
        f"Values below Q1 − {IQR_FACTOR:g}·IQR or above Q3 + {IQR_FACTOR:g}·IQR (IQR = Q3 − Q1), "
        "counted on every row. Columns whose IQR is 0 are left out (the rule does not apply)."
    )
    if not outliers:
        section.callout("No numeric column to check.", "info")
        return
    with_any = [o for o in outliers if o.count]
    if not with_any:
        section.callout("No outliers by the IQR rule.", "ok")
    else:
        go = _go()
        shown = sorted(with_any, key=lambda o: -o.count / o.n)
        fig = go.Figure(
            go.Bar(
                x=[100 * o.count / o.n for o in shown],
                y=[_plot_text(o.column) for o in shown],
                orientation="h",
                customdata=[o.count for o in shown],
                marker_color=_PALETTE[3],
                hovertemplate="%{y}: %{customdata:,} rows (%{x:.2f}%)<extra></extra>",
            )
        )
        fig.update_layout(
            title_text="Outliers per column",
            xaxis_title="% of rows",
            yaxis={"autorange": "reversed", "type": "category", "automargin": True},
            height=max(220, 90 + 26 * len(shown)),
        )
        section.figure(fig)
    section.table(
        [
            [
                o.column,
                o.vmin,
                o.q1,
                o.q3,
                o.vmax,
                o.low,
                o.high,
                o.below,
                o.above,
                Cell(format_percent(o.count / o.n, 2), _outlier_severity(o.count / o.n)),
            ]
            for o in outliers
        ],
        columns=[
            "column",
            "min",
            "Q1",
            "Q3",
            "max",
            "low fence",
            "high fence",
            "below",
            "above",
            "share",
        ],
    )


def _outlier_severity(share: float) -> Severity | None:
    return "warning" if share > 0.01 else "ok" if share == 0 else None


def _anomalies(ctx: _Context, section: Section, summary: EdaSummary, absent: list[str]) -> None:
    frame = ctx.frame
    rows: list[list[object]] = []

    def add(check: str, where: str, count: object, severity: Severity, detail: str = "") -> None:
        rows.append([check, where, Cell(count, severity), detail])

    dups = summary.duplicate_rows
    if dups == 0:
        add("duplicate rows", "all columns", 0, "ok")
    elif dups:
        add("duplicate rows", "all columns", dups, "warning", format_percent(dups / len(frame)))
        ctx.warnings.append(f"{dups:,} duplicate rows ({format_percent(dups / len(frame))}).")
    elif dups is None:
        add("duplicate rows", "all columns", "unknown", "info", "unhashable values")
    ids = [c.name for c in ctx.columns if c.role == "id"]
    if ids:
        rest = [c for c in frame.columns if c not in ids]
        content = _count_duplicates(frame, rest) if rest else 0
        if content and content != dups:
            add(
                "same row, different id",
                ", ".join(ids),
                content,
                "warning",
                "rows equal in every column but the id",
            )
            ctx.warnings.append(f"{content:,} rows repeat another row under a different id.")
        for name in ids:
            repeated = int(frame[name].duplicated().sum()) if len(frame) > 1 else 0
            if not repeated:
                add("duplicate ids", name, 0, "ok")
            else:
                add("duplicate ids", name, repeated, "error", "ids should be unique")
                ctx.warnings.append(f"Id column {name!r} has {repeated:,} repeated values.")
    conflicts = _conflicting_labels(ctx)
    if conflicts:
        add(
            "conflicting labels",
            ctx.target or "",
            conflicts,
            "warning",
            "rows with the same features but different targets",
        )
        ctx.warnings.append(f"{conflicts:,} rows share their features with a different target.")
    for col in ctx.columns:
        nulls = int(ctx.nulls[col.name])
        if len(frame) and nulls == len(frame):
            add("all missing", col.name, nulls, "error")
        elif col.constant and len(frame) > 1:
            add("constant", col.name, 1, "warning", "one value: carries no information")
            if not any("constant" in n for n in ctx.notes.get(col.name, [])):
                _note(ctx, col.name, "constant")
            if col.role == "feature":
                ctx.warnings.append(f"Feature {col.name!r} is constant.")
        elif col.kind == "categorical" and col.high_cardinality and col.role == "feature":
            add("high cardinality", col.name, col.n_unique, "info", "many distinct categories")
            _note(ctx, col.name, "high cardinality")
        elif col.kind in ("categorical", "boolean") and len(ctx.sample) > 1:
            top = _labels(ctx.sample[col.name]).value_counts(normalize=True)
            if len(top) > 1 and float(top.iloc[0]) >= 0.99:
                add(
                    "near constant",
                    col.name,
                    round(float(top.iloc[0]), 4),
                    "info",
                    f"{top.index[0]!s} in ≥ 99% of rows",
                )
                _note(ctx, col.name, "near constant")
        if col.name in ctx.infinite:
            add("infinite values", col.name, ctx.infinite[col.name], "warning")
    for name in absent:
        add("missing column", name, "", "error", "in the schema, not in the data")
    unknown = [c.name for c in ctx.columns if c.reason == "not in the schema"]
    for name in unknown:
        add("unknown column", name, "", "info", "in the data, not in the schema")
    if all(cast(Cell, r[2]).severity == "ok" for r in rows):
        section.callout("No duplicates or anomalies found.", "ok")
    section.table(rows, columns=["check", "column", "count", "detail"])


def _conflicting_labels(ctx: _Context) -> int:
    """Rows whose feature values equal another row's while their targets differ."""
    target = ctx.target
    features = [c.name for c in ctx.columns if c.role == "feature"]
    frame = ctx.frame
    if target is None or not features or len(frame) < 2:
        return 0
    try:
        repeated = frame.duplicated(subset=features, keep=False)
    except TypeError:
        return 0
    if not repeated.any():
        return 0
    part = frame.loc[repeated, [*features, target]]
    key = pd.util.hash_pandas_object(part[features], index=False)
    labels = pd.util.hash_pandas_object(part[[target]], index=False)
    n_labels = (
        pd.DataFrame({"k": key.to_numpy(), "y": labels.to_numpy()})
        .groupby("k")["y"]
        .transform("nunique")
    )
    return int((n_labels > 1).sum())
