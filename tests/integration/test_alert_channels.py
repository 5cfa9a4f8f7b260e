"""Alert channels against a real HTTP receiver on 127.0.0.1: delivery, retries, a dead webhook."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from loguru import logger

from modelcycle.monitoring.alerts import AlertChanges, Notifier


class Receiver:
    """A webhook endpoint: answers the queued statuses in order (then 200), keeps the bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def alert(severity: str = "critical") -> dict[str, Any]:
    return {
        "id": 7,
        "rule": "metric_drop",
        "model_name": "rent",
        "model_version": "3",
        "severity": severity,
        "status": "open",
        "opened_at": datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
        "resolved_at": None,
        "message": "realised mae is 30% worse than at training (330 vs 254)",
        "details": {"value": 0.3},
        "dedup_key": "monitor:rent:metric_drop",
    }


def test_opened_and_resolved_alerts_reach_the_webhook(receiver: Receiver) -> None:
    changes = AlertChanges(opened=[alert()], resolved=[{**alert("warning"), "id": 8}])
    assert Notifier(receiver.url).send(changes) == 2
    opened, resolved = receiver.bodies
    assert opened["event"] == "opened"
    assert opened["text"].startswith("[critical] rent v3: alert 7 metric_drop opened")
    assert "330 vs 254" in opened["text"]  # Slack shows `text`
    assert opened["alert"]["opened_at"] == "2026-11-27T09:30:00+00:00"
    assert resolved["event"] == "resolved"
    assert resolved["alert"]["id"] == 8


def test_a_failing_webhook_is_retried_with_backoff(receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    started = time.monotonic()
    delivered = Notifier(receiver.url, retries=3, backoff=0.05).send(AlertChanges(opened=[alert()]))
    assert delivered == 1
    assert len(receiver.bodies) == 3
    assert time.monotonic() - started >= 0.05 + 0.1  # 0.05 s, then doubled


def test_a_dead_webhook_never_breaks_monitoring() -> None:
    lines: list[str] = []
    sink = logger.add(lines.append, level="ERROR", format="{message}")
    try:
        notifier = Notifier("http://127.0.0.1:9/hook", retries=2, backoff=0.01, timeout=0.5)
        assert notifier.send(AlertChanges(opened=[alert()])) == 0
    finally:
        logger.remove(sink)
    assert any("could not deliver alert 7 to the webhook after 2 attempts" in s for s in lines)
    assert any("modelcycle alerts list" in s for s in lines)


def test_a_monitoring_run_posts_its_new_alerts(
    receiver: Receiver, project_store: Any, logs_traffic: Any
) -> None:
    from datetime import timedelta

    from modelcycle.config.spec import load_project
    from modelcycle.data.examples import rent_apartments
    from modelcycle.monitoring.jobs import MonitorJob, run_job
    from modelcycle.monitoring.run import resolve_window

    settings = project_store.settings.model_copy(update={"alert_webhook_url": receiver.url})
    engine = project_store.engine
    job = MonitorJob(engine, settings, load_project(project_store.root), "rent")
    frame = rent_apartments(1_000, seed=4, scenario="new_neighborhood", messy=False)
    start = datetime.now(UTC) - timedelta(minutes=30)
    logs_traffic(engine, job.model(job.version()), frame, start=start, seconds=600)
    result = run_job(job, resolve_window("1h", None))
    posted = {(body["event"], body["alert"]["rule"]) for body in receiver.bodies}
    assert ("opened", "feature_drift") in posted
    assert len(receiver.bodies) == len(result.changes.opened)
