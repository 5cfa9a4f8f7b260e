"""The ramp controller on real databases: SQLite files and the PostgreSQL server.

Each test writes synthetic prediction rows (and labels) for a stable and a candidate version,
starts a rollout directly through the state's transitions, and drives the controller with the
``now`` argument, so a 60-second step takes no time. Aliases are not touched
(``tracking_uri=None``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelcycle.data.records import Arm, LabelRecord, PredictionRecord
from modelcycle.deployment import controller
from modelcycle.deployment import state as st
from modelcycle.deployment.rollout import Decision, GatePolicy, decide
from modelcycle.deployment.state import DeploymentState, RolloutPlan, Strategy
from modelcycle.store import insert_labels, insert_predictions, make_engine, upgrade
from modelcycle.store.alerts import open_alert
from modelcycle.store.schema import alerts

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NAME = "rent"
PLAN = RolloutPlan(steps=(10.0, 50.0, 100.0), step_seconds=60, min_requests=200, failure_limit=2)
POLICY = GatePolicy.from_plan(PLAN)
STEP = timedelta(seconds=PLAN.step_seconds + 1)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database."""
    upgrade(db_url)
    made = make_engine(db_url)
    yield made
    made.dispose()


# --- helpers --------------------------------------------------------------------------------


def start_rollout(
    engine: Engine, strategy: Strategy = "ramp", at: datetime = T0, plan: RolloutPlan = PLAN
) -> DeploymentState:
    """Version 1 stable, then version 2 rolled out from ``at``."""
    with engine.begin() as conn:
        idle = st.load(conn, NAME)
        stable = st.commit(conn, idle, *st.start(idle, "1", "direct", plan, actor="t", now=at))
        return st.commit(conn, stable, *st.start(stable, "2", strategy, plan, actor="t", now=at))


def write(
    engine: Engine,
    version: str,
    arm: Arm,
    n: int,
    start: datetime,
    *,
    errors: float = 0.0,
    shift: float = 0.0,
    noise: float = 50.0,
    seed: int = 0,
) -> None:
    """``n`` predictions of ``version`` over the 5 s after ``start``, with labels.

    The truth is a rent around 1,000; a prediction is the truth plus noise (and ``shift``); a
    share ``errors`` of the rows failed.
    """
    rng = np.random.default_rng(seed)
    truth = rng.normal(1000.0, 200.0, n)
    predicted = truth + rng.normal(0.0, noise, n) + shift
    failed = np.arange(n) < round(errors * n)
    tag = uuid.uuid4().hex[:8]
    records = [
        PredictionRecord(
            request_id=f"{version}-{tag}-{i}",
            timestamp=start + timedelta(seconds=5 * i / n),
            model_name=NAME,
            model_version=version,
            arm=arm,
            features={"area": 50},
            prediction=None if failed[i] else float(predicted[i]),
            latency_ms=float(4.0 + rng.random()),
            error="boom" if failed[i] else None,
        )
        for i in range(n)
    ]
    labels = [
        LabelRecord(request_id=f"{version}-{tag}-{i}", label=float(truth[i]))
        for i in range(n)
        if not failed[i]
    ]
    with engine.begin() as conn:
        insert_predictions(conn, records)
        insert_labels(conn, labels)


def evaluate(engine: Engine, now: datetime) -> Decision | None:
    return controller.evaluate(engine, NAME, POLICY, tracking_uri=None, now=now)


def state(engine: Engine) -> DeploymentState:
    with engine.connect() as conn:
        return st.load(conn, NAME)


def actions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [event.action for event in st.history(conn, NAME)]


def open_alerts(engine: Engine) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(alerts).where(alerts.c.status == "open")))


# --- a good candidate -----------------------------------------------------------------------


