"""The live dashboard: one page on the served model's deployment, monitoring runs and alerts.

Routes:

- ``GET /dashboard``: the page. Inline CSS (the HTML reports' look) and JavaScript, no build step;
  it fetches ``/dashboard/data`` at once and every :data:`REFRESH_SECONDS` seconds and draws the
  deployment state and traffic split, the latest run's verdict and drift table, the open alerts
  and plotly charts: OOD rate, deciding metric and dataset drift share across runs, and the
  candidate's traffic weight over the deployment history. Every part has an empty state (no run
  yet, no deployment).
- ``GET /dashboard/data``: the same as JSON (see :func:`dashboard_data`).
- ``GET /dashboard/plotly.min.js``: plotly.js from the installed ``plotly`` package, cached for a
  year (the page asks for it with plotly's version in the URL). No CDN and no font download: the
  page works on an offline network.

Access: like ``/models``, ``/health`` and ``/metrics``, the dashboard is read-only and open; it
asks for no API key even when ``MODELCYCLE_PREDICT_API_KEYS`` is set (a browser cannot send a
bearer key when it opens a page). It shows aggregates (drift statistics, rates, versions, alert
messages), never logged rows or predictions. Put the server behind an authenticating proxy if
those must stay private.

Store reads run in FastAPI's worker threads (synchronous routes), never on the event loop.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy.engine import Engine

from modelcycle.deployment.state import DeploymentState, Event
from modelcycle.serving.runtime import ApiError, JSONBytes, Serving
from modelcycle.store.engine import StoreError

REFRESH_SECONDS = 10
"""How often the page fetches the data again."""
MAX_RUNS = 100
"""Runs charted by default (the newest)."""
MAX_EVENTS = 50
"""Deployment events returned (the newest), from which the weight chart is drawn."""
MAX_ALERTS = 100
"""Open alerts returned (the newest)."""
WEIGHT_RESETS = frozenset({"promote", "rollback", "abort", "auto_rollback", "failed"})
"""Deployment actions after which no candidate takes traffic."""
ASSET_CACHE = "public, max-age=31536000, immutable"

router = APIRouter(prefix="/dashboard", tags=["dashboard"])


@router.get("", include_in_schema=False)
def page() -> HTMLResponse:
    """The dashboard page (static: every value comes from ``/dashboard/data``)."""
    return HTMLResponse(_page_html(), headers={"Cache-Control": "no-cache"})


@router.get("/data", summary="The dashboard's data: deployment, monitoring runs, open alerts.")
def data(
    request: Request,
    runs: Annotated[int, Query(ge=1, le=1000, description="Runs to chart (newest).")] = MAX_RUNS,
) -> JSONBytes:
    """Deployment state and traffic split, the latest run's report, recent runs and alerts."""
    serving: Serving = request.app.state.serving
    if serving.engine is None:
        raise ApiError(503, "the server is still starting", "retry shortly")
    try:
        body = dashboard_data(serving.engine, serving.model_name, runs=runs)
    except StoreError as err:
        raise ApiError(503, err.message, err.hint) from None
    body["serving"] = serving_info(serving)
    if not body["traffic"] and serving.stable is not None:  # no deployment: the alias answers
        body["traffic"] = [{"arm": "stable", "version": serving.stable.version, "weight": 100.0}]
    return JSONBytes(body)


