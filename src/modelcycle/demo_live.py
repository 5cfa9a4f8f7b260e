"""The live part of ``modelcycle demo``: serve, monitor, drift, retrain, ramp up, roll back.

One real server on 127.0.0.1 (:class:`~modelcycle.serving.local.LocalServer`) answers every
request of the story, its own rollout controller drives the ramps, and what the demo prints is
read back from the stores:

1. listings from the training distribution, labels arriving after the predictions → a
   monitoring run finds the model healthy;
2. the market moves (rents up 8 %, a new neighborhood) → the monitoring run raises alerts and
   writes its report;
3. the alerts trigger a retrain (:func:`~modelcycle.retraining.triggers.should_retrain`) → the
   challenger beats the champion on the recent labelled rows → it is ramped up through its gates
   and promoted, with traffic flowing;
4. a deliberately bad version (rents tripled) is deployed → its prediction gate fails → the
   server's controller rolls it back on its own.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from modelcycle.config.settings import Settings
from modelcycle.config.spec import Project

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.engine import Engine

    from modelcycle.monitoring.jobs import MonitorJob
    from modelcycle.retraining.loop import RetrainResult

QUICK_ROLLOUT = {
    "steps": "[20, 50, 100]",
    "step_duration": '"2s"',
    "min_requests": "15",
    "evaluation_interval": '"1s"',
}
"""The demo's ``[deployment]`` pace: seconds per step instead of minutes."""
DRIFT_SCENARIO = "inflation+new_neighborhood"
BATCH_ROWS = 10
"""Rows per request while simulating traffic."""
BAD_FACTOR = 3.0
"""The bad version predicts this many times the champion's rent."""


@dataclass
class Phase:
    """Traffic of one phase: what was sent and how the served model did on it."""

    name: str
    rows: int
    requests: int
    mae: float
    verdict: str = ""
    alerts: list[str] = field(default_factory=list)


@dataclass
class LiveStory:
    """What the live part did, for the summary and the tests."""

    url: str = ""
    phases: list[Phase] = field(default_factory=list)
    retrain: RetrainResult | None = None
    promoted: str | None = None
    bad_version: str | None = None
    bad_status: str | None = None
    events: list[tuple[str, str, str, str]] = field(default_factory=list)
    report: Path | None = None
    answered: int = 0
    """Rows the server answered with 200 during the story (each must be in the log)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``reports/demo.json``)."""
        return {
            "url": self.url,
            "answered_rows": self.answered,
            "phases": [vars(phase) for phase in self.phases],
            "retrain": None
            if self.retrain is None
            else {
                "status": self.retrain.status,
                "champion": self.retrain.champion,
                "challenger": self.retrain.challenger,
                "reason": self.retrain.reason,
            },
            "promoted": self.promoted,
            "bad_version": self.bad_version,
            "bad_status": self.bad_status,
        }


class Exaggerated:
    """A deliberately bad model for the demo: another pipeline's predictions times a factor."""

    def __init__(self, pipeline: Any, factor: float) -> None:
        self.pipeline = pipeline
        self.factor = factor

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The wrapped pipeline's predictions, times the factor."""
        return np.asarray(self.pipeline.predict(frame), dtype="float64") * self.factor


def quick_rollouts(spec_path: Path) -> None:
    """Make the demo project's ramp-up take seconds (its ``[deployment]`` pace)."""
    text = spec_path.read_text()
    for key, value in QUICK_ROLLOUT.items():
        text = re.sub(rf"(?m)^{key} = [^#\n]*?(\s*#)", rf"{key} = {value}\1", text, count=1)
    spec_path.write_text(text)


