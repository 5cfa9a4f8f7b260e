"""A small builder for self-contained, offline HTML reports (EDA, evaluation, monitoring, ...).

A :class:`Page` holds sections; a :class:`Section` holds blocks added in order: key-value cards,
tables (from a DataFrame or rows, with optional severity-coloured cells), paragraphs, callouts,
bullet lists and plotly figures. ``render()`` returns one HTML document with inline CSS, a table of
contents and plotly.js inlined once from the installed package, so the file opens offline, from a
``file://`` URL, with no CDN or font download.

Every piece of text is HTML-escaped; :meth:`Section.raw_html` is the only way to add markup.

Example::

    page = Page("Rent data", subtitle="rent_apartments.csv")
    overview = page.section("Overview", intro="What the data looks like.")
    overview.cards({"rows": 1200, "columns": 17}).table(frame.describe(), index=True)
    overview.callout("3 duplicate rows", "warning").figure(fig, caption="Rent distribution")
    page.write("reports/eda.html")
"""

from __future__ import annotations

import functools
import html
import math
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelcycle import __version__

Severity = Literal["ok", "info", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("ok", "info", "warning", "error")
PLOTLY_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}
DEFAULT_FIGURE_HEIGHT = 360
COLORWAY = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#84cc16", "#ec4899")
"""Trace colours of the page look, in order (blue, amber, green, red, violet, cyan, ...)."""
_FONT = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif'
)


@dataclass(frozen=True)
class Cell:
    """A table cell with an optional severity colour and hover text.

    Args:
        value: What the cell shows (formatted with :func:`format_value`).
        severity: Colours the cell: ``ok``, ``info``, ``warning`` or ``error``.
        title: Hover text.
    """

    value: object
    severity: Severity | None = None
    title: str | None = None


@dataclass(frozen=True)
class Card:
    """A big number with a label, for the top of a section.

    Args:
        label: What the number is ("rows", "missing cells").
        value: The number or short text (formatted with :func:`format_value`).
        note: A small line under the value.
        severity: Colours the card's accent.
    """

    label: str
    value: object
    note: str | None = None
    severity: Severity | None = None


SeverityRule = Callable[[Any], Severity | None]


def format_value(value: object) -> str:
    """Format a value for display: thousands separators, about four significant digits.

    ``None`` and NaN show as an em dash; strings are returned unchanged (not escaped).
    """
    if value is None:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return "—"
        if math.isinf(number):
            return "∞" if number > 0 else "-∞"
        if number.is_integer() and abs(number) < 1e15:
            return f"{int(number):,}"
        size = abs(number)
        if size >= 1e15 or size < 1e-3:
            return f"{number:.3g}"
        if size >= 100:
            return f"{number:,.1f}"
        return f"{number:.4g}"
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat(sep=" ")
    try:
        if pd.isna(value):  # type: ignore[call-overload]
            return "—"
    except (TypeError, ValueError):
        pass
    return str(value)


def format_percent(share: float | None, digits: int = 1) -> str:
    """Format a share in [0, 1] as a percentage; tiny non-zero shares show as ``<0.1%``."""
    if share is None or math.isnan(share):
        return "—"
    if 0 < share < 10**-digits / 100:
        return f"<{10**-digits:g}%"
    return f"{share * 100:.{digits}f}%"