@router.get("/plotly.min.js", include_in_schema=False)
def plotly_js() -> FileResponse:
    """plotly.js as bundled in the installed ``plotly`` package, cached for a year."""
    return FileResponse(
        plotly_js_path(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": ASSET_CACHE},
    )


# ---------------------------------------------------------------------------- data


def dashboard_data(engine: Engine, name: str, *, runs: int = MAX_RUNS) -> dict[str, Any]:
    """Everything the page shows about model ``name``, read in one connection.

    Returns:
        ``model``; ``generated_at``; ``deployment`` (:meth:`DeploymentState.as_dict`, ``None``
        before the first deployment); ``traffic`` (:func:`traffic`); ``weights``
        (:func:`weights`); ``events`` (the newest :data:`MAX_EVENTS` deployment events, oldest
        first); ``latest`` (the newest run's summary columns with its ``report`` and a
        ``drift_order``: feature names the worst first; ``None`` before the first run); ``runs``
        (summaries of the newest ``runs`` runs, oldest first) and ``alerts`` (open and
        acknowledged alerts, newest first).

    Raises:
        StoreError: The store cannot be read.
    """
    from modelcycle.deployment import state as deployment
    from modelcycle.store.alerts import list_alerts
    from modelcycle.store.engine import store_errors
    from modelcycle.store.monitoring import latest_run, recent_runs

    with store_errors(engine, "reading the dashboard's data"), engine.connect() as conn:
        state = deployment.load(conn, name)
        events = deployment.history(conn, name, MAX_EVENTS)
        latest = latest_run(conn, name)
        summaries = recent_runs(conn, name, limit=runs)
        alerts = list_alerts(conn, name, status="active", limit=MAX_ALERTS)
    deployed = state.stable_version is not None
    return {
        "model": name,
        "generated_at": datetime.now(UTC).isoformat(),
        "deployment": state.as_dict() if deployed else None,
        "traffic": traffic(state),
        "weights": weights(events, state) if deployed else [],
        "events": [event.as_dict() for event in events],
        "latest": _with_drift_order(latest),
        "runs": summaries,
        "alerts": alerts,
    }


def traffic(state: DeploymentState) -> list[dict[str, Any]]:
    """Who answers what share of requests: one ``{arm, version, weight}`` per serving arm.

    A shadow candidate gets weight 0 (it predicts every request but answers none); an empty list
    before the first deployment.
    """
    stable = state.stable_version
    if stable is None:
        return []
    if not state.active:
        return [{"arm": "stable", "version": stable, "weight": 100.0}]
    candidate = state.candidate_version
    if state.status == "shadow":
        arms, weight = ("stable", "shadow"), 0.0
    else:
        arms = ("blue", "green") if state.status == "blue_green" else ("stable", "canary")
        weight = state.weight
    return [
        {"arm": arms[0], "version": stable, "weight": 100.0 - weight},
        {"arm": arms[1], "version": candidate, "weight": weight},
    ]


def weights(events: list[Event], state: DeploymentState) -> list[dict[str, Any]]:
    """The candidate's traffic weight after each event, then now: a step chart's points."""
    points, weight = [], 0.0
    for event in events:
        weight = _weight_after(event, weight)
        points.append({"time": event.as_dict()["time"], "weight": weight, "action": event.action})
    now = datetime.now(UTC).isoformat()
    points.append({"time": now, "weight": state.weight if state.active else 0.0, "action": "now"})
    return points


def _weight_after(event: Event, previous: float) -> float:
    if event.action in WEIGHT_RESETS:
        return 0.0
    given = (event.details or {}).get("weight")
    if isinstance(given, int | float):
        return float(given)
    return 0.0 if event.action == "deploy" else previous  # a deploy without weight is direct


def _with_drift_order(run: dict[str, Any] | None) -> dict[str, Any] | None:
    from modelcycle.monitoring.report import drift_order

    if run is None:
        return None
    drift = (run.get("report") or {}).get("drift") or {}
    order = [f.get("name") for f in drift_order(drift.get("features") or [])]
    return {**run, "drift_order": order}


def serving_info(serving: Serving) -> dict[str, Any]:
    """What this server has loaded: its model reference, readiness and versions by arm."""
    table = serving.table
    loaded = [] if table is None else table.loaded()
    return {
        "ref": serving.ref,
        "ready": serving.ready,
        "loaded": [{"version": p.version, "arm": arm} for p, arm in loaded],
    }


# ---------------------------------------------------------------------------- assets


@functools.cache
def plotly_js_path() -> Path:
    """The ``plotly.min.js`` bundled in the installed plotly package (found without importing)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ApiError(500, "plotly is not installed", "reinstall modelcycle")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise ApiError(500, f"plotly.js is missing from the plotly package ({path})")
    return path


@functools.cache
def _page_html() -> str:
    from modelcycle.htmlreport import CSS

    settings = {"refreshMs": REFRESH_SECONDS * 1000, "dataUrl": "dashboard/data"}
    return (
        _PAGE.replace("/*CSS*/", CSS + _DASHBOARD_CSS)
        .replace("PLOTLY_VERSION", version("plotly"))
        .replace("REFRESH_SECONDS", str(REFRESH_SECONDS))
        .replace("/*SETTINGS*/null", json.dumps(settings))
        .replace("/*SCRIPT*/", _SCRIPT)
    )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>modelcycle dashboard</title>
<link rel="icon" href="data:,">
<style>/*CSS*/</style>
<script src="dashboard/plotly.min.js?v=PLOTLY_VERSION"></script>
</head><body>
<header class="top"><div class="wrap">
<h1 id="title">Model dashboard</h1>
<p class="subtitle"><span id="status" class="status"></span><span id="subtitle">Loading…</span></p>
</div></header>
<main class="wrap dash">
<div id="problem" class="callout sev-error" role="alert" hidden></div>
<section id="overview"><h2>Overview</h2><div id="overview-body"></div></section>
<section id="deployment"><h2>Deployment</h2><div id="deployment-body"></div></section>
<section id="latest"><h2>Latest monitoring run</h2><div id="latest-body"></div></section>
<section id="alerts"><h2>Open alerts</h2><div id="alerts-body"></div></section>
<section id="charts"><h2>Over time</h2><div class="fig-grid">
<figure class="fig"><div id="chart-ood" class="chart"></div><p class="empty" hidden></p></figure>
<figure class="fig"><div id="chart-metric" class="chart"></div><p class="empty" hidden></p></figure>
<figure class="fig"><div id="chart-drift" class="chart"></div><p class="empty" hidden></p></figure>
<figure class="fig"><div id="chart-weight" class="chart"></div><p class="empty" hidden></p></figure>
</div></section>
<section id="drift"><h2>Drift of the latest run</h2><div id="drift-body"></div></section>
</main>
<footer><div class="wrap">modelcycle dashboard · times in UTC · refreshes every
REFRESH_SECONDS s</div></footer>
<script>const SETTINGS = /*SETTINGS*/null;
/*SCRIPT*/</script>
</body></html>
"""

_DASHBOARD_CSS = """
main.dash{padding-top:24px}
.empty{color:var(--muted);font-style:italic;margin:8px 0}
.status{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:8px;
background:#9ca3af;vertical-align:middle}
.status.ok{background:#22c55e}.status.error{background:#ef4444}
.traffic{display:flex;height:30px;border-radius:8px;overflow:hidden;border:1px solid var(--line);
margin:6px 0 4px;background:#f3f4f6}
.traffic div{display:flex;align-items:center;justify-content:center;color:#fff;font-size:13px;
font-weight:600;white-space:nowrap;overflow:hidden;min-width:0}
.arm-stable,.arm-blue{background:#2563eb}.arm-canary,.arm-green{background:#f59e0b}
.chart{height:300px}
.fig-grid figure.fig{padding:8px}
"""

_SCRIPT = r"""
"use strict";
const SEVERITY = {healthy: "ok", degraded: "warning", failing: "error", ok: "ok",
  warning: "warning", drift: "error", critical: "error", info: "info"};
const COLOR = {ok: "#15803d", warning: "#f59e0b", error: "#b91c1c", info: "#2563eb"};
const PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4"];
const FONT = getComputedStyle(document.body).fontFamily;
let loaded = false;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "style") node.style.cssText = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}
function fill(id, ...children) {
  document.getElementById(id).replaceChildren(...children.flat().filter((c) => c != null));
}
function isNum(v) { return typeof v === "number" && Number.isFinite(v); }
function num(v) {
  if (!isNum(v)) return v === null || v === undefined ? "—" : String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  const size = Math.abs(v);
  if (size >= 100) return v.toLocaleString("en-US", {maximumFractionDigits: 1});
  if (size < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}
function pct(v, digits = 1) { return isNum(v) ? (v * 100).toFixed(digits) + "%" : "—"; }
function points(v) { return isNum(v) ? (v >= 0 ? "+" : "") + (v * 100).toFixed(1) + " pp" : "—"; }
function utc(iso) {
  if (!iso) return null;
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return null;
  return moment.toISOString().slice(0, 19).replace("T", " ");
}
function empty(text) { return el("p", {class: "empty", text}); }
function card(label, value, note, severity) {
  return el("div", {class: "card" + (severity ? " sev-" + severity : "")},
    el("div", {class: "card-label", text: label}),
    el("div", {class: "card-value", text: value, title: value}),
    note ? el("div", {class: "card-note", text: note}) : null);
}
function cards(items) { return el("div", {class: "cards"}, items); }
// a cell is a value, or {text, sev, title}
function table(columns, rows) {
  const head = el("tr", {}, columns.map((c) => el("th", {text: c})));
  const body = rows.map((row) => el("tr", {}, row.map((cell) => {
    const spec = cell !== null && typeof cell === "object" ? cell : {text: cell};
    const numeric = isNum(spec.text);
    const classes = [numeric ? "num" : "", spec.sev ? "sev-" + spec.sev : ""].filter(Boolean);
    return el("td", {class: classes.join(" ") || null, title: spec.title || null,
      text: numeric ? num(spec.text) : (spec.text ?? "—")});
  })));
  return el("div", {class: "table-wrap"}, el("table", {}, el("thead", {}, head),
    el("tbody", {}, body)));
}

function plot(id, traces, layout, emptyText) {
  const div = document.getElementById(id);
  const note = div.nextElementSibling;
  const hasData = traces.some((t) => t.y.some(isNum));
  if (!window.Plotly || !hasData) {
    if (window.Plotly) Plotly.purge(div);
    div.hidden = true;
    note.hidden = false;
    note.textContent = layout.title + ": "
      + (window.Plotly ? emptyText : "charts need plotly.js, which did not load.");
    return;
  }
  div.hidden = false;
  note.hidden = true;
  Plotly.react(div, traces, Object.assign({
    height: 300, margin: {l: 56, r: 20, t: 44, b: 44},
    font: {family: FONT, size: 12, color: "#1f2937"},
    paper_bgcolor: "white", plot_bgcolor: "white", colorway: PALETTE,
    legend: {orientation: "h", x: 1, xanchor: "right", y: 1.15},
    xaxis: {gridcolor: "#eef0f3", automargin: true, title: {text: "time (UTC)"}},
  }, layout, {title: {text: layout.title, x: 0.01, xanchor: "left", font: {size: 14}}}),
  {displaylogo: false, responsive: true});
}
function yAxis(title, format) {
  return {title: {text: title}, tickformat: format, rangemode: "tozero",
    gridcolor: "#eef0f3", automargin: true};
}
function runTrace(runs, name, values) {
  return {x: runs.map((r) => utc(r.created_at)), y: values, name, type: "scatter",
    mode: "lines+markers", marker: {size: 8,
      color: runs.map((r) => COLOR[SEVERITY[r.verdict]] || "#9ca3af")},
    line: {color: "#9ca3af"},
    text: runs.map((r) => r.verdict), hovertemplate: "%{x}<br>%{y}<br>%{text}<extra></extra>"};
}

function renderOverview(d) {
  const latest = d.latest;
  const verdict = latest ? latest.verdict : null;
  const critical = d.alerts.filter((a) => a.severity === "critical").length;
  const dep = d.deployment;
  fill("overview-body", cards([
    card("verdict", verdict || "no run yet",
      latest ? "run at " + utc(latest.created_at) : "monitoring has not run",
      SEVERITY[verdict] || null),
    card("deployment", dep ? dep.status : "none",
      dep ? "stable v" + dep.stable_version : "serving " + (d.serving.ref || "")),
    card("open alerts", String(d.alerts.length), critical ? critical + " critical" : null,
      critical ? "error" : d.alerts.length ? "warning" : "ok"),
    card("runs", String(d.runs.length), d.runs.length ? "charted below" : null),
  ]));
}

function renderDeployment(d) {
  const dep = d.deployment;
  const parts = [];
  if (!dep) {
    parts.push(empty("No deployment yet: the server answers with " + (d.serving.ref || "its model")
      + ". Start one with `modelcycle deploy`."));
  } else {
    const steps = dep.steps && dep.steps.length && dep.strategy === "ramp"
      ? (dep.step + 1) + " of " + dep.steps.length : "—";
    parts.push(cards([
      card("status", dep.status + (dep.paused ? " (paused)" : ""), dep.strategy || null,
        dep.status === "failed" || dep.status === "rolled_back" ? "warning" : null),
      card("stable", dep.stable_version ? "v" + dep.stable_version : "—",
        dep.previous_version ? "previous v" + dep.previous_version : null),
      card("candidate", dep.candidate_version ? "v" + dep.candidate_version : "—"),
      card("candidate weight", num(dep.weight) + "%"),
      card("step", steps, dep.failures ? dep.failures + " failed gate(s)" : null),
    ]));
  }
  if (d.traffic.length) {
    parts.push(el("h3", {text: "Traffic split"}));
    parts.push(el("div", {class: "traffic", role: "img", "aria-label": "traffic split"},
      d.traffic.filter((t) => t.weight > 0).map((t) => el("div", {
        class: "arm-" + t.arm, style: "width:" + t.weight + "%",
        title: t.arm + " v" + t.version + ": " + num(t.weight) + "%",
        text: t.arm + " v" + t.version + " · " + num(t.weight) + "%"}))));
    const shadow = d.traffic.find((t) => t.arm === "shadow");
    if (shadow) parts.push(el("p", {class: "caption",
      text: "shadow v" + shadow.version + " predicts every request but answers none."}));
  }
  if (d.events.length) {
    parts.push(el("h3", {text: "Recent deployment events"}));
    parts.push(table(["time (UTC)", "action", "versions", "actor", "reason"],
      d.events.slice(-8).reverse().map((e) => [utc(e.time), e.action,
        (e.from_version ? "v" + e.from_version : "—") + " → "
        + (e.to_version ? "v" + e.to_version : "—"), e.actor, e.reason])));
  }
  fill("deployment-body", parts);
}

function renderLatest(latest) {
  if (!latest) {
    fill("latest-body", empty("No monitoring run yet. Once monitoring judges a window of "
      + "predictions, its verdict, drift and performance appear here."));
    return;
  }
  const r = latest.report || {};
  const sev = SEVERITY[r.verdict] || "info";
  const reasons = r.reasons || [];
  const window = r.window || {};
  const ops = r.operations || {};
  const perf = r.performance || {};
  const metric = perf.metric;
  const realised = (perf.realised || {})[metric];
  const reference = (perf.reference || {})[metric];
  fill("latest-body",
    el("div", {class: "callout sev-" + sev, role: "note"},
      el("strong", {text: (r.verdict || "unknown") + ". "}),
      reasons.length ? reasons[0] : "Nothing crossed a threshold in this window."),
    reasons.length > 1 ? el("ul", {}, reasons.slice(1).map((t) => el("li", {text: t}))) : null,
    cards([
      card("window", window.description || "—", (utc(window.start) || "…") + " → "
        + (utc(window.end) || "now")),
      card("rows", num(r.n_rows), "v" + r.model_version + " · " + (r.arms || []).join(", ")),
      card("drift share", pct(latest.dataset_drift_share),
        r.drift ? (r.drift.drifted || []).join(", ") || "no feature drifted"
          : r.drift_skipped || null),
      card("OOD rate", pct((r.ood || {}).rate)),
      card("error rate", pct(ops.error_rate, 2)),
      card("p99 latency", isNum(ops.p99_latency_ms) ? num(ops.p99_latency_ms) + " ms" : "—"),
      card((metric || "metric") + " realised", num(realised),
        "reference " + num(reference) + (isNum(perf.change)
          ? " · " + (perf.change >= 0 ? "+" : "") + (perf.change * 100).toFixed(1) + "% worse"
          : "")),
      card("label coverage", pct(perf.label_coverage), num(perf.labelled) + " labelled rows"),
    ]));
}

function renderAlerts(alerts) {
  fill("alerts-body", alerts.length ? table(
    ["severity", "rule", "message", "version", "opened (UTC)", "status"],
    alerts.map((a) => [{text: a.severity, sev: SEVERITY[a.severity]}, a.rule, a.message,
      a.model_version ? "v" + a.model_version : "—", utc(a.opened_at), a.status]))
    : empty("No open alerts."));
}

function renderCharts(d) {
  const runs = d.runs;
  const none = "no monitoring run yet.";
  plot("chart-ood", [runTrace(runs, "OOD rate", runs.map((r) => r.ood_rate))],
    {title: "OOD rate across runs", yaxis: yAxis("share of rows", ".1%"), showlegend: false},
    none);
  const metrics = [...new Set(runs.map((r) => r.metric).filter(Boolean))];
  const traces = metrics.map((m) => Object.assign(
    runTrace(runs, m, runs.map((r) => (r.metric === m ? r.metric_value : null))),
    {line: {}}));
  const report = d.latest ? d.latest.report || {} : {};
  const perf = report.performance || {};
  const reference = (perf.reference || {})[perf.metric];
  if (isNum(reference) && runs.length) {
    traces.push({x: [utc(runs[0].created_at), utc(runs[runs.length - 1].created_at)],
      y: [reference, reference], name: "reference", mode: "lines", type: "scatter",
      line: {dash: "dash", color: "#9ca3af"}});
  }
  plot("chart-metric", traces, {title: (metrics.join(", ") || "metric") + " across runs",
    yaxis: yAxis(metrics.join(", ")), showlegend: traces.length > 1},
    runs.length ? "no run measured a metric yet (no labels)." : none);
  plot("chart-drift", [runTrace(runs, "drift share", runs.map((r) => r.dataset_drift_share))],
    {title: "Dataset drift share across runs", yaxis: yAxis("share of features", ".0%"),
      showlegend: false}, runs.length ? "no run judged drift yet." : none);
  const w = d.weights;
  plot("chart-weight", [{x: w.map((p) => utc(p.time)), y: w.map((p) => p.weight),
    text: w.map((p) => p.action), name: "candidate weight", type: "scatter",
    mode: "lines+markers", line: {shape: "hv", color: PALETTE[1]},
    hovertemplate: "%{x}<br>%{y}%<br>%{text}<extra></extra>"}],
  {title: "Candidate traffic weight", yaxis: Object.assign(yAxis("% of requests"),
    {range: [0, 105]}), showlegend: false}, "no deployment yet.");
}

function newCategories(names) {
  if (!names.length) return "—";
  const more = names.length > 3 ? " (+" + (names.length - 3) + " more)" : "";
  return {text: names.slice(0, 3).join("; ") + more, title: names.join("; ")};
}

function renderDrift(latest) {
  const report = latest ? latest.report || {} : null;
  if (!report) { fill("drift-body", empty("No monitoring run yet.")); return; }
  if (!report.drift) {
    fill("drift-body", empty("Drift was not judged: " + (report.drift_skipped || "no data")
      + "."));
    return;
  }
  const byName = new Map((report.drift.features || []).map((f) => [f.name, f]));
  const order = (latest.drift_order || []).filter((n) => byName.has(n));
  fill("drift-body", table(
    ["feature", "kind", "verdict", "PSI", "JS", "KS", "Wasserstein ÷ std", "missing change",
      "new categories"],
    order.map((name) => {
      const f = byName.get(name);
      const s = f.statistics || {};
      return [f.name, f.kind, {text: f.verdict, sev: SEVERITY[f.verdict],
        title: (f.reasons || []).join("; ")}, s.psi, s.js, s.ks, s.wasserstein_norm,
        points(f.null_rate_change), newCategories(f.new_categories || [])];
    })));
}

function render(d) {
  document.title = d.model + " · modelcycle dashboard";
  document.getElementById("title").textContent = d.model + ": dashboard";
  document.getElementById("subtitle").textContent = "serving " + d.serving.ref + " · "
    + (d.serving.ready ? "ready" : "loading the model") + " · updated " + utc(d.generated_at)
    + " UTC";
  renderOverview(d);
  renderDeployment(d);
  renderLatest(d.latest);
  renderAlerts(d.alerts);
  renderCharts(d);
  renderDrift(d.latest);
}

function problem(text) {
  const box = document.getElementById("problem");
  box.hidden = !text;
  box.textContent = text || "";
  document.getElementById("status").className = "status " + (text ? "error" : "ok");
}

async function refresh() {
  try {
    if (!document.hidden || !loaded) {  // a hidden tab skips refreshes
      const response = await fetch(SETTINGS.dataUrl, {cache: "no-store"});
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error || "the server answered " + response.status);
      render(body);
      loaded = true;
      problem(null);
    }
  } catch (err) {
    problem("Could not load the dashboard's data: " + err.message + ". Retrying.");
  } finally {
    setTimeout(refresh, SETTINGS.refreshMs);
  }
}
refresh();
"""