def test_good_candidate_advances_through_every_step_and_is_promoted(engine: Engine) -> None:
    current = start_rollout(engine)
    started = T0
    for step, weight in enumerate(PLAN.steps):
        assert (current.step, current.weight) == (step, weight)
        if weight < 100:
            write(engine, "1", "stable", 300, started, seed=step)
        write(engine, "2", "canary", 300, started, seed=100 + step)

        early = evaluate(engine, started + timedelta(seconds=30))
        assert early is not None
        assert early.kind == "hold", early.reason
        assert not early.failed
        assert "s more of the step" in early.reason

        now = started + STEP
        decision = evaluate(engine, now)
        assert decision is not None
        expected = "promote" if step == len(PLAN.steps) - 1 else "advance"
        assert decision.kind == expected, decision.reason
        if weight < 100:  # both arms have labels: the metric gate judged
            assert decision.gate_values()["metric"]["passed"] is True
        current, started = state(engine), now
        assert current.step_started_at == now

    assert current.status == "promoted"
    assert (current.stable_version, current.candidate_version) == ("2", None)
    assert current.previous_version == "1"
    # quiet holds are not recorded: one event per step
    assert actions(engine) == ["deploy", "deploy", "advance", "advance", "promote"]
    with engine.connect() as conn:
        events = st.history(conn, NAME)
    assert events[-1].actor == "controller"
    assert events[-1].details is not None
    assert events[-1].details["gates"]["error_rate"]["passed"] is True
    assert open_alerts(engine) == []
    assert evaluate(engine, started + STEP) is None  # nothing running any more


# --- bad candidates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "gate"),
    [({"errors": 0.3}, "error_rate"), ({"shift": 400.0}, "prediction_psi")],
    ids=["errors", "shifted"],
)
def test_bad_candidate_is_rolled_back_after_the_failure_limit(
    engine: Engine, bad: dict[str, float], gate: str
) -> None:
    start_rollout(engine)
    write(engine, "1", "stable", 300, T0, seed=1)
    write(engine, "2", "canary", 300, T0, seed=2, **bad)

    first = evaluate(engine, T0 + timedelta(seconds=10))  # long before the step ends
    assert first is not None
    assert (first.kind, first.failed, first.failures) == ("hold", True, 1), first.reason
    assert gate in first.reason
    assert state(engine).failures == 1
    assert actions(engine)[-1] == "gate_failed"

    # a second controller seconds later sees the same rows: the failure is not counted twice
    same = evaluate(engine, T0 + timedelta(seconds=12))
    assert same is not None
    assert (same.kind, same.failed, same.failures) == ("hold", False, 1), same.reason
    assert "fresh candidate requests" in same.reason
    assert actions(engine)[-1] == "gate_failed"  # nothing recorded
    write(engine, "1", "stable", 300, T0 + timedelta(seconds=12), seed=3)
    write(engine, "2", "canary", 300, T0 + timedelta(seconds=12), seed=4, **bad)

    second = evaluate(engine, T0 + timedelta(seconds=20))
    assert second is not None
    assert (second.kind, second.failed) == ("rollback", True)

    final = state(engine)
    assert final.status == "rolled_back"
    assert (final.stable_version, final.candidate_version, final.weight) == ("1", None, 0.0)
    with engine.connect() as conn:
        last = st.history(conn, NAME)[-1]
    assert (last.action, last.actor, last.from_version, last.to_version) == (
        "auto_rollback",
        "controller",
        "2",
        "1",
    )
    assert last.reason == second.reason
    assert last.details is not None
    assert last.details["gates"][gate]["passed"] is False

    (alert,) = open_alerts(engine)
    assert (alert.rule, alert.severity, alert.model_name, alert.model_version) == (
        "deployment_gate",
        "critical",
        NAME,
        "2",
    )
    assert alert.dedup_key == f"deployment:{NAME}:2"
    assert alert.message == second.reason
    assert alert.details["gates"][gate]["passed"] is False

    # the alert is not raised twice while it is active; the rollout is over
    with engine.begin() as conn:
        again = open_alert(
            conn, "deployment_gate", NAME, "2", "critical", "again", None, f"deployment:{NAME}:2"
        )
    assert again == (alert.id, False)
    assert len(open_alerts(engine)) == 1
    assert evaluate(engine, T0 + timedelta(seconds=30)) is None


def test_a_passing_evaluation_ends_a_run_of_failures(engine: Engine) -> None:
    start_rollout(engine)
    write(engine, "1", "stable", 3000, T0, seed=1)
    write(engine, "2", "canary", 60, T0, seed=2, errors=1 / 3)  # 20 errors in 60 rows

    first = evaluate(engine, T0 + timedelta(seconds=10))
    assert first is not None
    assert (first.kind, first.failures) == ("hold", 1), first.reason
    assert state(engine).failures == 1

    # 3,000 good rows later the error rate is 0.7%: within the allowance, the run is over
    write(engine, "2", "canary", 3000, T0 + timedelta(seconds=10), seed=3)
    second = evaluate(engine, T0 + timedelta(seconds=20))
    assert second is not None
    assert (second.kind, second.failed, second.failures) == ("hold", False, 0), second.reason
    assert state(engine).failures == 0
    assert actions(engine)[-2:] == ["gate_failed", "hold"]


