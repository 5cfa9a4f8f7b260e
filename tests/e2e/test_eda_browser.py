"""The EDA report in a real headless Chromium: no console errors, every chart drawn, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelcycle.data.eda import EdaSummary, explore
from modelcycle.data.schema import FeatureSchema

pytestmark = pytest.mark.browser


def synthetic(n: int, task: str, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = rng.gamma(4.0, 20.0, n)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "area": area,
            "rooms": rng.integers(1, 6, n),
            "age": rng.exponential(30.0, n),
            "lat": rng.normal(40.4, 0.05, n),
            "city": rng.choice(["Madrid", "Barcelona", "Valencia", "Sevilla"], n),
            "elevator": rng.random(n) < 0.6,
            "energy": rng.choice(list("ABCDEFG"), n),
            "listed": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D"),
            "rent": 300 + 9 * area + rng.normal(0, 120, n),
        }
    )
    frame.loc[rng.random(n) < 0.08, "age"] = np.nan
    if task == "classification":
        frame["rent"] = np.where(frame["rent"] > frame["rent"].quantile(0.88), "high", "normal")
    return frame


def build(tmp_path: Path, task: str) -> EdaSummary:
    frame = synthetic(1500, task)
    schema = FeatureSchema.infer(frame, target="rent", id_column="id", time_column="listed")
    return explore(frame, schema, out=tmp_path / f"{task}.html", title=f"EDA {task}")


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_report_renders_in_chromium(
    open_page: Any, drawn_charts: Any, tmp_path: Path, task: str
) -> None:
    summary = build(tmp_path, task)
    requests: list[str] = []
    page, errors = open_page(summary.path.resolve().as_uri())
    page.on("request", lambda req: requests.append(req.url))
    n_charts = page.locator(".js-plotly-plot").count()
    assert n_charts == summary.n_figures > 8
    assert drawn_charts(page, ".point, .hm, image") == n_charts
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []

    # the overview numbers are visible text
    overview = page.locator("section#overview")
    assert overview.is_visible()
    cards = overview.locator(".card").all_inner_texts()
    assert any("ROWS" in c.upper() and "1,500" in c for c in cards)
    assert any("COLUMNS" in c.upper() and "10" in c for c in cards)
    assert page.get_by_text("Duplicates and anomalies", exact=True).first.is_visible()
    if task == "classification":
        assert summary.minority_share is not None
        assert page.locator("section#target").get_by_text("Imbalanced classes.").is_visible()
        shown = overview.locator(".card", has_text="minority class").inner_text()
        assert f"{summary.minority_share * 100:.1f}%" in shown
    else:
        assert page.locator("section#target .card", has_text="mean").first.is_visible()

    # the table of contents jumps to sections
    page.locator("nav.toc a", has_text="Outliers").click()
    assert page.locator("section#outliers").is_visible()

    if task == "regression":
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(tmp_path / "eda.png"))
        assert (tmp_path / "eda.png").stat().st_size > 10_000
