"""``retrain`` end to end: real SQLite store, real MLflow registry, real (tiny) trainings.

The champion is the served project's rent/1 (LightGBM on 1,500 baseline rows). Production
traffic is logged as the server logs it (the champion's own predictions) with labels, from the
rent generator's scenarios; each retrain trains LightGBM only, two trials.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from loguru import logger
from mlflow.tracking import MlflowClient

from modelcycle.cli import main
from modelcycle.config.settings import Settings
from modelcycle.config.spec import Project, load_project
from modelcycle.data.examples import rent_apartments
from modelcycle.deployment import commands
from modelcycle.deployment.state import DeploymentError
from modelcycle.monitoring.jobs import MonitorJob, run_job
from modelcycle.monitoring.run import Window
from modelcycle.registry.store import describe, list_models, load_model
from modelcycle.retraining.loop import RetrainResult, retrain, retrain_state
from modelcycle.retraining.triggers import should_retrain
from modelcycle.store import make_engine, upgrade
from modelcycle.store.alerts import list_alerts, open_alert

pytestmark = pytest.mark.slow

BUDGET = "2 trials"
RETRAIN_ACTIONS = (
    "retrain_started",
    "retrain_rejected",
    "retrain_registered",
    "retrain_failed",
    "retrain_abandoned",
    "deploy",
)


def edit_spec(root: Path, retraining: str = "", **replace: str) -> None:
    """LightGBM only, two trials; ``replace`` old→new lines; ``retraining`` replaces its section."""
    path = root / "modelcycle.toml"
    text = path.read_text(encoding="utf-8")
    changes = {
        'candidates = ["linear", "rf", "hgb", "lgbm"]': 'candidates = ["lgbm"]',
        'budget = "20 trials"': f'budget = "{BUDGET}"',
        **replace,
    }
    for old, new in changes.items():
        assert old in text, f"{old!r} is not in the spec any more"
        text = text.replace(old, new)
    if retraining:  # the template's [retraining] section is the last: replace it
        text = text[: text.index("\n[retraining]")] + f"\n[retraining]\n{retraining}\n"
    path.write_text(text, encoding="utf-8")


@dataclass
class Setup:
    root: Path
    settings: Settings
    engine: sa.Engine
    champion: Any
    uri: str
    log_traffic: Any

    def project(self) -> Project:
        return load_project(self.root)

    def traffic(self, scenario: str, rows: int, *, labelled: float, seed: int) -> datetime:
        """Log the champion's predictions on ``rows`` of ``scenario`` over the last hour.

        Returns the time the traffic ends at (now).
        """
        now = datetime.now(UTC)
        frame = rent_apartments(rows, seed=seed, scenario=scenario, messy=False)
        self.log_traffic(
            self.engine,
            self.champion,
            frame,
            start=now - timedelta(hours=1),
            seconds=3300,
            labelled=labelled,
            seed=seed,
        )
        return now

    def history(self) -> list[Any]:
        return [e for e in commands.history(self.engine, "rent") if e.action in RETRAIN_ACTIONS]

    def versions(self) -> list[int]:
        (model,) = [m for m in list_models(self.uri) if m.name == "rent"]
        return model.versions


@pytest.fixture
def make_setup(project_copy: Path, logs_traffic: Any) -> Iterator[Any]:
    """``make_setup(retraining_section, **spec_replacements) -> Setup`` on a private project copy."""
    engines: list[sa.Engine] = []

    def make(retraining: str = "", **replace: str) -> Setup:
        edit_spec(project_copy, retraining, **replace)
        settings = Settings.load(project_copy)
        assert settings.database_url is not None
        assert settings.mlflow_tracking_uri is not None
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        engines.append(engine)
        uri = settings.mlflow_tracking_uri
        champion = load_model("rent/1", tracking_uri=uri)
        return Setup(project_copy, settings, engine, champion, uri, logs_traffic)

    yield make
    for engine in engines:
        engine.dispose()


def describe_result(result: RetrainResult) -> str:
    verdict = result.verdict
    return f"{result.status}: {result.reason} gains={verdict.gains if verdict else None}"


# ------------------------------------------------------------------------------ drift → deploy


def test_drifted_traffic_retrains_registers_and_rolls_out_the_challenger(make_setup: Any) -> None:
    setup = make_setup()
    setup.traffic("inflation+new_neighborhood", 2_500, labelled=0.8, seed=11)

    result = retrain(setup.project(), setup.settings, setup.engine, reason="drift", budget=BUDGET)

    assert result.status == "deployed", describe_result(result)
    assert result.champion == "1"
    assert result.challenger == "2"
    assert setup.versions() == [1, 2]
    verdict = result.verdict
    assert verdict is not None
    assert verdict.wins
    assert verdict.metric == "mae"
    assert verdict.gains["recent"] > 0, verdict.reason
    assert set(verdict.scores) == {"test", "recent"}
    # ~80 % of 2,500 rows are labelled; the newest 30 % of them are held out for the comparison
    assert 1_800 < result.recent_rows < 2_200
    assert verdict.rows["recent"] == round(result.recent_rows * 0.3)
    assert result.run_id is not None
    assert describe("rent/2", tracking_uri=setup.uri).run_id == result.run_id

    events = setup.history()
    assert [e.action for e in events] == ["retrain_started", "retrain_registered", "deploy"]
    started, registered, deployed = events
    assert started.actor == registered.actor == "retrain"
    assert started.reason == "drift"
    assert (registered.from_version, registered.to_version) == ("1", "2")
    assert registered.details is not None
    assert registered.details["comparison"]["wins"] is True
    assert registered.details["run_id"] == result.run_id
    assert deployed.actor == "retrain"
    assert deployed.to_version == "2"
    assert deployed.reason is not None
    assert "won" in deployed.reason
    assert started.created_at <= registered.created_at <= deployed.created_at

    state = commands.status(setup.engine, "rent")  # rolled out under the spec's ramp
    assert (state.stable_version, state.candidate_version) == ("1", "2")
    assert state.status == "ramping"

    # the MLflow run lists both datasets: the project's data and the production copy
    run = MlflowClient(tracking_uri=setup.uri).get_run(result.run_id)
    assert run.inputs is not None
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"rent", "rent-production"}
    production = inputs["rent-production"]
    tags = {t.key: t.value for t in production.tags}
    digest = tags["modelcycle_digest"]
    assert len(digest) == 64
    copy = setup.settings.state_dir / "retraining" / f"production-{digest[:16]}.parquet"
    assert copy.is_file()
    assert copy.name in production.dataset.source
    assert len(pd.read_parquet(copy)) == result.recent_rows
    assert "modelcycle_digest" in {t.key for t in inputs["rent"].tags}
    assert int(run.data.params["extra_rows"]) > 0


# ---------------------------------------------------------------------------- unchanged → kept


def test_unchanged_traffic_rejects_the_challenger_and_deploys_nothing(make_setup: Any) -> None:
    setup = make_setup("min_improvement = 0.05")
    setup.traffic("baseline", 2_000, labelled=0.8, seed=12)

    result = retrain(setup.project(), setup.settings, setup.engine, reason="check", budget=BUDGET)

    assert result.status == "rejected", describe_result(result)
    assert result.challenger is None
    assert result.verdict is not None
    assert not result.verdict.wins
    assert result.verdict.gains["recent"] < 0.05
    assert "needs +5.0% on recent rows" in result.reason
    assert setup.versions() == [1]

    events = setup.history()
    assert [e.action for e in events] == ["retrain_started", "retrain_rejected"]
    rejected = events[-1]
    assert rejected.reason == result.reason
    assert rejected.details is not None
    comparison = rejected.details["comparison"]
    assert comparison["wins"] is False
    assert set(comparison["scores"]) == {"test", "recent"}
    assert comparison["scores"]["recent"]["champion"] > 0
    assert comparison["rows"]["recent"] == round(result.recent_rows * 0.3)
    state = commands.status(setup.engine, "rent")
    assert state.candidate_version is None
    assert state.stable_version in (None, "1")


# ---------------------------------------------------------------- triggers from the real store


def test_metric_drop_alert_triggers_and_a_schema_break_blocks_even_the_cli(
    make_setup: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = make_setup('cooldown = "1s"')
    now = setup.traffic("inflation+new_neighborhood", 2_500, labelled=0.8, seed=13)
    project = setup.project()
    job = MonitorJob(setup.engine, setup.settings, project, "rent")
    window = Window(now - timedelta(hours=1), now, None, "the last hour")
    run = run_job(job, window, now=now)
    assert "metric_drop" in {a["rule"] for a in run.report["alerts"]}, run.report["reasons"]

    created = describe("rent/1", tracking_uri=setup.uri).created
    assert created is not None
    later = datetime.now(UTC)
    state = retrain_state(setup.engine, "rent", created, version="1", now=later)
    assert state.last_trained_at == created
    assert state.running == 0
    with setup.engine.connect() as conn:
        labelled = conn.execute(sa.text("SELECT count(*) FROM labels")).scalar_one()
    assert state.new_labels == labelled > 1_800
    assert "metric_drop" in {a.rule for a in state.open_alerts}
    decision = should_retrain(state, project.spec.retraining, later)
    assert decision.retrain, decision.reason
    assert decision.trigger == "metric_drop"
    assert decision.blocked_by is None

    with setup.engine.begin() as conn:
        open_alert(
            conn,
            "schema_break",
            "rent",
            None,
            "critical",
            "area is missing from the requests",
            {"feature": "area"},
            "schema_break:rent:area",
        )
    state = retrain_state(setup.engine, "rent", created, version="1", now=later)
    decision = should_retrain(state, project.spec.retraining, later)
    assert not decision.retrain
    assert decision.blocked_by == "schema_break"
    assert decision.trigger == "metric_drop"

    # `modelcycle retrain` refuses, with one clean message and no traceback
    monkeypatch.setenv("COLUMNS", "200")
    capsys.readouterr()
    try:
        with pytest.raises(SystemExit) as exited:
            main(["--project", str(setup.root), "retrain", "--budget", BUDGET])
    finally:
        logger.remove()
    out = capsys.readouterr()
    text = out.out + out.err
    assert exited.value.code not in (0, None), text
    assert "retrain blocked" in text
    assert "schema break" in text
    assert "Traceback" not in text
    assert setup.history() == []  # nothing was started
    assert setup.versions() == [1]
    with setup.engine.connect() as conn:
        assert "schema_break" in {a["rule"] for a in list_alerts(conn, "rent")}


# ------------------------------------------------------------------------------ stop → abandon


def test_a_stopped_retrain_is_abandoned_and_registers_nothing(make_setup: Any) -> None:
    setup = make_setup()
    setup.traffic("inflation", 600, labelled=0.8, seed=14)
    stop = threading.Event()
    stop.set()

    result = retrain(
        setup.project(), setup.settings, setup.engine, reason="x", budget=BUDGET, stop=stop
    )

    assert result.status == "abandoned", describe_result(result)
    assert result.challenger is None
    assert result.recent_rows > 400
    assert setup.versions() == [1]
    events = setup.history()
    assert [e.action for e in events] == ["retrain_started", "retrain_abandoned"]
    assert events[-1].reason == result.reason
    assert "stopped" in result.reason

    # an abandoned retrain is over (not running) but trained nothing
    created = describe("rent/1", tracking_uri=setup.uri).created
    state = retrain_state(setup.engine, "rent", created, version="1", now=datetime.now(UTC))
    assert state.running == 0
    assert state.last_trained_at == created
    assert state.last_attempt_at == events[0].created_at


def test_a_retrain_stopped_while_training_is_abandoned(make_setup: Any) -> None:
    setup = make_setup()
    setup.traffic("inflation", 600, labelled=0.8, seed=15)
    stop = threading.Event()

    result = retrain(
        setup.project(),
        setup.settings,
        setup.engine,
        reason="x",
        budget=BUDGET,
        stop=stop,
        progress=lambda *_: stop.set(),  # the first progress report stops it
    )

    assert result.status == "abandoned", describe_result(result)
    assert setup.versions() == [1]
    assert [e.action for e in setup.history()] == ["retrain_started", "retrain_abandoned"]
    # the training's MLflow run was started, and is closed (not left running)
    client = MlflowClient(tracking_uri=setup.uri)
    experiment = client.get_experiment_by_name("rent")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert runs
    assert {r.info.status for r in runs} <= {"FAILED", "KILLED", "FINISHED"}
    trainings = [r for r in runs if r.info.run_name == "train-rent"]
    assert [r.info.status for r in trainings] == ["FAILED"], [
        (r.info.run_name, r.info.status) for r in runs
    ]


def test_no_retrain_while_a_rollout_runs(make_setup: Any, registers: Any) -> None:
    setup = make_setup()
    setup.traffic("inflation", 600, labelled=0.8, seed=15)
    version = str(registers(setup.root))
    plan = commands.plan_from_spec(setup.project().spec.deployment)
    commands.deploy(setup.engine, "rent", version, "ramp", plan, tracking_uri=setup.uri, actor="t")
    created = describe("rent/1", tracking_uri=setup.uri).created
    now = datetime.now(UTC)
    state = retrain_state(setup.engine, "rent", created, version="1", now=now, manual_reason="x")
    decision = should_retrain(state, setup.project().spec.retraining, now)
    assert (decision.retrain, decision.blocked_by) == (False, "rollout")
    assert f"v{version} ramping" in decision.reason
    with pytest.raises(DeploymentError, match="being rolled out"):
        retrain(setup.project(), setup.settings, setup.engine, reason="x", budget=BUDGET)
    assert setup.versions() == [1, int(version)]  # nothing trained, nothing registered
    assert "retrain_started" not in [e.action for e in setup.history()]


def test_recent_rows_are_checked_against_the_schema(make_setup: Any) -> None:
    from modelcycle.data.records import LabelRecord
    from modelcycle.retraining.loop import recent_labelled
    from modelcycle.store.predictions import insert_labels, insert_prediction_rows

    setup = make_setup()
    setup.traffic("baseline", 200, labelled=1.0, seed=16)
    good = rent_apartments(1, seed=17, messy=False).drop(columns=["rent", "address", "zip"])
    row = {k: (None if pd.isna(v) else v) for k, v in good.iloc[0].to_dict().items()}
    bad = {
        "wrong-type": {**row, "rooms": "three"},  # a required number that is not one
        "no-rooms": {k: v for k, v in row.items() if k != "rooms"},
        "text-label": row,  # a rent that is not a number
        "unlabelled": row,
    }
    now = datetime.now(UTC)
    with setup.engine.begin() as conn:
        insert_prediction_rows(
            conn,
            [
                {
                    "request_id": rid,
                    "created_at": now,
                    "model_name": "rent",
                    "model_version": "1",
                    "features": features,
                    "prediction": 1000.0,
                    "record_id": rid,
                }
                for rid, features in bad.items()
            ],
        )
        labels = {"wrong-type": 1500.0, "no-rooms": 1500.0, "text-label": "unknown"}
        insert_labels(conn, [LabelRecord(request_id=r, label=v) for r, v in labels.items()])
    recent = recent_labelled(setup.engine, setup.champion, "rent", now - timedelta(hours=2))
    assert len(recent.frame) == 200
    assert recent.dropped == 3
    assert recent.frame["rooms"].dtype.kind in "fi"
    assert recent.frame["rent"].notna().all()


def test_a_bad_budget_is_refused_before_anything_is_recorded(make_setup: Any) -> None:
    from modelcycle.errors import ConfigError

    setup = make_setup()
    with pytest.raises(ConfigError, match="--budget"):
        retrain(setup.project(), setup.settings, setup.engine, reason="x", budget="lots")
    assert setup.history() == []


def test_ctrl_c_during_a_retrain_is_recorded_and_does_not_block_the_next(make_setup: Any) -> None:
    setup = make_setup()
    setup.traffic("inflation", 600, labelled=0.8, seed=18)

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        retrain(
            setup.project(), setup.settings, setup.engine, reason="x", budget=BUDGET,
            progress=interrupt,
        )  # fmt: skip
    assert [e.action for e in setup.history()] == ["retrain_started", "retrain_abandoned"]
    created = describe("rent/1", tracking_uri=setup.uri).created
    state = retrain_state(setup.engine, "rent", created, version="1", now=datetime.now(UTC))
    assert state.running == 0


def test_recent_rows_count_by_their_weight_after_cleaning(make_setup: Any) -> None:
    # duplicates are dropped when the data is cleaned: the weight is applied after that
    from modelcycle.config.spec import parse_budget
    from modelcycle.training.train import ExtraTraining, TrainOptions, train

    setup = make_setup()
    rows = rent_apartments(300, seed=19, scenario="inflation", messy=False)
    extra = ExtraTraining(rows.drop(columns=["address", "zip"]), "recent.parquet", "d1", 2.0)
    options = TrainOptions(budget=parse_budget("1 trials"), register=False, extra=extra)
    outcome = train(setup.project(), setup.settings, options)
    run = MlflowClient(tracking_uri=setup.uri).get_run(outcome.run_id)
    assert run.data.params["extra_rows"] == "300"
    assert run.data.params["extra_rows_counted"] == "600"
