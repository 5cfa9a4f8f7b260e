"""The offline HTML page builder: escaping, one inlined plotly.js, no network references."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from modelcycle import __version__
from modelcycle.htmlreport import (
    Card,
    Cell,
    Page,
    format_bytes,
    format_percent,
    format_value,
)

EVIL = "<script>alert('x')</script>"
EVIL_ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"


def _figure(n: int = 3) -> go.Figure:
    return go.Figure(go.Bar(x=list(range(n)), y=list(range(n))))


def _plotly_header() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())[:120]


def test_every_text_is_escaped() -> None:
    page = Page(EVIL, subtitle=EVIL)
    section = page.section(EVIL, intro=EVIL)
    section.cards({EVIL: EVIL}).cards([Card(EVIL, 1, note=EVIL)])
    section.paragraph(EVIL).heading(EVIL).bullets([EVIL]).callout(EVIL, "warning", title=EVIL)
    section.table(pd.DataFrame({EVIL: [EVIL, 1]}))
    section.table([[Cell(EVIL, "error", title=EVIL)]], columns=[EVIL], caption=EVIL)
    html = page.render()
    assert EVIL not in html
    assert "<script>" not in html
    assert html.count(EVIL_ESCAPED) >= 15


def test_plotly_js_is_inlined_exactly_once() -> None:
    page = Page("charts")
    page.section("a").figure(_figure(), caption="first")
    page.section("b").figures([_figure(), _figure(4)], captions=["x", None])
    html = page.render()
    assert page.n_figures == 3
    assert html.count(_plotly_header()) == 1
    assert html.count('id="plotlyjs"') == 1
    assert html.count('class="plotly-graph-div"') == 3
    # the bundle comes before the first figure's script
    assert html.index('id="plotlyjs"') < html.index("plotly-graph-div")
    assert '"displaylogo": false' in html
    assert '"responsive": true' in html


def test_page_without_figures_carries_no_plotly_js() -> None:
    page = Page("plain")
    page.section("text").paragraph("no charts here")
    html = page.render()
    assert page.n_figures == 0
    assert _plotly_header() not in html
    assert "plotlyjs" not in html


def test_page_is_offline() -> None:
    page = Page("offline")
    page.section("chart").figure(_figure())
    html = page.render()
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", html, flags=re.IGNORECASE)
    assert tags, "expected at least the plotly scripts"
    for tag in tags:
        assert not re.search(r"(?:src|href)\s*=", tag, flags=re.IGNORECASE), tag
    assert not re.search(r"@import|url\(\s*['\"]?https?:", html[: html.index("</style>")])
    assert "cdn.plot.ly" not in html.split('id="plotlyjs"')[0]


def test_table_from_frame_and_rows_with_severity() -> None:
    frame = pd.DataFrame({"name": ["a", "b", "c"], "share": [0.01, 0.4, 0.9]})
    page = Page("t")
    page.section("tables").table(
        frame,
        severity={"share": lambda v: "error" if v > 0.5 else "warning" if v > 0.1 else None},
        max_rows=2,
        caption="shares",
    )
    html = page.render()
    assert '<td class="num sev-warning">0.4</td>' in html
    assert "0.9" not in html  # third row cut by max_rows
    assert "Showing 2 of 3 rows." in html
    assert "shares" in html

    page = Page("rows")
    page.section("rows").table([["x", Cell(5, "ok", title="fine")]], columns=["k", "v"])
    assert '<td class="num sev-ok" title="fine">5</td>' in page.render()
    with pytest.raises(ValueError, match="columns"):
        Page("x").section("y").table([[1]])


def test_table_with_index() -> None:
    frame = pd.DataFrame({"v": [1.5]}, index=pd.Index(["row1"], name="idx"))
    page = Page("t")
    page.section("s").table(frame, index=True)
    html = page.render()
    assert "<th>idx</th>" in html
    assert "row1" in html


def test_sections_get_unique_anchors_and_a_table_of_contents() -> None:
    page = Page("toc")
    first = page.section("Missing values")
    second = page.section("Missing values")
    other = page.section("???")
    assert (first.anchor, second.anchor, other.anchor) == (
        "missing-values",
        "missing-values-2",
        "section",
    )
    html = page.render()
    for anchor in ("missing-values", "missing-values-2", "section"):
        assert f'href="#{anchor}"' in html
        assert f'id="{anchor}"' in html


def test_footer_names_version_and_time(tmp_path: Path) -> None:
    page = Page("footer")
    page.section("s").callout("ok", "ok")
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    html = page.render(generated_at=when)
    assert f"modelcycle {__version__}" in html
    assert "2025-01-02 03:04:05 UTC" in html
    path = page.write(tmp_path / "deep" / "er" / "page.html")
    assert path.is_file()
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_callout_rejects_unknown_level() -> None:
    with pytest.raises(ValueError, match="level"):
        Page("x").section("y").callout("z", "fatal")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        (float("nan"), "—"),
        (pd.NA, "—"),
        (1234567, "1,234,567"),
        (3.0, "3"),
        (1234.567, "1,234.6"),
        (0.123456, "0.1235"),
        (0.0000123, "1.23e-05"),
        (float("inf"), "∞"),
        (True, "yes"),
        ("text", "text"),
    ],
)
def test_format_value(value: object, shown: str) -> None:
    assert format_value(value) == shown


def test_format_percent_and_bytes() -> None:
    assert format_percent(0.1234) == "12.3%"
    assert format_percent(0.0) == "0.0%"
    assert format_percent(0.00001) == "<0.1%"
    assert format_percent(None) == "—"
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 1024**3) == "3.0 GiB"
