"""The monitoring report page: verdict, drift table order, one chart per feature, offline, atomic."""

from __future__ import annotations

import copy
import re
from html import escape as html_escape
from pathlib import Path
from typing import Any

import pytest

from modelcycle.monitoring.report import (
    bin_labels,
    drift_order,
    report_page,
    utc_text,
    write_report,
)
from monitoring_fixtures import sample_history, sample_report


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return sample_report()


def section(html: str, anchor: str) -> str:
    start = html.index(f'<section id="{anchor}">')
    return html[start : html.index("</section>", start)]


def first_cells(html: str) -> list[str]:
    """The first cell of every body row of the first table in ``html``."""
    body = html[html.index("<tbody>") : html.index("</tbody>")]
    return re.findall(r"<tr><td[^>]*>([^<]*)</td>", body)


def test_report_leads_with_the_verdict_and_the_worst_drift(
    report: dict[str, Any], tmp_path: Path
) -> None:
    path = write_report(report, tmp_path / "reports" / "run.html", history=sample_history())
    html = path.read_text(encoding="utf-8")
    drift = report["drift"]
    assert "area" in drift["drifted"]

    assert "rent v1: monitoring, last 1h" in html
    verdict = section(html, "verdict")
    assert report["verdict"] == "degraded"
    assert '<div class="card sev-warning"><div class="card-label">verdict</div>' in verdict
    assert "Degraded." in verdict
    assert all(html_escape(reason) in verdict for reason in report["reasons"])

    rows = first_cells(section(html, "drift"))
    assert len(rows) == len(drift["features"])
    assert rows[0] in drift["drifted"]
    assert rows[0] == "area"  # the largest PSI of the drifted features
    verdicts = {f["name"]: f["verdict"] for f in drift["features"]}
    ranks = [("drift", "warning", "ok").index(verdicts[name]) for name in rows]
    assert ranks == sorted(ranks)  # drift, then warning, then ok

    alerts = section(html, "alerts")
    assert alerts.count('class="sev-error"') == len(drift["drifted"])  # one critical per feature
    assert "28.6%" in section(html, "drift")  # the dataset drift share
    change = report["performance"]["realised_change"]
    assert f"{change * 100:+.1f}%" in verdict  # the realised metric's change, not "—"


def test_one_chart_per_feature_plus_prediction_and_target(report: dict[str, Any]) -> None:
    html = report_page(report).render()
    distributions = section(html, "distributions")
    features = report["histograms"]["features"]
    assert distributions.count('<figure class="fig">') == len(features) + 2
    for name in [*features, "prediction", "target"]:
        assert f'"title":{{"text":"{name}"' in distributions, name
    # both series on the same bins, numeric bins labelled from the edges
    assert '"name":"reference"' in distributions
    assert '"name":"current"' in distributions
    assert "≤ " in distributions
    assert "> " in distributions


def test_the_page_is_self_contained(report: dict[str, Any], tmp_path: Path) -> None:
    page = report_page(report, history=sample_history())
    html = write_report(report, tmp_path / "run.html", history=sample_history()).read_text()
    assert page.n_figures > len(report["histograms"]["features"])
    assert html.count('id="plotlyjs"') == 1  # plotly.js inlined once
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert not re.search(r"<link[^>]*\bhref=[\"']https?:", html)
    assert "Across runs" in html
    for anchor in ("traffic-errors-and-ood", "performance", "across-runs", "domain-classifier"):
        assert 'class="js-plotly-plot"' not in section(html, anchor)  # plotly draws them later
        assert f'<section id="{anchor}">' in html


def test_drift_order_puts_drift_then_warning_then_ok_by_psi() -> None:
    features = [
        {"name": "a", "verdict": "ok", "statistics": {"psi": 0.09}},
        {"name": "b", "verdict": "drift", "statistics": {"psi": 0.3}},
        {"name": "c", "verdict": "warning", "statistics": {"psi": 0.12}},
        {"name": "d", "verdict": "drift", "statistics": {"psi": 0.9}},
        {"name": "e", "verdict": "ok", "statistics": {}},
        {"name": "f", "verdict": "ok", "statistics": {"psi": 0.01}},
    ]
    assert [f["name"] for f in drift_order(features)] == ["d", "b", "c", "a", "f", "e"]


def test_bin_labels() -> None:
    numeric = {"kind": "numeric", "edges": [1.0, 2.5, 1_000.0]}
    assert bin_labels(numeric) == ["≤ 1", "(1, 2.5]", "(2.5, 1,000]", "> 1,000"]
    assert bin_labels({"kind": "numeric", "edges": []}) == ["all values"]
    close = bin_labels({"kind": "numeric", "edges": [1.00001, 1.00002]})
    assert len(set(close)) == 3  # precise enough to tell the edges apart
    categorical = {"kind": "categorical", "categories": ["north", "south", "other"]}
    assert bin_labels(categorical) == ["north", "south", "other"]


def test_utc_text() -> None:
    assert utc_text("2026-11-27T13:00:00+01:00") == "2026-11-27 12:00:00"
    assert utc_text("2026-11-27T12:00:00") == "2026-11-27 12:00:00"
    assert utc_text(None) is None


def test_written_atomically_replacing_the_old_page(report: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "deep" / "folder" / "run.html"
    write_report(report, target)
    first = target.read_text()
    healthy = copy.deepcopy(report)
    healthy.update(verdict="healthy", reasons=[], alerts=[])
    assert write_report(healthy, target) == target
    assert target.read_text() != first
    assert "Healthy." in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["run.html"]  # no temporary file left


def test_a_thin_run_still_renders(report: dict[str, Any]) -> None:
    thin = copy.deepcopy(report)
    thin.update(
        verdict="failing",
        reasons=["the error rate is 40% (limit 5%)"],
        drift=None,
        drift_skipped="only 12 rows in the window (drift needs 200)",
        domain=None,
        timeline=[],
        histograms={"features": {}, "prediction": None, "target": None},
        alerts=[],
    )
    thin["performance"].update(labelled=0, label_coverage=0.0, realised=None, change=None)
    thin["window"].update(start=None, end=None, last=500, description="last 500 rows")
    html = report_page(thin).render()
    assert '<div class="card sev-error"><div class="card-label">verdict</div>' in html
    assert "only 12 rows in the window (drift needs 200)" in html
    assert "No labels for this window yet" in html
    assert "No alert fired" in html
    assert "Domain classifier" not in html
    assert "Across runs" not in html  # no history given
    assert "first row → now UTC" in html
