"""``modelcycle deploy``, ``rollout``, ``rollback`` and ``deployments``, as a user runs them.

The project is the rent example with two registered versions (rent/1 linear, the champion, and
rent/2 LightGBM), built once per module (``registered_rent``); every test works on its own
copy, whose operational store does not exist yet (the commands create it).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelcycle.config.settings import Settings
from modelcycle.config.spec import DeploymentSpec
from modelcycle.data.records import LabelRecord, PredictionRecord
from modelcycle.deployment import commands
from modelcycle.deployment.state import DeploymentError
from modelcycle.registry.store import resolve_version
from modelcycle.store import insert_labels, insert_predictions, make_engine, upgrade


@pytest.fixture
def project(registered_rent: Path, tmp_path: Path) -> Path:
    """A private copy of the registered project (its own registry aliases and store)."""
    return Path(shutil.copytree(registered_rent, tmp_path / "rent"))


def champion(project: Path, alias: str = "champion") -> int:
    uri = Settings.load(project).mlflow_tracking_uri
    assert uri is not None
    return resolve_version(f"rent@{alias}", tracking_uri=uri)


def status(cli: Any, project: Path) -> dict[str, Any]:
    run = cli("rollout", "status", "rent", "--json", cwd=project)
    assert run.code == 0, run.text
    return dict(json.loads(run.out))


def history(cli: Any, project: Path) -> list[dict[str, Any]]:
    run = cli("deployments", "history", "rent", "--json", cwd=project)
    assert run.code == 0, run.text
    return list(json.loads(run.out))


def test_canary_then_promote_moves_the_aliases(cli, project: Path) -> None:
    run = cli("deploy", "rent", "--version", "2", "--strategy", "canary", cwd=project)
    assert run.code == 0, run.text
    assert "canary of v2 at 10%" in run.out
    assert "v2 answers 10% of requests; v1 answers the rest" in run.out
    assert "rollout promote rent" in run.out

    state = status(cli, project)
    assert state["status"] == "canary"
    assert (state["stable_version"], state["candidate_version"]) == ("1", "2")
    assert state["weight"] == 10.0
    assert state["paused"] is False
    assert state["events"][0]["action"] == "deploy"
    assert state["events"][0]["actor"].endswith("@cli")
    assert champion(project, "challenger") == 2

    run = cli("rollout", "status", "rent", cwd=project)
    assert run.code == 0, run.text
    for text in ("canary", "10%", "v1", "v2", "0 of 2", "last 1 events"):
        assert text in run.out, text

    run = cli("rollout", "promote", "rent", "--reason", "looks good", cwd=project)
    assert run.code == 0, run.text
    assert "rent@champion → v2" in run.out
    assert (champion(project), champion(project, "previous")) == (2, 1)

    events = history(cli, project)
    assert [e["action"] for e in events] == ["deploy", "promote"]
    assert (events[0]["from_version"], events[0]["to_version"]) == ("1", "2")
    assert events[1]["to_version"] == "2"
    assert events[1]["reason"] == "looks good"
    run = cli("deployments", "history", "rent", cwd=project)
    assert run.code == 0, run.text
    for text in ("deploy", "promote", "v1 → v2", "looks good", "@cli"):
        assert text in run.out, text
    assert status(cli, project)["status"] == "promoted"


def test_ramp_pause_resume_abort(cli, project: Path) -> None:
    run = cli(
        "deploy", "rent", "--version", "2", "--strategy", "ramp", "--steps", "10,50,100",
        "--step-duration", "30s", "--min-requests", "5", "--failure-limit", "3", cwd=project,
    )  # fmt: skip
    assert run.code == 0, run.text
    assert "10% → 50% → 100%" in run.out
    assert "at least 30s and 5 candidate requests" in run.out
    state = status(cli, project)
    assert (state["status"], state["weight"], state["step"]) == ("ramping", 10.0, 0)
    assert state["plan"]["step_seconds"] == 30.0
    assert state["plan"]["min_requests"] == 5
    assert state["failure_limit"] == 3
    text = cli("rollout", "status", "rent", cwd=project).out
    assert "1 of 3" in text
    assert "0 of 3" in text  # failures

    run = cli("rollout", "pause", "rent", cwd=project)
    assert run.code == 0, run.text
    assert "keeps 10% of traffic" in run.out
    assert status(cli, project)["paused"] is True
    assert "ramping (paused)" in cli("rollout", "status", "rent", cwd=project).out

    run = cli("rollout", "resume", "rent", cwd=project)
    assert run.code == 0, run.text
    assert status(cli, project)["paused"] is False

    run = cli("rollout", "abort", "rent", cwd=project)
    assert run.code == 0, run.text
    assert "v1 answers every request" in run.out
    state = status(cli, project)
    assert (state["status"], state["candidate_version"], state["weight"]) == (
        "rolled_back",
        None,
        0,
    )
    assert champion(project) == 1
    assert [e["action"] for e in history(cli, project)] == ["deploy", "pause", "resume", "abort"]

    run = cli("rollout", "pause", "rent", cwd=project)  # nothing runs any more
    assert run.code == 2
    assert "nothing to pause" in run.err


def test_rollback_restores_the_previous_version_or_a_named_one(cli, project: Path) -> None:
    run = cli("deploy", "rent", "--version", "2", "--strategy", "direct", cwd=project)
    assert run.code == 0, run.text
    assert "v2 is the stable version" in run.out
    assert (champion(project), champion(project, "previous")) == (2, 1)

    run = cli("rollback", "rent", cwd=project)
    assert run.code == 0, run.text
    assert "v1 answers every request" in run.out
    assert champion(project) == 1

    run = cli("rollback", "rent", "--to", "2", "--reason", "v1 was worse", cwd=project)
    assert run.code == 0, run.text
    assert champion(project) == 2
    events = history(cli, project)
    assert [(e["action"], e["to_version"]) for e in events] == [
        ("deploy", "2"),
        ("rollback", "1"),
        ("rollback", "2"),
    ]
    assert events[-1]["reason"] == "v1 was worse"

    run = cli("rollback", "rent", "--to", "7", cwd=project)
    assert run.code == 2
    assert "7" in run.err


def test_a_running_candidate_rolls_back_at_once(cli, project: Path) -> None:
    assert (
        cli("deploy", "rent", "--version", "2", "--strategy", "blue-green", cwd=project).code == 0
    )
    assert status(cli, project)["status"] == "blue_green"
    run = cli("rollback", "rent", cwd=project)
    assert run.code == 0, run.text
    state = status(cli, project)
    assert (state["status"], state["stable_version"], state["candidate_version"]) == (
        "rolled_back",
        "1",
        None,
    )
    assert champion(project) == 1


def test_deploying_while_a_rollout_runs_is_refused(cli, project: Path) -> None:
    assert cli("deploy", "rent", "--version", "2", "--strategy", "shadow", cwd=project).code == 0
    run = cli("deploy", "rent", "--version", "2", "--strategy", "ramp", cwd=project)
    assert run.code == 2
    lines = run.err.strip().splitlines()
    assert lines[0].startswith("error: rent: version 2 is being rolled out (shadow)")
    assert len(lines) == 2  # the error and its hint
    assert "rollout promote|abort rent" in lines[1]
    assert "Traceback" not in run.text
    assert [e["action"] for e in history(cli, project)] == ["deploy"]


def test_unknown_version_and_bad_options_are_one_clear_error(cli, project: Path) -> None:
    run = cli("deploy", "rent", "--version", "9", "--strategy", "canary", cwd=project)
    assert run.code == 2
    assert run.err.startswith("error:")
    assert "9" in run.err
    assert "Traceback" not in run.text
    assert history(cli, project) == []

    for args, text in (
        (("--steps", "50,10"), "--steps '50,10' is not a list of increasing percentages"),
        (("--steps", "5,x"), "--steps '5,x'"),
        (("--weight", "150"), "--weight 150 is not a percentage"),
        (("--step-duration", "soon"), "--step-duration"),
    ):
        run = cli("deploy", "rent", "--version", "2", *args, cwd=project)
        assert run.code == 2, args
        assert text in run.err, run.err
    run = cli("deploy", "rent", "--version", "2", "--strategy", "sideways", cwd=project)
    assert run.code == 2
    assert "sideways" in run.err


def test_status_and_history_of_a_model_never_deployed(cli, project: Path) -> None:
    run = cli("rollout", "status", "rent", cwd=project)
    assert run.code == 0, run.text
    assert "never deployed" in run.out
    assert status(cli, project)["status"] == "idle"
    run = cli("deployments", "history", "rent", cwd=project)
    assert run.code == 0, run.text
    assert "No deployment events for rent" in run.out


def test_the_spec_supplies_the_defaults(cli, project: Path) -> None:
    spec = project / "modelcycle.toml"
    ours = 'strategy = "canary"\ncanary_weight = 20\nrouting_key = "apartment_id"\n'
    head, section, tail = spec.read_text().partition("\n[deployment]")
    if section:  # the template's own section: put ours first, drop its strategy
        header, _, rest = tail.partition("\n")
        rest = re.sub(r"(?m)^strategy\s*=.*$", "", rest, count=1)
        spec.write_text(f"{head}{section}{header}\n{ours}{rest}")
    else:
        spec.write_text(f"{head}\n[deployment]\n{ours}")
    run = cli("deploy", "rent", "--version", "2", cwd=project)
    assert run.code == 0, run.text
    state = status(cli, project)
    assert (state["status"], state["weight"]) == ("canary", 20.0)
    assert state["plan"]["routing_key"] == "apartment_id"


def _log(project: Path, rows: list[PredictionRecord], labels: list[LabelRecord]) -> None:
    url = Settings.load(project).database_url
    assert url is not None
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        insert_predictions(conn, rows)
        insert_labels(conn, labels)
    engine.dispose()


def test_rollout_compare_writes_the_report(cli, project: Path) -> None:
    now = datetime.now(UTC) - timedelta(minutes=5)
    stable = [
        PredictionRecord(
            request_id=f"s{i}",
            timestamp=now,
            model_name="rent",
            model_version="1",
            arm="stable",
            features={"area": 60},
            prediction=1000.0 + 10 * i,
            latency_ms=2.0,
        )
        for i in range(90)
    ]
    canary = [
        PredictionRecord(
            request_id=f"c{i}",
            timestamp=now,
            model_name="rent",
            model_version="2",
            arm="canary",
            features={"area": 60},
            prediction=None if i == 0 else 1500.0 + 10 * i,
            error="ValueError: boom" if i == 0 else None,
            latency_ms=4.0,
        )
        for i in range(10)
    ]
    old = PredictionRecord(
        request_id="old",
        timestamp=now - timedelta(days=2),
        model_name="rent",
        model_version="1",
        features={},
        prediction=1.0,
    )
    labels = [LabelRecord(request_id=f"s{i}", label=1000.0 + 10 * i + 5) for i in range(30)]
    _log(project, [*stable, *canary, old], labels)

    run = cli("rollout", "compare", "rent", "--window", "1h", cwd=project)
    assert run.code == 0, run.text
    for text in ("stable v1", "canary v2", "1 (10.00%)", "canary v2 vs stable v1", "distribution"):
        assert text in run.out, text
    report = project / "reports" / "rollout.html"
    assert f"Report: {report}" in run.out.replace("\n", "")
    html = report.read_text(encoding="utf-8")
    for text in (
        "rent: rollout comparison",
        "stable v1",
        "canary v2",
        "Prediction distributions",
        "stable v1: 90 rows",
        "canary v2: 10 rows",
        "Agreement with the reference arm",
        "10.00%",  # canary error rate
        "labelled rows",
    ):
        assert text in html, text
    assert html.count('id="plotlyjs"') == 1

    run = cli(
        "rollout", "compare", "rent", "--window", "1h", "--report", "out/cmp.html", "--json",
        cwd=project,
    )  # fmt: skip
    assert run.code == 0, run.text
    payload = json.loads(run.out)
    arms = {arm["key"]: arm for arm in payload["arms"]}
    assert arms["stable v1"]["requests"] == 90  # the two-day-old row is outside the window
    assert arms["canary v2"]["errors"] == 1
    assert arms["stable v1"]["labelled"] == 30
    assert arms["stable v1"]["metrics"]["mae"] == pytest.approx(5.0)
    assert payload["agreements"][0]["basis"] == "distribution"
    assert payload["agreements"][0]["psi"] > 1
    assert payload["report"] == str(project / "out" / "cmp.html")
    assert (project / "out" / "cmp.html").is_file()


def _traffic(project: Path, n: int = 10) -> None:
    """``n`` healthy rows per arm of a canary/ramp of v2 against v1, logged now."""
    now = datetime.now(UTC)
    rows = [
        PredictionRecord(
            request_id=f"{arm}-{now.timestamp()}-{i}",
            timestamp=now,
            model_name="rent",
            model_version=version,
            arm=arm,
            features={"area": 60},
            prediction=1000.0 + 10 * i,
            latency_ms=2.0,
        )
        for i in range(n)
        for arm, version in (("stable", "1"), ("canary", "2"))
    ]
    _log(project, rows, [])


def test_controller_ramps_a_healthy_candidate_to_promotion(cli, project: Path) -> None:
    run = cli(
        "deploy", "rent", "--version", "2", "--strategy", "ramp", "--steps", "50,100",
        "--step-duration", "1s", "--min-requests", "5", cwd=project,
    )  # fmt: skip
    assert run.code == 0, run.text

    run = cli("controller", "--once", cwd=project)  # no traffic yet
    assert run.code == 0, run.text
    assert "rent: hold" in run.out
    assert "waiting for 5 more candidate requests" in run.out
    assert "error_rate" in run.out  # the gates table

    for weight, kind in ((100.0, "advance"), (None, "promote")):
        _traffic(project)
        time.sleep(1.1)  # the step's least duration
        run = cli("controller", "--once", cwd=project)
        assert run.code == 0, run.text
        assert f"rent: {kind}" in run.out, run.out
        if weight is not None:
            assert status(cli, project)["weight"] == weight
    state = status(cli, project)
    assert (state["status"], state["stable_version"]) == ("promoted", "2")
    assert champion(project) == 2
    actions = [(e["action"], e["actor"]) for e in history(cli, project)]
    assert actions[1:] == [("advance", "controller"), ("promote", "controller")]

    run = cli("controller", "--once", cwd=project)  # nothing left to drive
    assert run.code == 0, run.text
    assert "nothing to evaluate" in run.out


def test_concurrent_conflicting_deploys_one_wins(project: Path) -> None:
    settings = Settings.load(project)
    assert settings.database_url is not None
    assert settings.mlflow_tracking_uri is not None
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    plan = commands.plan_from_spec(DeploymentSpec())
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def deploy(strategy: Any) -> None:
        barrier.wait()
        try:
            commands.deploy(
                engine,
                "rent",
                "2",
                strategy,
                plan,
                tracking_uri=str(settings.mlflow_tracking_uri),
                actor=f"thread-{strategy}",
            )
            outcomes.append(strategy)
        except Exception as err:
            outcomes.append(err)

    threads = [threading.Thread(target=deploy, args=(s,)) for s in ("canary", "shadow")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    won = [o for o in outcomes if isinstance(o, str)]
    lost = [o for o in outcomes if not isinstance(o, str)]
    assert len(won) == 1, outcomes
    assert len(lost) == 1, outcomes
    assert isinstance(lost[0], DeploymentError), repr(lost[0])
    state = commands.status(engine, "rent")
    events = commands.history(engine, "rent")
    engine.dispose()
    assert state.strategy == won[0]
    assert state.version_counter == 1
    assert [(e.action, e.actor) for e in events] == [("deploy", f"thread-{won[0]}")]


def test_every_option_has_help(cli, project: Path) -> None:
    for command in (
        ("deploy",),
        ("rollback",),
        ("controller",),
        ("rollout", "status"),
        ("rollout", "compare"),
        ("deployments", "history"),
    ):
        run = cli(*command, "--help", cwd=project)
        assert run.code == 0, run.text
    text = cli("deploy", "--help", cwd=project).out
    for option in ("--version", "--strategy", "--weight", "--steps", "--step-duration",
                   "--min-requests", "--failure-limit", "--routing-key", "--reason"):  # fmt: skip
        assert option in text, option