def format_bytes(size: float) -> str:
    """Format a byte count with binary units (``1.5 MiB``)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value = float(size)
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _is_number(value: object) -> bool:
    # Numbers (and missing values, usually in numeric columns) are right-aligned.
    return value is None or (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool | np.bool_)
    )


class Section:
    """One titled part of a :class:`Page`; every ``add`` method returns the section for chaining.

    Create sections with :meth:`Page.section`, not directly.
    """

    def __init__(self, page: Page, title: str, anchor: str, intro: str | None) -> None:
        self.title = title
        self.anchor = anchor
        self._page = page
        self._blocks: list[str] = []
        if intro:
            self.paragraph(intro)

    def cards(self, items: Mapping[str, object] | Iterable[Card]) -> Section:
        """Add a row of big-number cards, from ``{label: value}`` or :class:`Card` objects."""
        cards = (
            [Card(str(k), v) for k, v in items.items()]
            if isinstance(items, Mapping)
            else list(items)
        )
        parts = []
        for card in cards:
            sev = f" sev-{card.severity}" if card.severity else ""
            note = f'<div class="card-note">{_esc(card.note)}</div>' if card.note else ""
            value = _esc(format_value(card.value))
            parts.append(
                f'<div class="card{sev}"><div class="card-label">{_esc(card.label)}</div>'
                f'<div class="card-value" title="{value}">{value}</div>{note}</div>'
            )
        self._blocks.append(f'<div class="cards">{"".join(parts)}</div>')
        return self

    def table(
        self,
        data: pd.DataFrame | Sequence[Sequence[object]],
        *,
        columns: Sequence[str] | None = None,
        severity: Mapping[str, SeverityRule] | None = None,
        caption: str | None = None,
        max_rows: int | None = None,
        index: bool = False,
    ) -> Section:
        """Add a table.

        Args:
            data: A DataFrame, or rows (sequences of values; a value may be a :class:`Cell`).
            columns: Header names; required for rows, taken from the DataFrame otherwise.
            severity: Per column, a function from a cell's raw value to a severity (or ``None``)
                that colours the cell.
            caption: A line under the table.
            max_rows: Show at most this many rows and say how many were left out.
            index: Include a DataFrame's index as the first column.
        """
        if isinstance(data, pd.DataFrame):
            frame = data.reset_index() if index else data
            header = [str(c) for c in frame.columns]
            total = len(frame)
            shown = frame if max_rows is None else frame.head(max_rows)
            rows: list[Sequence[object]] = list(shown.itertuples(index=False, name=None))
        else:
            if columns is None:
                raise ValueError("columns is required when the table is given as rows")
            header = list(columns)
            total = len(data)
            rows = list(data[:max_rows] if max_rows is not None else data)
        rules = severity or {}
        head = "".join(f"<th>{_esc(h)}</th>" for h in header)
        body = []
        for row in rows:
            cells = []
            for name, raw in zip(header, row, strict=False):
                cell = raw if isinstance(raw, Cell) else Cell(raw)
                sev = cell.severity
                if sev is None and name in rules:
                    sev = rules[name](cell.value)
                classes = [
                    c for c in ("num" if _is_number(cell.value) else "", sev and f"sev-{sev}") if c
                ]
                cls = f' class="{" ".join(classes)}"' if classes else ""
                tip = f' title="{_esc(cell.title)}"' if cell.title else ""
                cells.append(f"<td{cls}{tip}>{_esc(format_value(cell.value))}</td>")
            body.append(f"<tr>{''.join(cells)}</tr>")
        notes = []
        if caption:
            notes.append(_esc(caption))
        if len(rows) < total:
            notes.append(f"Showing {len(rows):,} of {total:,} rows.")
        cap = f'<p class="caption">{" ".join(notes)}</p>' if notes else ""
        self._blocks.append(
            f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>{cap}"
        )
        return self

    def heading(self, text: str) -> Section:
        """Add a sub-heading inside the section."""
        self._blocks.append(f"<h3>{_esc(text)}</h3>")
        return self

    def paragraph(self, text: str) -> Section:
        """Add a paragraph of plain text."""
        self._blocks.append(f"<p>{_esc(text)}</p>")
        return self

    def bullets(self, items: Iterable[str]) -> Section:
        """Add a bullet list of plain-text items."""
        lis = "".join(f"<li>{_esc(item)}</li>" for item in items)
        self._blocks.append(f"<ul>{lis}</ul>")
        return self

    def callout(self, text: str, level: Severity = "info", *, title: str | None = None) -> Section:
        """Add a highlighted box: ``info``, ``ok``, ``warning`` or ``error``."""
        if level not in SEVERITIES:
            raise ValueError(f"callout level must be one of {SEVERITIES}, not {level!r}")
        head = f"<strong>{_esc(title)}</strong> " if title else ""
        self._blocks.append(
            f'<div class="callout sev-{level}" role="note">{head}{_esc(text)}</div>'
        )
        return self

    def figure(self, fig: Any, *, caption: str | None = None, style: bool = True) -> Section:
        """Add a plotly figure (plotly.js is inlined once per page by :meth:`Page.render`).

        Args:
            fig: A ``plotly.graph_objects.Figure``.
            caption: A line under the figure.
            style: Apply the page look (white template, page font, a default height).
        """
        self._blocks.append(self._figure_html(fig, caption, style))
        return self

    def figures(
        self,
        figs: Sequence[Any],
        *,
        captions: Sequence[str | None] | None = None,
        style: bool = True,
    ) -> Section:
        """Add several plotly figures side by side in a responsive grid."""
        caps = list(captions) if captions is not None else [None] * len(figs)
        items = "".join(
            self._figure_html(fig, cap, style) for fig, cap in zip(figs, caps, strict=True)
        )
        if items:
            self._blocks.append(f'<div class="fig-grid">{items}</div>')
        return self

    def raw_html(self, markup: str) -> Section:
        """Add trusted markup as is (never pass user data here; it is not escaped)."""
        self._blocks.append(markup)
        return self

    def _figure_html(self, fig: Any, caption: str | None, style: bool) -> str:
        if style:
            style_figure(fig)
        div = fig.to_html(full_html=False, include_plotlyjs=False, config=PLOTLY_CONFIG)
        self._page.n_figures += 1
        cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
        return f'<figure class="fig">{div}{cap}</figure>'

    def render(self) -> str:
        """The section as an HTML fragment."""
        return (
            f'<section id="{self.anchor}"><h2>{_esc(self.title)}</h2>'
            f"{''.join(self._blocks)}</section>"
        )


@functools.cache
def _template() -> Any:
    # A small template built once: plotly's own templates cost ~40 ms and ~6 kB per figure.
    import plotly.graph_objects as go

    axis = {
        "gridcolor": "#eef0f3",
        "linecolor": "#d1d5db",
        "zerolinecolor": "#d1d5db",
        "ticks": "",
        "automargin": True,
        "title": {"standoff": 8},
    }
    return go.layout.Template(
        layout={
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "colorway": list(COLORWAY),
            "xaxis": axis,
            "yaxis": axis,
            "hoverlabel": {"font": {"family": _FONT}},
            "legend": {"bgcolor": "rgba(255,255,255,0)"},
        }
    )


def style_figure(fig: Any, *, height: int | None = None) -> Any:
    """Give a plotly figure the page look: white background, page font, compact margins."""
    layout = fig.layout
    fig.update_layout(
        template=_template(),
        font={"family": _FONT, "size": 12, "color": "#1f2937"},
        height=height or layout.height or DEFAULT_FIGURE_HEIGHT,
        margin={"l": 56, "r": 24, "t": 48 if layout.title.text else 24, "b": 48},
        title={"x": 0.01, "xanchor": "left", "font": {"size": 14}},
    )
    return fig


class Page:
    """An HTML report page: a title, sections in order, and a footer.

    Args:
        title: The page title (also the browser tab title).
        subtitle: A line under the title (data source, model version, ...).
    """

    def __init__(self, title: str, subtitle: str | None = None) -> None:
        self.title = title
        self.subtitle = subtitle
        self.sections: list[Section] = []
        self.n_figures = 0

    def section(self, title: str, intro: str | None = None) -> Section:
        """Start a new section (listed in the table of contents) and return it."""
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
        taken = {s.anchor for s in self.sections}
        anchor, n = slug, 2
        while anchor in taken:
            anchor, n = f"{slug}-{n}", n + 1
        section = Section(self, title, anchor, intro)
        self.sections.append(section)
        return section

    def render(self, *, generated_at: datetime | None = None) -> str:
        """The whole page as one self-contained HTML document."""
        when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
        plotly_js = ""
        if self.n_figures:
            from plotly.offline import get_plotlyjs

            plotly_js = f'<script type="text/javascript" id="plotlyjs">{get_plotlyjs()}</script>'
        toc = "".join(f'<li><a href="#{s.anchor}">{_esc(s.title)}</a></li>' for s in self.sections)
        subtitle = f'<p class="subtitle">{_esc(self.subtitle)}</p>' if self.subtitle else ""
        body = "".join(s.render() for s in self.sections)
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="modelcycle {_esc(__version__)}">'
            f"<title>{_esc(self.title)}</title><style>{CSS}</style>{plotly_js}</head>"
            f'<body><header class="top"><div class="wrap"><h1>{_esc(self.title)}</h1>'
            f"{subtitle}</div></header>"
            f'<div class="wrap layout"><nav class="toc" aria-label="Contents">'
            f'<div class="toc-title">Contents</div><ol>{toc}</ol></nav>'
            f"<main>{body}</main></div>"
            f'<footer><div class="wrap">Generated by modelcycle {_esc(__version__)} '
            f"on {_esc(when)}</div></footer></body></html>\n"
        )

    def write(self, path: Path | str) -> Path:
        """Render the page to ``path`` and return the path.

        Parent folders are created; the page goes through a temporary file in the same folder
        and is renamed into place, so a reader (a browser reloading a report that ``watch``
        rewrites) sees the old page or the new one, never a partial one.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            temporary.write_text(self.render(), encoding="utf-8")
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return target


