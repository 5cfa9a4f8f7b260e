"""The live part of ``modelcycle demo``: serve the champion, then ramp a new version up.

Both stories run a real server on 127.0.0.1 (:class:`~modelcycle.serving.local.LocalServer`)
and read what happened back from the stores, so what the demo prints is what was recorded.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from modelcycle.config.settings import Settings
from modelcycle.training.train import TrainOutcome

QUICK_ROLLOUT = {
    "steps": "[20, 50, 100]",
    "step_duration": '"2s"',
    "min_requests": "15",
    "evaluation_interval": '"1s"',
}
"""The demo's ``[deployment]`` pace: seconds per step instead of minutes."""


@dataclass
class ServedTraffic:
    """What the serving step sent, and what the prediction log holds afterwards."""

    url: str
    requests: int
    rows: int
    logged: int
    labelled: int
    mae: float


@dataclass
class RolloutStory:
    """What the ramp-up did."""

    version: str
    status: str
    seconds: float
    requests: int
    versions_seen: dict[str, int]
    events: list[tuple[str, str, str]]


def quick_rollouts(spec_path: Path) -> None:
    """Make the demo project's ramp-up take seconds (its ``[deployment]`` pace)."""
    text = spec_path.read_text()
    for key, value in QUICK_ROLLOUT.items():
        text = re.sub(rf"(?m)^{key} = [^#\n]*?(\s*#)", rf"{key} = {value}\1", text, count=1)
    spec_path.write_text(text)


def serve_and_label(
    settings: Settings, name: str, console: Console, *, fast: bool = False
) -> ServedTraffic:
    """Serve the champion, send new listings, post their true rents, read the log back."""
    import httpx

    from modelcycle.data.examples import rent_apartments
    from modelcycle.serving.local import LocalServer
    from modelcycle.store import make_engine, window

    listings = rent_apartments(20 if fast else 60, seed=2026, messy=False)
    features = listings.drop(columns=["rent", "address", "zip"], errors="ignore")
    rows = json.loads(features.to_json(orient="records"))
    sent: list[tuple[str, int, float]] = []  # request id, row, true rent
    with LocalServer(settings, f"{name}@champion") as server, httpx.Client() as client:
        console.print(f"  serving {name}@champion at {server.url} (API docs at /docs)")
        batches = [rows[i : i + 1] for i in range(len(rows) - 5)] + [rows[-5:]]
        answers = []
        for batch in batches:
            response = client.post(f"{server.url}/predict", json=batch)
            response.raise_for_status()
            answers.append(response.json())
        start = 0
        for answer, batch in zip(answers, batches, strict=True):
            for row in range(len(batch)):
                sent.append((answer["request_id"], row, float(listings["rent"].iloc[start + row])))
            start += len(batch)
        _show_predictions(console, rows, answers)
        labels = [{"request_id": rid, "row": row, "label": rent} for rid, row, rent in sent]
        posted = client.post(f"{server.url}/labels", json=labels).json()
        console.print(f"  posted {len(labels)} true rents to /labels: {posted['counts']}")
    engine = make_engine(settings.database_url or "")
    with engine.connect() as conn:
        logged = window(conn, name, with_features=False)
    engine.dispose()
    labelled = logged[logged["has_label"]]
    errors = (labelled["prediction"].astype(float) - labelled["label"].astype(float)).abs()
    mae = float(errors.mean()) if len(errors) else float("nan")
    console.print(
        f"  the prediction log holds {len(logged)} predictions, {len(labelled)} with their true "
        f"rent; live MAE {mae:,.0f}",
        highlight=False,
    )
    return ServedTraffic(server.url, len(batches), len(rows), len(logged), len(labelled), mae)


def _show_predictions(
    console: Console, rows: list[dict[str, object]], answers: list[dict[str, object]]
) -> None:
    table = Table(box=None, padding=(0, 2))
    for header in ("request id", "area", "neighborhood", "predicted rent", "version"):
        table.add_column(header)
    for row, answer in list(zip(rows, answers, strict=False))[:5]:
        predictions = answer["predictions"]
        assert isinstance(predictions, list)
        table.add_row(
            str(answer["request_id"])[:12],
            f"{row['area']} m2",
            str(row["neighborhood"]),
            f"{predictions[0]:,.0f}",
            str(answer["version"]),
        )
    console.print(table)


def ramp_up(
    settings: Settings, name: str, second: TrainOutcome, console: Console, *, fast: bool = False
) -> RolloutStory:
    """Deploy the new version with a ramp-up while traffic flows; the controller promotes it."""
    import httpx

    from modelcycle.config.spec import load_project
    from modelcycle.data.examples import rent_apartments
    from modelcycle.deployment import commands
    from modelcycle.serving.local import LocalServer
    from modelcycle.store import make_engine

    assert second.registered is not None
    version = str(second.registered.version)
    uri = settings.mlflow_tracking_uri or ""
    spec = load_project(settings.project_dir).spec.deployment
    plan = commands.plan_from_spec(spec)
    listings = rent_apartments(200, seed=77, messy=False)
    rows = json.loads(
        listings.drop(columns=["rent", "address", "zip"], errors="ignore").to_json(orient="records")
    )
    engine = make_engine(settings.database_url or "")
    seen: dict[str, int] = {}
    sent = 0
    start = time.perf_counter()
    with LocalServer(settings, f"{name}@champion") as server, httpx.Client() as client:
        state, _ = commands.deploy(
            engine, name, version, "ramp", plan, tracking_uri=uri, actor="demo"
        )
        steps = " → ".join(f"{w:g}%" for w in plan.steps)
        console.print(
            f"  deployed v{version} as a ramp-up ({steps}, at least {plan.step_seconds:g} s and "
            f"{plan.min_requests} requests per step); sending traffic while the controller "
            "evaluates the gates",
            highlight=False,
        )
        deadline = time.monotonic() + (90 if fast else 180)
        while state.active and time.monotonic() < deadline:
            answer = client.post(f"{server.url}/predict", json=rows[sent % len(rows)]).json()
            version_arm = f"v{answer['version']} ({answer['arm']})"
            seen[version_arm] = seen.get(version_arm, 0) + 1
            sent += 1
            if sent % 25 == 0:
                state = commands.status(engine, name)
            time.sleep(0.005)
        state = commands.status(engine, name)
    events = [
        (e.created_at.strftime("%H:%M:%S"), e.action, e.reason or "")
        for e in commands.history(engine, name)
    ]
    engine.dispose()
    _show_history(console, events)
    console.print(
        f"  {sent} requests answered during the rollout: "
        + ", ".join(f"{count} by {who}" for who, count in sorted(seen.items()))
        + f"; status now {state.status}, stable version v{state.stable_version}",
        highlight=False,
    )
    return RolloutStory(version, state.status, time.perf_counter() - start, sent, seen, events)


def _show_history(console: Console, events: list[tuple[str, str, str]]) -> None:
    table = Table(
        box=None, padding=(0, 2), title="deployment history (modelcycle deployments history)"
    )
    for header in ("time", "action", "reason"):
        table.add_column(header)
    for when, action, reason in events:
        table.add_row(when, action, reason)
    console.print(table)