def test_paused_rollout_is_left_alone(engine: Engine) -> None:
    start_rollout(engine)
    write(engine, "1", "stable", 300, T0, seed=1)
    write(engine, "2", "canary", 300, T0, seed=2, errors=0.5)
    with engine.begin() as conn:
        current = st.load(conn, NAME)
        st.commit(conn, current, *st.pause(current, actor="t"))
    assert evaluate(engine, T0 + STEP) is None
    assert evaluate(engine, T0 + 2 * STEP) is None
    assert state(engine).status == "ramping"


def test_canary_stays_until_a_person_promotes_it(engine: Engine) -> None:
    start_rollout(engine, "canary")
    write(engine, "1", "stable", 300, T0, seed=1)
    write(engine, "2", "canary", 300, T0, seed=2)
    decision = evaluate(engine, T0 + STEP)
    assert decision is not None
    assert decision.kind == "hold"
    assert decision.reason.startswith("canary healthy; promote with")
    assert state(engine).status == "canary"
    assert actions(engine) == ["deploy", "deploy"]


# --- concurrency ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [False, True], ids=["advance", "gate_failed"])
def test_two_controllers_at_once_make_one_transition(
    engine: Engine, bad: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_rollout(engine)
    write(engine, "1", "stable", 300, T0, seed=1)
    write(engine, "2", "canary", 300, T0, seed=2, errors=0.3 if bad else 0.0)
    before = state(engine)
    # both controllers have read the same state and decided before either writes
    decided = threading.Barrier(2)

    def decide_together(*args: Any) -> Decision:
        decision = decide(*args)
        decided.wait(timeout=10)
        return decision

    monkeypatch.setattr(controller, "decide", decide_together)
    results: list[Decision | BaseException | None] = []

    def worker() -> None:
        try:
            results.append(evaluate(engine, T0 + STEP))
        except BaseException as err:
            results.append(err)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 2
    assert not any(isinstance(result, BaseException) for result in results), results
    assert None in results  # the second one saw the first one's change and stood down

    after = state(engine)
    assert after.version_counter == before.version_counter + 1
    expected = "gate_failed" if bad else "advance"
    assert actions(engine) == ["deploy", "deploy", expected]
    assert after.failures == (1 if bad else 0)
    assert after.step == (0 if bad else 1)


# --- the loop -------------------------------------------------------------------------------


def test_run_rolls_back_a_broken_candidate_and_survives_errors(engine: Engine) -> None:
    now = datetime.now(UTC)
    start_rollout(engine, at=now - timedelta(seconds=30))
    write(engine, "1", "stable", 300, now - timedelta(seconds=20), seed=1)
    write(engine, "2", "canary", 300, now - timedelta(seconds=20), seed=2, errors=0.4)
    calls: list[str] = []

    def policy_for(name: str) -> GatePolicy:
        calls.append(name)
        if name == "broken":
            raise RuntimeError("no spec for this model")
        return POLICY

    stop = threading.Event()
    loop = threading.Thread(
        target=controller.run,
        args=(engine, ["broken", "idle-model", NAME], policy_for),
        kwargs={"tracking_uri": None, "interval": 0.05, "stop": stop},
    )
    loop.start()
    try:
        deadline = time.monotonic() + 20
        while state(engine).failures == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        # the next failure counts on fresh requests only
        write(engine, "1", "stable", 300, now - timedelta(seconds=10), seed=3)
        write(engine, "2", "canary", 300, now - timedelta(seconds=10), seed=4, errors=0.4)
        while state(engine).status != "rolled_back" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(timeout=10)
    assert not loop.is_alive()
    assert state(engine).status == "rolled_back"
    assert actions(engine)[-2:] == ["gate_failed", "auto_rollback"]
    assert calls.count("broken") >= 2  # the error did not end the loop
    assert len(open_alerts(engine)) == 1