CSS = (
    """
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;--accent:#2563eb;
--ok:#15803d;--ok-bg:#ecfdf3;--info:#1d4ed8;--info-bg:#eff6ff;--warning:#b45309;
--warning-bg:#fffbeb;--error:#b91c1c;--error-bg:#fef2f2}
*{box-sizing:border-box}
html{scroll-behavior:smooth}
body{margin:0;font-family:"""
    + _FONT
    + """;font-size:15px;line-height:1.55;color:var(--fg);
background:var(--bg)}
.wrap{max-width:1320px;margin:0 auto;padding:0 24px}
header.top{background:#111827;color:#f9fafb;padding:28px 0 22px}
header.top h1{margin:0;font-size:26px;font-weight:650;letter-spacing:-.01em}
header.top .subtitle{margin:6px 0 0;color:#cbd5e1}
.layout{display:grid;grid-template-columns:210px minmax(0,1fr);gap:28px;padding-top:24px}
nav.toc{position:sticky;top:16px;align-self:start;font-size:14px}
.toc-title{font-weight:600;text-transform:uppercase;font-size:12px;letter-spacing:.06em;
color:var(--muted);margin-bottom:6px}
nav.toc ol{list-style:none;margin:0;padding:0;border-left:2px solid var(--line)}
nav.toc li a{display:block;padding:4px 12px;color:var(--fg);text-decoration:none;
margin-left:-2px;border-left:2px solid transparent}
nav.toc li a:hover{color:var(--accent);border-left-color:var(--accent)}
main{min-width:0}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;
padding:20px 24px;margin-bottom:22px;box-shadow:0 1px 2px rgba(0,0,0,.03)}
section h2{margin:0 0 12px;font-size:20px;font-weight:650}
section h3{margin:18px 0 8px;font-size:16px;font-weight:600}
p{margin:8px 0}
ul{margin:8px 0;padding-left:22px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:12px;
margin:8px 0 14px}
.card{border:1px solid var(--line);border-left:4px solid var(--accent);border-radius:10px;
padding:10px 14px;background:#fbfcfe}
.card-label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.card-value{font-size:22px;font-weight:650;font-variant-numeric:tabular-nums;
white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.card-note{font-size:12px;color:var(--muted)}
.card.sev-ok{border-left-color:var(--ok)}.card.sev-info{border-left-color:var(--info)}
.card.sev-warning{border-left-color:#f59e0b}.card.sev-error{border-left-color:var(--error)}
.table-wrap{overflow-x:auto;max-height:70vh;overflow-y:auto;border:1px solid var(--line);
border-radius:8px;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th{position:sticky;top:0;background:#f3f4f6;text-align:left;font-weight:600;
border-bottom:1px solid var(--line);padding:7px 10px;white-space:nowrap}
td{padding:6px 10px;border-bottom:1px solid #f0f1f3;vertical-align:top}
tbody tr:nth-child(even) td{background:#fafbfc}
tbody tr:hover td{background:#f1f5f9}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.sev-ok,tbody tr td.sev-ok{background:var(--ok-bg);color:var(--ok)}
td.sev-info,tbody tr td.sev-info{background:var(--info-bg);color:var(--info)}
td.sev-warning,tbody tr td.sev-warning{background:var(--warning-bg);color:var(--warning);
font-weight:600}
td.sev-error,tbody tr td.sev-error{background:var(--error-bg);color:var(--error);font-weight:600}
.caption,figcaption{font-size:13px;color:var(--muted);margin:4px 0 10px}
.callout{border-radius:8px;padding:10px 14px;margin:10px 0;border:1px solid}
.callout.sev-ok{background:var(--ok-bg);border-color:#bbf7d0;color:#14532d}
.callout.sev-info{background:var(--info-bg);border-color:#bfdbfe;color:#1e3a8a}
.callout.sev-warning{background:var(--warning-bg);border-color:#fde68a;color:#78350f}
.callout.sev-error{background:var(--error-bg);border-color:#fecaca;color:#7f1d1d}
figure.fig{margin:8px 0 14px;min-width:0}
.fig-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px 18px;
align-items:start}
.fig-grid figure.fig{border:1px solid var(--line);border-radius:8px;padding:4px;margin:0}
footer{color:var(--muted);font-size:13px;padding:8px 0 28px}
@media (max-width:900px){.layout{grid-template-columns:1fr}nav.toc{position:static}
.fig-grid{grid-template-columns:1fr}}
@media print{nav.toc{display:none}.layout{grid-template-columns:1fr}
section{break-inside:avoid;box-shadow:none}}
"""
)
