"""The monitoring report and the live /dashboard in a real headless Chromium.

No console errors, every plotly chart drawn as SVG, nothing fetched from another host; the
dashboard of a server with no run and no deployment loads its empty state just as cleanly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelcycle.config.spec import DeploymentSpec
from modelcycle.deployment import commands
from modelcycle.monitoring.report import report_page, write_report
from modelcycle.store import make_engine
from modelcycle.store.alerts import open_alert
from modelcycle.store.monitoring import save_run
from monitoring_fixtures import monitoring_row, sample_history, sample_report

pytestmark = pytest.mark.browser

CHARTS = 4
"""Charts of the dashboard: OOD rate, metric, drift share, deployment weight."""


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return sample_report()


def foreign(requests: list[str], *allowed: str) -> list[str]:
    return [url for url in requests if not url.startswith(allowed)]


def test_report_renders_offline_in_chromium(
    open_page: Any, drawn_charts: Any, tmp_path: Path, report: dict[str, Any]
) -> None:
    history = sample_history()
    expected = report_page(report, history=history).n_figures
    path = write_report(report, tmp_path / "monitoring.html", history=history)
    requests: list[str] = []
    page, errors = open_page(path.resolve().as_uri())
    page.on("request", lambda req: requests.append(req.url))
    assert page.locator(".js-plotly-plot").count() == expected
    assert drawn_charts(page, also=".trace") == expected
    assert errors == []
    assert foreign(requests, "file:", "data:", "blob:") == []

    assert page.locator("section#verdict .card.sev-warning").first.inner_text().endswith("degraded")
    first = page.locator("section#drift tbody tr").first.locator("td").first
    assert first.inner_text() == "area"
    features = len(report["histograms"]["features"])
    assert page.locator("section#distributions .js-plotly-plot").count() == features + 2


@pytest.mark.slow
def test_dashboard_live_empty_then_monitored(
    project_copy: Path,
    start_server: Callable[..., Any],
    registers: Callable[..., int],
    open_page: Any,
    drawn_charts: Any,
    report: dict[str, Any],
) -> None:
    server = start_server(project_copy)
    requests: list[str] = []

    # a fresh server: no monitoring run, no deployment, no alert
    page, errors = open_page(f"{server.url}/dashboard")
    page.on("request", lambda req: requests.append(req.url))
    page.locator("#latest-body .empty").wait_for(timeout=15_000)
    assert "No monitoring run yet" in page.locator("#latest-body").inner_text()
    assert "No deployment yet" in page.locator("#deployment-body").inner_text()
    assert page.locator("#alerts-body").inner_text() == "No open alerts."
    assert page.locator(".js-plotly-plot").count() == 0
    assert page.locator("#charts p.empty:visible").count() == CHARTS
    assert page.evaluate("() => typeof Plotly") == "object"  # served by the server, not a CDN
    assert page.locator(".traffic").inner_text() == "stable v1 · 100%"
    assert errors == []

    # runs, an alert and a canary rollout in the server's store
    engine = make_engine(server.database_url)
    with engine.begin() as conn:
        for hours, ood in ((2, 0.01), (1, 0.02), (0, report["ood"]["rate"])):
            row = monitoring_row(report)
            row.update(created_at=row["created_at"] - timedelta(hours=hours), ood_rate=ood)
            save_run(conn, row)
        open_alert(
            conn, "feature_drift", "rent", "1", "critical", "area drifted", None, "rent:area"
        )
    version = registers(project_copy)
    plan = commands.plan_from_spec(DeploymentSpec(), canary_weight=10.0)
    commands.deploy(
        engine, "rent", str(version), "canary", plan, tracking_uri=server.tracking_uri, actor="t"
    )
    engine.dispose()

    page.reload(wait_until="load")
    page.wait_for_function(
        f"() => document.querySelectorAll('.js-plotly-plot').length === {CHARTS}",
        timeout=15_000,
    )
    assert drawn_charts(page, also=".trace") == CHARTS
    assert errors == []
    assert foreign(requests, server.url) == []
    overview = page.locator("#overview-body").inner_text()
    assert "degraded" in overview
    assert "canary" in overview
    assert page.locator(".traffic").inner_text().split("\n") == [
        "stable v1 · 90%",
        f"canary v{version} · 10%",
    ]
    assert "area drifted" in page.locator("#alerts-body").inner_text()
    first = page.locator("#drift-body tbody tr").first.locator("td")
    assert first.first.inner_text() == "area"
    assert first.nth(2).inner_text() == "drift"

    data = httpx.get(f"{server.url}/dashboard/data", timeout=10).json()
    assert data["deployment"]["candidate_version"] == str(version)
    assert [t["arm"] for t in data["traffic"]] == ["stable", "canary"]
    assert len(data["runs"]) == 3
    assert data["latest"]["drift_order"][0] == "area"
    assert data["serving"]["ref"] == "rent@champion"
    asset = httpx.get(f"{server.url}/dashboard/plotly.min.js", timeout=10)
    assert asset.status_code == 200
    assert "max-age=31536000" in asset.headers["cache-control"]
    assert asset.headers["content-type"].startswith("text/javascript")