def live_story(
    project: Project, settings: Settings, console: Console, *, fast: bool, budget: str
) -> LiveStory:
    """Run the whole live story (see the module docstring) on one local server."""
    import httpx

    from modelcycle.data.examples import rent_apartments
    from modelcycle.monitoring.jobs import MonitorJob
    from modelcycle.serving.local import LocalServer
    from modelcycle.store import make_engine

    name = project.spec.name
    story = LiveStory(report=project.root / "reports" / "monitor.html")
    normal = rent_apartments(300 if fast else 1_500, seed=2026, messy=False)
    drifted = rent_apartments(
        600 if fast else 2_500, seed=2027, scenario=DRIFT_SCENARIO, messy=False
    )
    engine = make_engine(settings.database_url or "")
    job = MonitorJob(engine, settings, project, name)
    with LocalServer(settings, f"{name}@champion") as server, httpx.Client(timeout=30) as client:
        story.url = server.url
        step(console, 7, "Serve", "a real HTTP server on 127.0.0.1; every prediction is logged")
        console.print(
            f"  serving {name}@champion at {server.url} — API docs at /docs, live dashboard at "
            "/dashboard",
            highlight=False,
        )
        phase = _traffic(client, server.url, normal, "normal market", console)
        story.answered += phase.rows
        step(console, 8, "Monitor", "labels arrived: judge the traffic against the training data")
        _monitor(job, phase, story, console)

        step(console, 9, "Drift", f"the market moves ({DRIFT_SCENARIO.replace('+', ' + ')})")
        phase = _traffic(client, server.url, drifted, "moved market", console)
        story.answered += phase.rows
        _monitor(job, phase, story, console)
        console.print(f"  report: {story.report}", highlight=False)

        step(console, 10, "Retrain", "the alerts trigger a retrain on the recent labelled data")
        story.retrain = _retrain(project, settings, engine, job, console, budget)

        if story.retrain is not None and story.retrain.status == "deployed":
            step(console, 11, "Ramp up", "the challenger goes live through its gates")
            more = rent_apartments(400, seed=2028, scenario=DRIFT_SCENARIO, messy=False)
            status, sent = _serve_until_settled(client, server.url, engine, name, more, console)
            story.answered += sent
            story.promoted = story.retrain.challenger if status == "promoted" else None

        step(console, 12, "Safety net", "a bad version is deployed — and rolled back on its own")
        story.bad_version = _deploy_bad_version(project, settings, engine, job, console)
        more = rent_apartments(400, seed=2029, scenario=DRIFT_SCENARIO, messy=False)
        story.bad_status, sent = _serve_until_settled(
            client, server.url, engine, name, more, console
        )
        story.answered += sent

    story.events = _history(engine, name)
    engine.dispose()
    _show_history(console, story.events)
    return story


def step(console: Console, number: int, title: str, what: str) -> None:
    """A numbered heading of the demo's narration."""
    console.rule(f"[bold cyan]{number}. {title}[/] — {what}", align="left")


def _traffic(
    client: httpx.Client, url: str, listings: pd.DataFrame, name: str, console: Console
) -> Phase:
    """Send the listings in small batches, then post their true rents as labels."""
    features = listings.drop(columns=["rent", "address", "zip"], errors="ignore")
    rows = json.loads(features.to_json(orient="records"))
    rents = listings["rent"].to_numpy(dtype=float)
    labels: list[dict[str, Any]] = []
    predicted: list[float] = []
    requests = 0
    for start in range(0, len(rows), BATCH_ROWS):
        response = client.post(f"{url}/predict", json=rows[start : start + BATCH_ROWS])
        response.raise_for_status()
        answer = response.json()
        requests += 1
        predicted += answer["predictions"]
        for row in range(len(answer["predictions"])):
            labels.append(
                {"request_id": answer["request_id"], "row": row, "label": rents[start + row]}
            )
    posted = client.post(f"{url}/labels", json=labels)
    posted.raise_for_status()
    mae = float(np.mean(np.abs(np.asarray(predicted) - rents)))
    console.print(
        f"  {name}: {len(rows):,} listings in {requests} requests; their true rents arrived "
        f"later ({posted.json()['counts']}); live MAE {mae:,.0f}",
        highlight=False,
    )
    return Phase(name, len(rows), requests, mae)


def _monitor(job: MonitorJob, phase: Phase, story: LiveStory, console: Console) -> None:
    from modelcycle.monitoring.console import render_run
    from modelcycle.monitoring.jobs import run_job
    from modelcycle.monitoring.run import resolve_window

    result = run_job(job, resolve_window(None, phase.rows), report_path=story.report)
    render_run(result, console)
    phase.verdict = result.report["verdict"]
    phase.alerts = [alert["rule"] for alert in result.report["alerts"]]
    story.phases.append(phase)


def _retrain(
    project: Project,
    settings: Settings,
    engine: Engine,
    job: MonitorJob,
    console: Console,
    budget: str,
) -> RetrainResult | None:
    from modelcycle.retraining.console import render_retrain
    from modelcycle.retraining.loop import retrain, retrain_decision
    from modelcycle.training.console import TrainingProgress

    spec = project.spec
    decision = retrain_decision(engine, spec.name, spec.retraining, job.tracking_uri)
    console.print(f"  trigger: {decision.reason}", highlight=False)
    if not decision.retrain:
        return None
    with TrainingProgress(console) as progress:
        result = retrain(
            project,
            settings,
            engine,
            reason=decision.reason,
            actor="demo",
            budget=budget,
            progress=progress.update,
        )
    render_retrain(result, console)
    return result


def _serve_until_settled(
    client: httpx.Client,
    url: str,
    engine: Engine,
    name: str,
    listings: pd.DataFrame,
    console: Console,
) -> tuple[str, int]:
    """Send traffic while the server's controller drives the rollout: final status, rows sent."""
    from modelcycle.deployment import commands

    features = listings.drop(columns=["rent", "address", "zip"], errors="ignore")
    rows = json.loads(features.to_json(orient="records"))
    seen: dict[str, int] = {}
    sent = 0
    state = commands.status(engine, name)
    deadline = time.monotonic() + 120
    while state.active and time.monotonic() < deadline:
        response = client.post(f"{url}/predict", json=rows[sent % len(rows)])
        response.raise_for_status()
        answer = response.json()
        who = f"v{answer['version']} ({answer['arm']})"
        seen[who] = seen.get(who, 0) + 1
        sent += 1
        if sent % 25 == 0:
            state = commands.status(engine, name)
        time.sleep(0.004)
    state = commands.status(engine, name)
    console.print(
        f"  {sent} requests answered meanwhile: "
        + ", ".join(f"{count} by {who}" for who, count in sorted(seen.items()))
        + f"; status {state.status}, stable version v{state.stable_version}",
        highlight=False,
    )
    return state.status, sent


def _deploy_bad_version(
    project: Project, settings: Settings, engine: Engine, job: MonitorJob, console: Console
) -> str:
    from modelcycle.data.examples import rent_apartments
    from modelcycle.deployment import commands
    from modelcycle.registry.store import load_model, register_copy

    name = project.spec.name
    current = load_model(f"{name}/{job.version()}", tracking_uri=job.tracking_uri)
    example = rent_apartments(3, seed=1, messy=False)[current.feature_names]
    bad = register_copy(
        current,
        Exaggerated(current.pipeline, BAD_FACTOR),
        example,
        tracking_uri=job.tracking_uri,
        artifact_dir=settings.artifact_dir or settings.state_dir,
        note=f"demo: deliberately bad (rents x{BAD_FACTOR:g})",
    )
    version = str(bad.version)
    plan = commands.plan_from_spec(project.spec.deployment)
    commands.deploy(
        engine,
        name,
        version,
        "ramp",
        plan,
        tracking_uri=job.tracking_uri,
        actor="demo",
        reason=f"a deliberately bad version: rents x{BAD_FACTOR:g}",
    )
    console.print(
        f"  deployed v{version} (it predicts {BAD_FACTOR:g}x the rent) as a ramp-up; the "
        "server's controller compares it with the stable version while traffic flows",
        highlight=False,
    )
    return version


def _history(engine: Engine, name: str) -> list[tuple[str, str, str, str]]:
    from modelcycle.deployment import commands

    return [
        (
            e.created_at.strftime("%H:%M:%S"),
            e.action,
            f"v{e.from_version or '–'} → v{e.to_version or '–'}",
            e.reason or "",
        )
        for e in commands.history(engine, name)
    ]


def _show_history(console: Console, events: list[tuple[str, str, str, str]]) -> None:
    table = Table(
        box=None, padding=(0, 2), title="deployment history (modelcycle deployments history)"
    )
    for header in ("time", "action", "versions", "reason"):
        table.add_column(header, overflow="fold")
    for when, action, versions, reason in events:
        table.add_row(when, action, versions, reason[:140])
    console.print(table)
